"""Worked example from docs/strategy-api.md: a channel breakout with a protective stop."""

from decimal import Decimal
from typing import Any, ClassVar

from weltklassebot.model.enums import BUY, SELL
from weltklassebot.model.records import Fill
from weltklassebot.strategy import Bar, Strategy, StrategyContext
from weltklassebot.strategy.indicators import RollingMax, RollingMin


class Breakout(Strategy):
    name = "breakout"
    version = "1.0.0"
    params: ClassVar[dict[str, Any]] = {"window": 48, "qty": Decimal("0.5")}

    def validate(self) -> None:
        if int(self.p["window"]) < 2:
            raise ValueError("window must be >= 2")

    def on_start(self, ctx: StrategyContext) -> None:
        self.high = RollingMax(int(self.p["window"]))
        self.low = RollingMin(int(self.p["window"]))
        self.qty = ctx.instrument.qty_ticks(self.p["qty"])

    def save(self, ctx: StrategyContext) -> dict[str, Any] | None:
        return {"high": self.high.state(), "low": self.low.state()}

    def load(self, ctx: StrategyContext, data: dict[str, Any]) -> None:
        self.on_start(ctx)
        self.high.load_state(data["high"])
        self.low.load_state(data["low"])

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        previous_high = self.high.value if self.high.ready else None
        self.high.update(bar.high)
        self.low.update(bar.low)
        if previous_high is None or ctx.open_orders:
            return
        if ctx.position_ticks == 0 and bar.close > previous_high:
            ctx.submit_ticks(BUY, self.qty)                      # market: next bar's open
        elif ctx.position_ticks > 0:
            ctx.submit_ticks(SELL, ctx.position_ticks, stop_ticks=self.low.value, tif="gtc")

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> None:
        ctx.log("filled", side=fill.side, price=str(ctx.price(fill.price)))
