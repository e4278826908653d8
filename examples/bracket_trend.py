"""Trend following with bracket orders: an SMA crossover entry whose exits rest with it.

Shows ``ctx.buy_bracket`` with a take-profit and a stop-loss set from the average true range
(``ctx.atr``), exact crossings (``ctx.cross`` on the exact sums of two ``ctx.sma``), and the
wake hint (``ctx.wake_on``): ``on_bar`` runs only at crossings and when an order of the
strategy filled, so quiet bars cost nothing.

When the ``fast`` mean of the closes crosses above the ``slow`` one and the strategy is flat,
it buys ``fraction`` of equity at market in a bracket: a take-profit ``take_profit`` ATRs above
the close and a stop-loss ``stop_loss`` ATRs below it. The two exits rest once the entry fills
and are one-cancels-other: the one that fills cancels the other (``reason = oco`` in
orders.parquet). When the fast mean crosses back below while the position is still open, the
exits are cancelled and the position is sold at market. Defaults suit hourly bars such as the
bundled BTC-USD sample (a day against five days, ATR over a day).
"""

from decimal import Decimal
from typing import Any, ClassVar

from weltklassebot.model.enums import SELL
from weltklassebot.strategy import Bar, Strategy, StrategyContext


class BracketTrend(Strategy):
    name = "bracket_trend"
    version = "1.0.0"
    params: ClassVar[dict[str, Any]] = {"fast": 24, "slow": 120, "atr": 24,
                                        "take_profit": Decimal(8), "stop_loss": Decimal(4),
                                        "fraction": Decimal("0.5")}

    def validate(self) -> None:
        fast, slow = int(self.p["fast"]), int(self.p["slow"])
        if not 1 <= fast < slow:
            raise ValueError(f"need 1 <= fast < slow, got fast={fast}, slow={slow}")
        if int(self.p["atr"]) < 1:
            raise ValueError("atr must be >= 1 (bars)")
        if Decimal(self.p["take_profit"]) <= 0 or Decimal(self.p["stop_loss"]) <= 0:
            raise ValueError("take_profit and stop_loss must be positive (ATR multiples)")
        if not 0 < Decimal(self.p["fraction"]) <= 1:
            raise ValueError("fraction must be in (0, 1] (of equity per entry)")

    def on_start(self, ctx: StrategyContext) -> None:
        fast = ctx.sma("close", int(self.p["fast"]))
        slow = ctx.sma("close", int(self.p["slow"]))
        self.cross = ctx.cross(fast.sums, slow.sums)
        self.atr = ctx.atr(int(self.p["atr"]))
        ctx.wake_on(self.cross)  # fills wake the strategy too

    def save(self, ctx: StrategyContext) -> dict[str, Any] | None:
        return {}  # all state is in engine series and orders, which the engine saves

    def load(self, ctx: StrategyContext, data: dict[str, Any]) -> None:
        self.on_start(ctx)  # declares the same series in the same order

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        direction = self.cross.value
        position = ctx.position_ticks
        if direction > 0 and position == 0 and not ctx.open_orders and self.atr.ready:
            qty = ctx.qty_for_fraction(self.p["fraction"], bar.close)
            atr = self.atr.value
            above = round(float(self.p["take_profit"]) * atr)
            below = round(float(self.p["stop_loss"]) * atr)
            if qty > 0 and below < bar.close:
                ctx.buy_bracket(ctx.instrument.qty_decimal(qty),
                                take_profit=ctx.price(bar.close + max(above, 1)),
                                stop_loss=ctx.price(bar.close - max(below, 1)), tag="trend")
        elif direction < 0 and position > 0:
            ctx.cancel_all()  # the bracket's exits; then close at the next open
            ctx.submit_ticks(SELL, position, tag="trend:cross_exit")
