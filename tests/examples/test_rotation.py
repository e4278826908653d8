"""examples/rotation.py on a multi-symbol snapshot of real prices, through the CLI.

The snapshot is the documented composite of tests/support/composite.py (four consecutive
segments of MSFT's daily bars on the dates of the last one, ``MSFT_A`` .. ``MSFT_D``). The run is
pinned, holds at most ``n`` symbols at every equity point (exactly ``n`` once invested), changes
what it holds, and trades only at its rebalances (and the follow-up bar after each).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from examples.runs import assert_pinned, backtest, positions_at_equity_points
from support.composite import MSFT, composite_symbols, segment_closes, write_composite

pytestmark = pytest.mark.integration


def test_the_composite_is_four_real_paths_on_one_calendar(tmp_path: Path) -> None:
    path = write_composite(tmp_path / "composite.parquet")
    table = pq.read_table(path)
    symbols = table.column("symbol").to_pylist()
    ts = table.column("ts").cast(pa.int64()).to_pylist()
    assert sorted(set(symbols)) == composite_symbols() == ["MSFT_A", "MSFT_B", "MSFT_C", "MSFT_D"]
    assert list(zip(ts, symbols, strict=True)) == sorted(zip(ts, symbols, strict=True))
    source = pq.read_table(MSFT)
    source_ts = source.column("ts").cast(pa.int64()).to_pylist()
    calendar = source_ts[-1995:]  # the newest segment's own dates
    closes = segment_closes()
    for symbol in composite_symbols():
        rows = [k for k, s in enumerate(symbols) if s == symbol]
        assert [ts[k] for k in rows] == calendar
        assert table.column("close").take(rows).to_pylist() == closes[symbol]
    # The segments are consecutive and cover the source but for its 3 oldest rows.
    joined = [c for symbol in composite_symbols() for c in closes[symbol]]
    assert joined == source.column("close").to_pylist()[3:]
    assert closes["MSFT_D"] == source.column("close").to_pylist()[-1995:]


def test_rotation_on_the_composite(tmp_path: Path) -> None:
    snapshot = write_composite(tmp_path / "composite.parquet")
    run = backtest(tmp_path / "run", "rotation", data=snapshot)
    assert_pinned(run, fills=367, final_equity="4993642.16400382", equity_hash=(
        "a6eabe98ccc9aea229ac5bd8d731282b28848b48010c3684240e0dff958d74b5"))
    assert run.manifest["snapshot"]["symbols"] == composite_symbols()
    n, every, lookback = (int(run.params[k]) for k in ("n", "every", "lookback"))
    points = positions_at_equity_points(run)
    assert len(points) == 1995
    counts = [len(held) for _ts, held in points]
    assert max(counts) == n, "at most n symbols held at any equity point"
    first = next(k for k, c in enumerate(counts) if c)
    assert first == lookback + 1  # ranked at the close of bar `lookback`, filled at the next
    assert set(counts[first:]) == {n}
    held_sets = {frozenset(held) for _ts, held in points[first:]}
    assert len(held_sets) >= 4, f"the rotation should rotate, held only {held_sets}"
    # Trades only where a ranking's orders fill (the bar after it) and its follow-up's (the
    # bar after that): rankings at bar `lookback`, then every `every` bars.
    calendar = [ts for ts, _held in points]
    rankings = range(lookback, len(calendar) - 1, every)
    allowed = {calendar[d + k] for d in rankings for k in (1, 2) if d + k < len(calendar)}
    traded = {fill["ts"] for fill in run.fills}
    assert traded <= allowed
    assert len(traded) > len(rankings)  # follow-ups do buy what a rebalance could not
    assert {o["tag"] for o in run.orders} == {"rotation"}
