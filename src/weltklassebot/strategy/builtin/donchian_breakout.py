"""``donchian_breakout``: long and short channel breakout with stop orders.

At each close, once ``entry`` bars are seen: when flat, rest a buy stop one tick above the
highest high of the last ``entry`` bars and a sell stop one tick below the lowest low (the first
to fill cancels the other). When long, rest a protective sell stop one tick below the lowest low
of the last ``exit`` bars for the whole position; when short, a buy stop one tick above the
highest high of the last ``exit`` bars. Stops are GTC; at each bar a stop whose level or size
changed is replaced (cancel + new) and one that is still right keeps resting.

Entries are for ``qty``, or with ``fraction`` > 0 for the largest quantity worth at most that
fraction of equity at the entry stop's price (rounded down to the quantity increment; an entry
that rounds to nothing is not placed). While flat, equity does not move, so the size of a
resting entry changes only with its level.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from weltklassebot.model.enums import BUY, SELL
from weltklassebot.model.records import Fill, Order
from weltklassebot.strategy.base import Bar, Strategy, StrategyContext


class DonchianBreakout(Strategy):
    name: ClassVar[str] = "donchian_breakout"
    version: ClassVar[str] = "1.1.0"
    params: ClassVar[dict[str, Any]] = {"entry": 20, "exit": 10, "qty": Decimal(1),
                                        "fraction": Decimal(0)}

    def validate(self) -> None:
        entry, exit_n = int(self.p["entry"]), int(self.p["exit"])
        if entry < 1 or exit_n < 1:
            raise ValueError("entry and exit must be >= 1")
        if not Decimal(self.p["qty"]) > 0:
            raise ValueError(f"qty ({self.p['qty']}) must be positive")
        fraction = Decimal(self.p.get("fraction", 0))
        if not Decimal(0) <= fraction <= Decimal(10):
            raise ValueError(f"fraction ({fraction}) must be in [0, 10] (0: enter qty instead)")

    def on_start(self, ctx: StrategyContext) -> None:
        entry, exit_n = int(self.p["entry"]), int(self.p["exit"])
        self.qty_ticks = ctx.instrument.qty_ticks(self.p["qty"])
        if self.qty_ticks <= 0:
            inst = ctx.instrument
            raise ValueError(f"qty ({Decimal(self.p['qty']):f}) is less than one quantity "
                             f"increment ({inst.quantity_increment:f}) of {inst.symbol}")
        self.fraction = Decimal(self.p.get("fraction", 0))
        # The channels, computed by the engine (including the bar being closed).
        self.entry_high = ctx.rolling_max("high", entry)
        self.entry_low = ctx.rolling_min("low", entry)
        self.exit_high = ctx.rolling_max("high", exit_n)
        self.exit_low = ctx.rolling_min("low", exit_n)
        # The stops wanted change only with the levels the position uses (and with fills and
        # refusals, after which the engine wakes the strategy anyway): wake on those, indexed
        # by the position's sign (0 flat, 1 long, -1 short).
        self._wakes = (ctx.changed(self.entry_high, self.entry_low), ctx.changed(self.exit_low),
                       ctx.changed(self.exit_high))
        self._woken_for = 0
        ctx.wake_on(self._wakes[0])
        # What on_bar last left resting and for which levels (a cache, not saved: a resumed
        # run finds the same book by the full comparison).
        self._settled: tuple[int, int, int] | None = None
        self._resting: list[Order] = []

    def save(self, ctx: StrategyContext) -> dict[str, Any] | None:
        return {}  # the channels are engine series, which the engine saves

    def load(self, ctx: StrategyContext, data: dict[str, Any]) -> None:
        self.on_start(ctx)  # declares the same series; on_start submits nothing

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        if not self.entry_high.ready:
            return
        position = ctx.position_ticks
        sign = (position > 0) - (position < 0)
        if sign != self._woken_for:
            self._woken_for = sign
            ctx.wake_on(self._wakes[sign])
        # The stops wanted follow from the position and at most two channel levels.
        if position == 0:
            entry_high, entry_low = self.entry_high.value, self.entry_low.value
            levels = (0, entry_high, entry_low)
        elif position > 0:
            exit_low = self.exit_low.value
            levels = (position, exit_low, 0)
        else:
            exit_high = self.exit_high.value
            levels = (position, exit_high, 0)
        orders = ctx.open_orders
        if levels == self._settled and orders == self._resting:
            return  # the book holds exactly the stops these levels want: nothing to replace
        qty = self.qty_ticks
        wanted: list[tuple[int, int, int, str]]  # (side, qty, stop, tag)
        if position == 0:
            long_qty = short_qty = qty
            if self.fraction:
                long_qty = ctx.qty_for_fraction(self.fraction, entry_high + 1)
                short_qty = ctx.qty_for_fraction(self.fraction, max(1, entry_low - 1))
            wanted = [(BUY, long_qty, entry_high + 1, "long_entry")] if long_qty > 0 else []
            if entry_low > 1 and short_qty > 0:
                wanted.append((SELL, short_qty, entry_low - 1, "short_entry"))
        elif position > 0:
            wanted = [(SELL, position, exit_low - 1, "long_exit")] if exit_low > 1 else []
        else:
            wanted = [(BUY, -position, exit_high + 1, "short_exit")]
        # Keep a resting stop that is already right; replace only what changed.
        acted = False
        for order in orders:
            if not order.filled:
                key = (order.side, order.qty, order.stop, order.tag)
                if key in wanted:
                    wanted.remove(key)
                    continue
            ctx.cancel(order.order_id)
            acted = True
        for side, size, stop, tag in wanted:  # the stops still missing
            ctx.submit_ticks(side, size, stop_ticks=stop, tag=tag)
            acted = True
        # Remember levels and book once they needed nothing (the next bar that finds both the
        # same returns at once). After cancels or submits the next call with these levels
        # checks the book in full again: a stop refused, or clipped by risk, is replaced.
        if acted:
            self._settled = None
        else:
            self._settled, self._resting = levels, orders

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> None:
        # One entry filled: the opposite entry must not also fill (one-cancels-other).
        if ctx.position_ticks != 0:
            for order in ctx.open_orders:
                if order.tag.endswith("_entry"):
                    ctx.cancel(order.order_id)
