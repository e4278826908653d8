"""examples/breakout.py (the docs' worked example) on the bundled BTC-USD sample, through the
CLI: a pinned result, and a stop-loss that really trails: each filled stop's level in
orders.parquet is where the trail took it, above where it started."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import pytest

from examples.runs import assert_pinned, backtest

pytestmark = pytest.mark.integration


def test_breakout_on_the_sample(tmp_path: Path) -> None:
    run = backtest(tmp_path / "run", "breakout")
    assert_pinned(run, fills=256, final_equity="1805803.40101384", equity_hash=(
        "3537ac1ea2466d7bac0961abf1d1dbcafcf5d3e2adf7eaa5499fed0e736111ff"))
    keep = 1 - Decimal(run.params["trail"])
    tick = Decimal(run.manifest["instruments"]["BTC/USD"]["price_increment"])
    orders, fill_of = run.orders_by_id(), run.fill_of()
    stops = [o for o in run.orders if o["tag"] == "breakout:stop_loss"]
    filled = [o for o in stops if o["status"] == "filled"]
    assert len(filled) > 50, "more than a handful of trades"
    moved = 0
    for stop in filled:
        entry = orders[stop["order_id"] - 1]  # ids: the entry, then its stop-loss
        assert (entry["tag"], entry["type"]) == ("breakout", "market")
        start = (fill_of[entry["order_id"]]["price"] * keep).quantize(tick, ROUND_FLOOR)
        assert stop["stop_price"] >= start, "a trail never moves against the trade"
        moved += stop["stop_price"] > start
        exit_fill = fill_of[stop["order_id"]]
        assert exit_fill["price"] <= stop["stop_price"]  # at the stop, or below on a gap
    assert moved >= 0.9 * len(filled), f"only {moved} of {len(filled)} stops moved"
    # One trade at a time: every entry but an open last one is closed by its stop.
    entries = [o for o in run.orders if o["tag"] == "breakout"]
    assert len(entries) - len(filled) in (0, 1)
    assert all(o["status"] == "filled" for o in entries)


def test_the_window_param_of_the_docs_command(tmp_path: Path) -> None:
    run = backtest(tmp_path / "run", "breakout", "--param", "window=24", data=None)
    assert run.params["window"] == 24
    assert run.manifest["snapshot"]["path"].endswith("coinbase_btcusd_1h_2017-07_2019-10.parquet")
    assert len(run.fills) > 256  # a shorter channel breaks out more often than the default
