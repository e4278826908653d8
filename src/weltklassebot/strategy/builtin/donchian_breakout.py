"""``donchian_breakout``: long and short channel breakout with stop orders.

At each close, once ``entry`` bars are seen: when flat, rest a buy stop one tick above the
highest high of the last ``entry`` bars and a sell stop one tick below the lowest low (the first
to fill cancels the other). When long, rest a protective sell stop one tick below the lowest low
of the last ``exit`` bars for the whole position; when short, a buy stop one tick above the
highest high of the last ``exit`` bars. Stops are GTC; at each bar a stop whose level or size
changed is replaced (cancel + new) and one that is still right keeps resting.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from weltklassebot.model.enums import BUY, SELL
from weltklassebot.model.records import Fill
from weltklassebot.strategy.base import Bar, Strategy, StrategyContext
from weltklassebot.strategy.indicators import RollingMax, RollingMin

_CHANNELS = ("entry_high", "entry_low", "exit_high", "exit_low")


class DonchianBreakout(Strategy):
    name: ClassVar[str] = "donchian_breakout"
    version: ClassVar[str] = "1.1.0"
    params: ClassVar[dict[str, Any]] = {"entry": 20, "exit": 10, "qty": Decimal(1)}

    def validate(self) -> None:
        entry, exit_n = int(self.p["entry"]), int(self.p["exit"])
        if entry < 1 or exit_n < 1:
            raise ValueError("entry and exit must be >= 1")

    def on_start(self, ctx: StrategyContext) -> None:
        entry, exit_n = int(self.p["entry"]), int(self.p["exit"])
        self.qty_ticks = ctx.instrument.qty_ticks(self.p["qty"])
        if self.qty_ticks <= 0:
            raise ValueError("qty must be positive")
        self.entry_high = RollingMax(entry)
        self.entry_low = RollingMin(entry)
        self.exit_high = RollingMax(exit_n)
        self.exit_low = RollingMin(exit_n)

    def save(self, ctx: StrategyContext) -> dict[str, Any] | None:
        return {name: getattr(self, name).state() for name in _CHANNELS}

    def load(self, ctx: StrategyContext, data: dict[str, Any]) -> None:
        self.on_start(ctx)
        for name in _CHANNELS:
            getattr(self, name).load_state(data[name])

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        hi_entry = self.entry_high.update(bar.high)
        lo_entry = self.entry_low.update(bar.low)
        hi_exit = self.exit_high.update(bar.high)
        lo_exit = self.exit_low.update(bar.low)
        if not self.entry_high.ready:
            return
        position = ctx.position_ticks
        wanted: list[tuple[int, int, int, str]] = []  # (side, qty, stop, tag)
        if position == 0:
            wanted.append((BUY, self.qty_ticks, hi_entry + 1, "long_entry"))
            if lo_entry > 1:
                wanted.append((SELL, self.qty_ticks, lo_entry - 1, "short_entry"))
        elif position > 0 and lo_exit > 1:
            wanted.append((SELL, position, lo_exit - 1, "long_exit"))
        elif position < 0:
            wanted.append((BUY, -position, hi_exit + 1, "short_exit"))
        # Keep a resting stop that is already right; replace only what changed.
        for order in ctx.open_orders:
            key = (order.side, order.remaining, order.stop, order.tag)
            if key in wanted and order.filled == 0:
                wanted.remove(key)
            else:
                ctx.cancel(order.order_id)
        for side, qty, stop, tag in wanted:
            ctx.submit_ticks(side, qty, stop_ticks=stop, tag=tag)

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> None:
        # One entry filled: the opposite entry must not also fill (one-cancels-other).
        if ctx.position_ticks != 0:
            for order in ctx.open_orders:
                if order.tag.endswith("_entry"):
                    ctx.cancel(order.order_id)
