"""Gap warnings name exactly the first gaps in file order, across row groups and symbols."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from weltklassebot.data.validate import inspect_snapshot

MINUTE = 60_000_000_000
T0 = 1_600_000_000_000_000_000


def _write(path: Path, ts: np.ndarray, symbols: list[str] | None = None) -> Path:
    n = ts.size
    columns = {
        "ts": pa.array(ts, type=pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "open": np.full(n, 10.0), "high": np.full(n, 11.0), "low": np.full(n, 9.0),
        "close": np.full(n, 10.0), "volume": np.full(n, 5.0),
    }
    if symbols is not None:
        columns["symbol"] = pa.array(symbols)
    pq.write_table(pa.table(columns), path, row_group_size=7)
    return path


def test_first_gaps_in_file_order_across_row_groups(tmp_path: Path) -> None:
    steps = np.ones(60, dtype=np.int64)
    gap_rows = [9, 23, 24, 40, 41, 55]
    for row in gap_rows:
        steps[row] = 10 if row % 2 else 30  # gaps of different lengths
    ts = T0 + np.cumsum(steps) * MINUTE
    report = inspect_snapshot(_write(tmp_path / "gaps.parquet", ts), max_examples=4)
    (warning,) = [w for w in report.warnings if "gap" in w]
    assert warning.startswith("6 gap(s) longer than 3 x 1m; first at ")
    named = [int(part.split()[1]) for part in warning.split("first at ")[1].split("), ")]
    assert named == gap_rows[:4]


def test_first_gaps_per_symbol(tmp_path: Path) -> None:
    a = T0 + np.arange(20, dtype=np.int64) * MINUTE
    a[12:] += 50 * MINUTE  # one gap for A at its 13th bar
    b = T0 + np.arange(20, dtype=np.int64) * 2 * MINUTE
    ts = np.empty(40, dtype=np.int64)
    ts[0::2], ts[1::2] = a, b
    symbols = ["A", "B"] * 20
    report = inspect_snapshot(_write(tmp_path / "two.parquet", ts, symbols))
    (warning,) = [w for w in report.warnings if "gap" in w]
    assert "for symbol A" in warning
    assert "first at row 24 (" in warning  # A's 13th bar is file row 24
