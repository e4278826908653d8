"""examples/target_allocation.py on the bundled BTC-USD sample, through the CLI: a pinned
result, and target orders traded only where the wanted share of equity left the band around
the share held. The wanted share is recomputed here from the sample with the same incremental
indicators, and the bars the run traded at must be exactly those where it left the band."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest

from examples.runs import assert_pinned, backtest, closes, positions_at_equity_points
from weltklassebot.indicators import SMA, StdDev

pytestmark = pytest.mark.integration

TICK = Decimal("0.00000001")  # the sample's price and quantity increments, and the cash's


def test_target_allocation_on_the_sample(tmp_path: Path) -> None:
    run = backtest(tmp_path / "run", "target_allocation")
    assert_pinned(run, fills=630, final_equity="4521919.85540085", equity_hash=(
        "c220aeaa443d64acf7c268229aa6edf18c45b352ce2e0a69cc7555c5843ed44e"))
    assert {(o["type"], o["tag"], o["status"]) for o in run.orders} == {
        ("market", "rebalance", "filled")}
    p = run.params
    band, ceiling = Decimal(p["band"]), Decimal(p["max_fraction"])
    scale = math.sqrt(int(p["periods_per_year"])) / 1_000_000
    returns, trend = StdDev(int(p["window"])), SMA(int(p["trend"]))
    points = positions_at_equity_points(run)
    close_at = closes()
    previous: int | None = None
    decided: list[int] = []  # bar indices where the wanted share left the band
    wanted_shares: set[Decimal] = set()
    for k, ((ts, equity), (_ts, held)) in enumerate(zip(run.equity, points, strict=True)):
        close = int(close_at[ts] / TICK)
        trend.update(close)
        if previous is not None:
            returns.update((close - previous) * 1_000_000 // previous)
        previous = close
        if not returns.ready:
            continue
        if not trend.ready or close < trend.value:
            wanted = Decimal(0)
        else:
            share = Decimal(repr(float(p["target_vol"]) / (returns.value * scale)))
            wanted = min(ceiling, share.quantize(Decimal("0.0001")))
        value = (held.get("BTC/USD", Decimal(0)) * close_at[ts]).quantize(TICK, ROUND_HALF_EVEN)
        if abs(wanted - value / equity) > band:
            decided.append(k)
            wanted_shares.add(wanted)
    calendar = [ts for ts, _equity in run.equity]
    index = {ts: k for k, ts in enumerate(calendar)}
    traded = sorted({index[fill["ts"]] for fill in run.fills})
    assert traded == [k + 1 for k in decided if k + 1 < len(calendar)]
    # Volatility scales the exposure: many different shares are wanted, not only on and off.
    assert len(wanted_shares - {Decimal(0), ceiling}) > 50
    # ... and target orders resize a position as well as open and close it.
    sizes = [held.get("BTC/USD", Decimal(0)) for _ts, held in points]
    resized = [k for k in traded if sizes[k - 1] != 0 and sizes[k] != 0]
    assert len(resized) > 20
