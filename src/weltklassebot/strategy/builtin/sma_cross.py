"""``sma_cross``: long-only moving-average crossover, the default strategy.

At the close of bar i, with f and s the simple moving averages of closes over ``fast`` and
``slow`` bars: if f[i-1] < s[i-1] and f[i] > s[i] and flat, buy at market ``qty``, or with
``fraction`` > 0 the largest quantity worth at most that fraction of equity at bar i's close; if
f[i-1] > s[i-1] and f[i] < s[i] and long, sell the whole position at market. "Flat" and "long"
mean the position with no order open. The comparison is exact on integer window sums
(f > s  <=>  sum_fast * slow > sum_slow * fast), so a tie is never a crossing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from weltklassebot.model.enums import BUY, SELL
from weltklassebot.strategy.base import Bar, Strategy, StrategyContext


class SmaCross(Strategy):
    name: ClassVar[str] = "sma_cross"
    version: ClassVar[str] = "1.0.0"
    params: ClassVar[dict[str, Any]] = {"fast": 10, "slow": 30, "qty": Decimal(1),
                                        "fraction": Decimal(0)}

    def validate(self) -> None:
        fast, slow = int(self.p["fast"]), int(self.p["slow"])
        if fast < 1 or slow < 1:
            raise ValueError("fast and slow must be >= 1")
        if fast >= slow:
            raise ValueError(f"fast ({fast}) must be smaller than slow ({slow})")
        if not Decimal(self.p["qty"]) > 0:
            raise ValueError(f"qty ({self.p['qty']}) must be positive")
        fraction = Decimal(self.p["fraction"])
        if not Decimal(0) <= fraction <= Decimal(10):
            raise ValueError(f"fraction ({fraction}) must be in [0, 10] (0: buy qty instead)")

    def on_start(self, ctx: StrategyContext) -> None:
        self.qty_ticks = ctx.instrument.qty_ticks(self.p["qty"])
        if self.qty_ticks <= 0:
            inst = ctx.instrument
            raise ValueError(f"qty ({Decimal(self.p['qty']):f}) is less than one quantity "
                             f"increment ({inst.quantity_increment:f}) of {inst.symbol}")
        fast = ctx.rolling_sum("close", int(self.p["fast"]))
        slow = ctx.rolling_sum("close", int(self.p["slow"]))
        self.cross = ctx.cross(fast, slow)
        ctx.wake_on(self.cross)  # nothing to decide at bars without a crossing

    def save(self, ctx: StrategyContext) -> dict[str, Any] | None:
        return {}  # everything else is parameters and engine series, which the engine saves

    def load(self, ctx: StrategyContext, data: dict[str, Any]) -> None:
        self.on_start(ctx)  # declares the same series; on_start submits nothing

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        direction = self.cross.value
        if direction == 0 or ctx.open_orders:
            return
        position = ctx.position_ticks
        if direction > 0 and position == 0:
            fraction = self.p["fraction"]
            qty = ctx.qty_for_fraction(fraction, bar.close) if fraction else self.qty_ticks
            if qty > 0:
                ctx.submit_ticks(BUY, qty, tag="entry")
        elif direction < 0 and position > 0:
            ctx.submit_ticks(SELL, position, tag="exit")
