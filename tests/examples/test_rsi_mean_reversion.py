"""examples/rsi_mean_reversion.py on the bundled BTC-USD sample, through the CLI: a pinned
result, entries sized to ``fraction`` of equity at the decision's close, exits by RSI and by
the holding limit."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from examples.runs import HOUR_NS, assert_pinned, backtest, closes, equity_before

pytestmark = pytest.mark.integration


def test_rsi_mean_reversion_on_the_sample(tmp_path: Path) -> None:
    run = backtest(tmp_path / "run", "rsi_mean_reversion")
    assert_pinned(run, fills=155, final_equity="862317.06392509", equity_hash=(
        "04008fb7c065364fe85d02dd54cb2baa220fd571e8de69b266045999621d738f"))
    fraction = Decimal(run.params["fraction"])
    increment = Decimal(run.manifest["instruments"]["BTC/USD"]["quantity_increment"])
    close_at = closes()
    orders = run.orders_by_id()
    entries = [f for f in run.fills if orders[f["order_id"]]["tag"] == "entry"]
    exits = [f for f in run.fills if orders[f["order_id"]]["tag"] == "exit"]
    assert len(entries) > 50
    assert len(exits) in (len(entries), len(entries) - 1)  # the last trade may be open
    for fill in entries:
        # Sized by ctx.qty_for_fraction at the decision's close (the bar before the fill's):
        # the largest quantity worth at most `fraction` of equity there ...
        equity, close = equity_before(run, fill["ts"]), close_at[fill["ts"] - HOUR_NS]
        assert fill["qty"] * close <= fraction * equity < (fill["qty"] + increment) * close
        # ... so about `fraction` of equity at the fill's price too.
        assert abs(fill["notional"] / equity - fraction) < Decimal("0.03")
    held = [out["ts"] - into["ts"] for into, out in zip(entries, exits, strict=False)]
    limit = int(run.params["max_hold"]) * HOUR_NS
    assert all(0 < h <= limit for h in held)
    assert any(h == limit for h in held), "some trades end at the holding limit"
    assert any(h < limit for h in held), "some trades end when the RSI has recovered"
