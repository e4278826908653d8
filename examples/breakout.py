"""Worked example of docs/strategy-api.md: a channel breakout whose stop trails the price.

When a bar closes above the highest high of the ``window`` bars before it, the strategy buys
``fraction`` of equity at market in a bracket whose stop-loss trails: it starts ``trail`` (a
fraction of the price) below the entry's fill price and then follows each bar's high up,
never down, so a trend is ridden until it gives back ``trail`` from its best high. The stop is
the only exit; the next breakout is taken once it has filled.
"""

from decimal import Decimal
from typing import Any, ClassVar

from weltklassebot.model.records import Fill
from weltklassebot.strategy import Bar, Strategy, StrategyContext
from weltklassebot.strategy.indicators import RollingMax


class Breakout(Strategy):
    name = "breakout"
    version = "2.0.0"
    params: ClassVar[dict[str, Any]] = {"window": 48, "trail": Decimal("0.05"),
                                        "fraction": Decimal("0.5")}

    def validate(self) -> None:
        if int(self.p["window"]) < 2:
            raise ValueError("window must be >= 2")
        if not 0 < Decimal(self.p["trail"]) < 1:
            raise ValueError("trail must be between 0 and 1 (a fraction of the price)")
        if not 0 < Decimal(self.p["fraction"]) <= 1:
            raise ValueError("fraction must be in (0, 1] (of equity per entry)")

    def on_start(self, ctx: StrategyContext) -> None:
        self.high = RollingMax(int(self.p["window"]))

    def save(self, ctx: StrategyContext) -> dict[str, Any] | None:
        return {"high": self.high.state()}

    def load(self, ctx: StrategyContext, data: dict[str, Any]) -> None:
        self.on_start(ctx)
        self.high.load_state(data["high"])

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        previous_high = self.high.value if self.high.ready else None
        self.high.update(bar.high)
        if previous_high is None or ctx.position_ticks != 0 or ctx.open_orders:
            return  # warming up, or in a trade: the trailing stop is working
        if bar.close > previous_high:
            qty = ctx.qty_for_fraction(self.p["fraction"], bar.close)
            if qty > 0:  # market entry (next bar's open); the stop rests once it fills
                ctx.buy_bracket(ctx.instrument.qty_decimal(qty),
                                trail_fraction=self.p["trail"], tag="breakout")

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> None:
        ctx.log("filled", side=fill.side, price=str(ctx.price(fill.price)))
