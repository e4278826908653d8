"""examples/bracket_trend.py on the bundled BTC-USD sample, through the CLI: a pinned result,
and brackets at work: each entry's take-profit and stop-loss rest around it, the exit that
fills cancels the other (``reason = oco``), and a crossing back cancels both."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from examples.runs import assert_pinned, backtest

pytestmark = pytest.mark.integration


def test_bracket_trend_on_the_sample(tmp_path: Path) -> None:
    run = backtest(tmp_path / "run", "bracket_trend")
    assert_pinned(run, fills=204, final_equity="1239024.46711794", equity_hash=(
        "b287196b75e64e2aa7175a9eccb65471ba0ab0b0c9b907a75ed466471962adbe"))
    orders, fill_of = run.orders_by_id(), run.fill_of()
    entries = [o for o in run.orders if o["tag"] == "trend"]
    assert len(entries) > 50
    ends: Counter[str] = Counter()
    for entry in entries:
        take = orders[entry["order_id"] + 1]
        stop = orders[entry["order_id"] + 2]
        assert (take["tag"], take["type"], take["side"]) == ("trend:take_profit", "limit", "sell")
        assert (stop["tag"], stop["type"], stop["side"]) == ("trend:stop_loss", "stop", "sell")
        price = fill_of[entry["order_id"]]["price"]
        assert stop["stop_price"] < price < take["limit_price"], "exits lie around the entry"
        pair = (take["status"], take["reason"], stop["status"], stop["reason"])
        if pair == ("filled", "", "cancelled", "oco"):
            ends["take_profit"] += 1
        elif pair == ("cancelled", "oco", "filled", ""):
            ends["stop_loss"] += 1
        elif pair[::2] == ("cancelled", "cancelled"):
            assert take["reason"] == stop["reason"] == "cancelled_by_strategy"
            crossing = orders[entry["order_id"] + 3]  # sent right after cancelling both
            assert (crossing["tag"], crossing["status"]) == ("trend:cross_exit", "filled")
            ends["cross"] += 1
        else:
            assert entry is entries[-1], f"bracket of order {entry['order_id']}: {pair}"
            ends["open"] += 1
    for way in ("take_profit", "stop_loss", "cross"):
        assert ends[way] > 10, f"too few trades ended by {way}: {ends}"
    oco = [o for o in run.orders if o["reason"] == "oco"]
    assert len(oco) == ends["take_profit"] + ends["stop_loss"]
