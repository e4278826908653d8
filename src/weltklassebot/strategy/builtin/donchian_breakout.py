"""``donchian_breakout``: long and short channel breakout with stop orders.

At each close, once ``entry`` bars are seen: when flat, rest a buy stop one tick above the
highest high of the last ``entry`` bars and a sell stop one tick below the lowest low (the first
to fill cancels the other). When long, rest a protective sell stop one tick below the lowest low
of the last ``exit`` bars for the whole position; when short, a buy stop one tick above the
highest high of the last ``exit`` bars. Stops are GTC; at each bar a stop whose level or size
changed is replaced (cancel + new) and one that is still right keeps resting.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Any, ClassVar

from weltklassebot.model.enums import BUY, SELL
from weltklassebot.model.records import Fill, Order
from weltklassebot.strategy.base import Bar, Strategy, StrategyContext


class _Channel:
    """Highest high and lowest low of the last ``window`` bars.

    The window's highs and lows in two bounded deques; an extreme is looked for again only
    when a new value does not replace it and the value leaving the window was it (a C-level
    ``max`` over ``window`` values). Its saved state is that of a ``RollingMax`` /
    ``RollingMin`` pair over the same bars, so saved runs of earlier releases resume.
    """

    __slots__ = ("_highs", "_lows", "count", "high", "low", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self.count = 0
        self.high = 0
        self.low = 0
        self._highs: deque[int] = deque(maxlen=window)
        self._lows: deque[int] = deque(maxlen=window)

    def update(self, high: int, low: int) -> None:
        highs, lows = self._highs, self._lows
        if self.count < self.window:  # filling the window
            highs.append(high)
            lows.append(low)
            if not self.count or high > self.high:
                self.high = high
            if not self.count or low < self.low:
                self.low = low
            self.count += 1
            return
        self.count += 1
        leaving = highs[0]
        highs.append(high)
        if high >= self.high:
            self.high = high
        elif leaving == self.high:
            self.high = max(highs)
        leaving = lows[0]
        lows.append(low)
        if low <= self.low:
            self.low = low
        elif leaving == self.low:
            self.low = min(lows)

    def states(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The saved states of the ``RollingMax`` of highs and ``RollingMin`` of lows that
        this channel stands for: their deques hold each value (index, value) that is strictly
        above (below) every later one in the window (a ``RollingMin`` keeps negated values)."""
        first = self.count - len(self._highs)
        result = []
        for values, sign in ((self._highs, 1), (self._lows, -1)):
            items: list[list[int]] = []
            for offset in range(len(values) - 1, -1, -1):
                if not items or sign * values[offset] > items[-1][1]:
                    items.append([first + offset, sign * values[offset]])
            items.reverse()
            result.append({"window": self.window, "count": self.count, "items": items})
        return result[0], result[1]

    def load_states(self, high_state: dict[str, Any], low_state: dict[str, Any]) -> None:
        """Continue from a ``RollingMax`` / ``RollingMin`` pair's saved states. A value that
        was no longer in a deque never decides an extreme again; the value of the next item
        after it (which outlives it in the window) stands in for it."""
        windows = []
        for state, sign in ((high_state, 1), (low_state, -1)):
            if int(state["window"]) != self.window:
                raise ValueError(f"saved window {state['window']} is not this indicator's "
                                 f"{self.window}")
            count = int(state["count"])
            items = [(int(i), sign * int(v)) for i, v in state["items"]]
            values = deque[int](maxlen=self.window)
            k = 0
            for index in range(count - min(count, self.window), count):
                while items[k][0] < index:
                    k += 1
                values.append(items[k][1])
            windows.append((count, values))
        (count, highs), (low_count, lows) = windows
        if low_count != count:
            raise ValueError(f"saved counts differ: {count} bars of highs, {low_count} of lows")
        self.count = count
        self._highs, self._lows = highs, lows
        self.high = max(highs) if highs else 0
        self.low = min(lows) if lows else 0


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
        self.entry = _Channel(entry)
        self.exit = _Channel(exit_n)
        # What on_bar last left resting and for which levels (a cache, not saved: a resumed
        # run finds the same book by the full comparison).
        self._settled: tuple[int, int, int] | None = None
        self._resting: list[Order] = []

    def save(self, ctx: StrategyContext) -> dict[str, Any] | None:
        entry_high, entry_low = self.entry.states()
        exit_high, exit_low = self.exit.states()
        return {"entry_high": entry_high, "entry_low": entry_low, "exit_high": exit_high,
                "exit_low": exit_low}

    def load(self, ctx: StrategyContext, data: dict[str, Any]) -> None:
        self.on_start(ctx)
        self.entry.load_states(data["entry_high"], data["entry_low"])
        self.exit.load_states(data["exit_high"], data["exit_low"])

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        entry, exit_ = self.entry, self.exit
        high, low = bar.high, bar.low
        entry.update(high, low)
        exit_.update(high, low)
        if entry.count < entry.window:
            return
        position = ctx.position_ticks
        # The stops wanted follow from the position and at most two channel levels.
        if position == 0:
            levels = (0, entry.high, entry.low)
        elif position > 0:
            levels = (position, exit_.low, 0)
        else:
            levels = (position, exit_.high, 0)
        orders = ctx.open_orders
        if levels == self._settled and orders == self._resting:
            return  # the book holds exactly the stops these levels want: nothing to replace
        wanted: list[tuple[int, int, int, str]] = []  # (side, qty, stop, tag)
        if position == 0:
            wanted.append((BUY, self.qty_ticks, entry.high + 1, "long_entry"))
            if entry.low > 1:
                wanted.append((SELL, self.qty_ticks, entry.low - 1, "short_entry"))
        elif position > 0 and exit_.low > 1:
            wanted.append((SELL, position, exit_.low - 1, "long_exit"))
        elif position < 0:
            wanted.append((BUY, -position, exit_.high + 1, "short_exit"))
        # Keep a resting stop that is already right; replace only what changed.
        missing = list(wanted)
        kept = []
        for order in orders:
            key = (order.side, order.qty - order.filled, order.stop, order.tag)
            if key in missing and order.filled == 0:
                missing.remove(key)
                kept.append(order)
            else:
                ctx.cancel(order.order_id)
        settled = True
        for side, qty, stop, tag in missing:
            if ctx.submit_ticks(side, qty, stop_ticks=stop, tag=tag) is None:
                settled = False  # refused: sent again at the next bar, as it always was
        # Remember the book when it holds exactly the wanted stops, so that the next bar with
        # the same levels and book returns at once. The new stops rest after the kept ones
        # (higher ids); one refused or clipped (risk) leaves nothing to remember.
        if not settled:
            resting = []
        elif missing:
            resting = ctx.open_orders
            settled = len(resting) == len(wanted)
            if settled:
                for order, want in zip(resting[len(kept):], missing, strict=True):
                    if order.filled or (order.side, order.qty, order.stop, order.tag) != want:
                        settled = False
                        break
        else:
            resting = kept
        if settled:
            self._settled, self._resting = levels, resting
        else:
            self._settled, self._resting = None, []

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> None:
        # One entry filled: the opposite entry must not also fill (one-cancels-other).
        if ctx.position_ticks != 0:
            for order in ctx.open_orders:
                if order.tag.endswith("_entry"):
                    ctx.cancel(order.order_id)
