"""Volatility targeting with target orders: hold as much as a risk budget allows.

Shows ``ctx.order_target_fraction``: the strategy says what share of equity it wants in the
instrument, and the engine trades the difference (rounded toward zero, cut to buying power).
The wanted share is ``min(max_fraction, target_vol / realised_vol)`` while the close is above
its ``trend``-bar mean, else 0: less exposure when the market is wild, more when it is calm,
none while it falls (``trend`` = 0 turns the trend switch off). ``realised_vol`` is the
standard deviation of the last ``window`` bar-to-bar returns, annualised with
``periods_per_year`` (8766 for hourly bars on every day of the week). Returns are taken in
exact integer parts per million of the previous close and fed to an incremental ``StdDev``
(which works on exact integers); the trend's mean is an engine series (``ctx.sma``).

Rebalancing costs fees, so the strategy trades only when the wanted share differs from the
share it holds (the position's value at the close over equity) by more than ``band``. The
returns' window and the previous close are the strategy's own state: ``save``/``load`` carry
them across a restart. Defaults suit hourly bars such as the bundled BTC-USD sample (a week
of returns, 60 % a year of volatility wanted, the 200-bar mean as the trend).
"""

import math
from decimal import Decimal
from typing import Any, ClassVar

from weltklassebot.indicators import StdDev
from weltklassebot.strategy import Bar, Strategy, StrategyContext

PPM = 1_000_000  # returns in exact integer parts per million


class TargetAllocation(Strategy):
    name = "target_allocation"
    version = "1.0.0"
    params: ClassVar[dict[str, Any]] = {"window": 168, "target_vol": Decimal("0.6"),
                                        "max_fraction": Decimal("0.95"),
                                        "band": Decimal("0.1"), "trend": 200,
                                        "periods_per_year": 8766}

    def validate(self) -> None:
        if int(self.p["window"]) < 2:
            raise ValueError("window must be >= 2 (returns)")
        if Decimal(self.p["target_vol"]) <= 0:
            raise ValueError("target_vol must be positive (annualised, 0.6 = 60 %)")
        if not 0 < Decimal(self.p["max_fraction"]) <= 1:
            raise ValueError("max_fraction must be in (0, 1] (of equity)")
        if not 0 < Decimal(self.p["band"]) < 1:
            raise ValueError("band must be between 0 and 1 (a share of equity)")
        if int(self.p["trend"]) < 0:
            raise ValueError("trend must be >= 0 (bars of the mean; 0: no trend switch)")
        if int(self.p["periods_per_year"]) < 1:
            raise ValueError("periods_per_year must be >= 1")

    def on_start(self, ctx: StrategyContext) -> None:
        trend = int(self.p["trend"])
        self.trend = ctx.sma("close", trend) if trend else None
        self.returns = StdDev(int(self.p["window"]))
        self.previous: int | None = None  # the last close (ticks)
        self.scale = math.sqrt(int(self.p["periods_per_year"])) / PPM

    def save(self, ctx: StrategyContext) -> dict[str, Any] | None:
        return {"returns": self.returns.state(), "previous": self.previous}

    def load(self, ctx: StrategyContext, data: dict[str, Any]) -> None:
        self.on_start(ctx)  # declares the same series; the engine restores their values
        self.returns.load_state(data["returns"])
        self.previous = data["previous"]

    def wanted(self, close: int) -> Decimal:
        """The share of equity to hold at this close."""
        if self.trend is not None and (not self.trend.ready or close < self.trend.value):
            return Decimal(0)
        ceiling = Decimal(self.p["max_fraction"])
        realised = self.returns.value * self.scale
        if realised <= 0:
            return ceiling
        share = Decimal(repr(float(self.p["target_vol"]) / realised))
        return min(ceiling, share.quantize(Decimal("0.0001")))

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        if self.previous is not None:
            self.returns.update((bar.close - self.previous) * PPM // self.previous)
        self.previous = bar.close
        equity = ctx.equity
        if not self.returns.ready or ctx.open_orders or equity <= 0:
            return
        target = self.wanted(bar.close)
        value = ctx.instrument.notional(ctx.position_ticks, bar.close)
        held = ctx.instrument.money.decimal(value) / equity
        if abs(target - held) > Decimal(self.p["band"]):
            ctx.order_target_fraction(target, tag="rebalance")
