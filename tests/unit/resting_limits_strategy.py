"""A test strategy whose orders rest through quiet stretches and are touched inside them: at a
moving-average crossing it replaces its order by a limit 1 % away from the close (a buy below
when flat, a sell above when long) and sleeps until the next crossing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from weltklassebot.model.enums import BUY, SELL
from weltklassebot.strategy import Bar, Strategy, StrategyContext


class RestingLimits(Strategy):
    name: ClassVar[str] = "resting_limits"
    version: ClassVar[str] = "1"
    params: ClassVar[dict[str, Any]] = {"qty": Decimal("0.5")}

    def on_start(self, ctx: StrategyContext) -> None:
        self.qty = ctx.instrument.qty_ticks(self.p["qty"])
        self.cross = ctx.cross(ctx.rolling_sum("close", 5), ctx.rolling_sum("close", 20))
        ctx.wake_on(self.cross)

    def save(self, ctx: StrategyContext) -> dict[str, Any] | None:
        return {}

    def load(self, ctx: StrategyContext, data: dict[str, Any]) -> None:
        self.on_start(ctx)

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        if self.cross.value == 0:
            return
        ctx.cancel_all()
        away = max(bar.close // 100, 1)
        position = ctx.position_ticks
        if position > 0:
            ctx.submit_ticks(SELL, position, limit_ticks=bar.close + away)
        elif position == 0:
            ctx.submit_ticks(BUY, self.qty, limit_ticks=bar.close - away)
