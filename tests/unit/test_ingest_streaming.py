"""Multi-symbol snapshots: a time-ordered file streams by row group, a symbol-grouped file is
read whole; both give the same chunks' content and the same equity hash."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from weltklassebot.config.model import BacktestConfig
from weltklassebot.data.ingest import iter_chunks
from weltklassebot.data.reader import open_snapshot
from weltklassebot.data.validate import inspect_snapshot
from weltklassebot.runs.backtest import RunRequest, execute, resolve_instruments

REPO = Path(__file__).resolve().parents[2]
MSFT = REPO / "tests" / "data" / "msft_1d_1986-2017.parquet"
BTC = REPO / "tests" / "data" / "coinbase_btcusd_1h_2017-07_2019-10.parquet"


def _two_symbols(path: Path, *, time_ordered: bool) -> Path:
    msft = pq.read_table(MSFT).slice(7000)
    btc = pq.read_table(BTC).slice(0, 3000)
    tables = []
    for name, table in (("MSFT", msft), ("BTC", btc)):
        tables.append(table.append_column("symbol", pa.array([name] * table.num_rows)))
    merged = pa.concat_tables(tables)
    if time_ordered:
        order = np.lexsort((np.asarray(merged.column("symbol").to_pylist()),
                            merged.column("ts").cast(pa.int64()).to_numpy()))
        merged = merged.take(order)
    pq.write_table(merged, path, row_group_size=500)
    return path


@pytest.mark.parametrize("chunk_rows", [7, 64, 1 << 17])
def test_streamed_chunks_equal_whole_read_chunks(tmp_path: Path, chunk_rows: int) -> None:
    path = _two_symbols(tmp_path / "ordered.parquet", time_ordered=True)
    report = inspect_snapshot(path)
    assert report.ok
    assert report.facts["time_ordered"] is True
    snapshot = open_snapshot(path)
    config = BacktestConfig()
    instruments, _ = resolve_instruments(config, snapshot, report)
    streamed = list(iter_chunks(snapshot, instruments, None, chunk_rows, time_ordered=True))
    whole = list(iter_chunks(snapshot, instruments, None, chunk_rows, time_ordered=False))
    for field in ("ts", "codes", "open", "high", "low", "close", "volume"):
        left = np.concatenate([getattr(c, field) for c in streamed])
        right = np.concatenate([getattr(c, field) for c in whole])
        assert np.array_equal(left, right), field
    for chunk in streamed:  # an instant never spans two chunks
        assert chunk.ts.size > 0
    boundaries = [(a.ts[-1], b.ts[0]) for a, b in itertools.pairwise(streamed)]
    assert all(last < first for last, first in boundaries)


def test_time_ordered_and_grouped_files_give_the_same_hash(tmp_path: Path) -> None:
    ordered = _two_symbols(tmp_path / "ordered.parquet", time_ordered=True)
    grouped = _two_symbols(tmp_path / "grouped.parquet", time_ordered=False)
    assert inspect_snapshot(grouped).facts["time_ordered"] is False
    hashes = []
    for path in (ordered, grouped):
        config = BacktestConfig.model_validate(
            {"data": {"snapshot": str(path)}, "strategy": {"name": "donchian_breakout"}})
        request = RunRequest(config=config, config_file=None, argv=["test"],
                             out=tmp_path / f"run-{path.stem}", runs_dir=tmp_path)
        summary = execute(request).summary
        assert summary["fills"] > 0
        hashes.append(summary["equity_hash"])
    assert hashes[0] == hashes[1]
