"""RSI mean reversion, long only, sized by a fraction of equity.

Shows an engine-computed indicator (``ctx.rsi``: Wilder's RSI, computed by the engine per chunk
of bars) and sizing with ``ctx.qty_for_fraction``. When flat and the RSI of the closes falls
below ``oversold``, the strategy buys at market the largest quantity worth at most ``fraction``
of equity at the close (fees come on top). It sells the whole position at market once the RSI
has recovered above ``exit``, or after ``max_hold`` bars in the trade, whichever comes first: a
reversion that has not happened by then is not the trade that was bought.

The bars held are the strategy's own state (the RSI is the engine's), so ``save``/``load``
carry the entry's bar index across a restart. Defaults suit hourly bars such as the bundled
BTC-USD sample (14 hours of RSI, at most three days in a trade).
"""

from decimal import Decimal
from typing import Any, ClassVar

from weltklassebot.model.enums import BUY, SELL
from weltklassebot.strategy import Bar, Strategy, StrategyContext


class RsiMeanReversion(Strategy):
    name = "rsi_mean_reversion"
    version = "1.0.0"
    params: ClassVar[dict[str, Any]] = {"window": 14, "oversold": Decimal(25),
                                        "exit": Decimal(55), "max_hold": 72,
                                        "fraction": Decimal("0.5")}

    def validate(self) -> None:
        if int(self.p["window"]) < 2:
            raise ValueError("window must be >= 2")
        if not 0 < Decimal(self.p["oversold"]) < Decimal(self.p["exit"]) < 100:
            raise ValueError("need 0 < oversold < exit < 100 (RSI levels)")
        if int(self.p["max_hold"]) < 1:
            raise ValueError("max_hold must be >= 1 (bars)")
        if not 0 < Decimal(self.p["fraction"]) <= 1:
            raise ValueError("fraction must be in (0, 1] (of equity per entry)")

    def on_start(self, ctx: StrategyContext) -> None:
        self.rsi = ctx.rsi("close", int(self.p["window"]))
        self.oversold = float(self.p["oversold"])
        self.exit = float(self.p["exit"])
        self.entered: int | None = None  # bar index of the entry decision, while in a trade

    def save(self, ctx: StrategyContext) -> dict[str, Any] | None:
        return {"entered": self.entered}

    def load(self, ctx: StrategyContext, data: dict[str, Any]) -> None:
        self.on_start(ctx)  # declares the same series; the engine restores their values
        self.entered = data["entered"]

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        if not self.rsi.ready or ctx.open_orders:
            return  # warming up, or an order is on its way (it fills at the next open)
        position = ctx.position_ticks
        if position == 0:
            self.entered = None
            if self.rsi.value < self.oversold:
                qty = ctx.qty_for_fraction(self.p["fraction"], bar.close)
                if qty > 0 and ctx.submit_ticks(BUY, qty, tag="entry") is not None:
                    self.entered = bar.index
        elif position > 0:
            held = 0 if self.entered is None else bar.index - self.entered
            if self.rsi.value > self.exit or held >= int(self.p["max_hold"]):
                ctx.submit_ticks(SELL, position, tag="exit")
