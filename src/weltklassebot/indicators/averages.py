"""Moving averages: simple (with its exact integer sum), exponential and weighted; and the exact
crossing of two simple means.

Warm-ups follow TA-Lib: SMA and WMA are ready after ``window`` values, and the EMA is seeded
with the simple mean of its first ``window`` values, so it is ready after ``window`` values too.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from weltklassebot.indicators._base import (
    INT64_SAFE,
    ArrayLike,
    check_period,
    check_saved,
    fits,
    floats,
    int_input,
    number_input,
    ready_after,
    window_sums,
)
from weltklassebot.indicators.rolling import RollingSum


class SMA:
    """Simple moving average of the last ``window`` integers.

    ``value`` is ``total / window`` (a float; 0.0 until ready), ``total`` the exact integer sum
    (the sum so far before the window is full): compare two averages exactly as
    ``a.total * b.window`` vs ``b.total * a.window``, or with ``Cross``.
    """

    __slots__ = ("_sum", "value")

    def __init__(self, window: int) -> None:
        self._sum = RollingSum(window)
        self.value = 0.0

    @property
    def window(self) -> int:
        return self._sum.window

    @property
    def total(self) -> int:
        return self._sum.value

    @property
    def ready(self) -> bool:
        return self._sum.ready

    def update(self, value: int) -> float:
        total = self._sum.update(value)
        if self._sum.ready:
            self.value = float(total) / self._sum.window
        return self.value

    def update_many(self, values: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``update`` for each value in turn: (averages, ready), vectorised."""
        sums, ready = self._sum.update_many(values)
        means = np.where(ready, floats(sums) / self._sum.window, 0.0)
        if sums.size and self._sum.ready:
            self.value = float(means[-1])
        return means, ready

    def state(self) -> dict[str, Any]:
        """Plain data to continue exactly where this left off (a strategy's ``save``)."""
        return {"kind": "sma", "window": self.window, "sum": self._sum.state()}

    def load_state(self, state: dict[str, Any]) -> None:
        check_saved(state, "sma", {"window": self.window})
        self._sum.load_state(state["sum"])
        self.value = float(self._sum.value) / self.window if self._sum.ready else 0.0


class EMA:
    """Exponential moving average, ``alpha = 2 / (window + 1)``.

    Seeded as TA-Lib seeds it: the simple mean of the first ``window`` values is the first
    value (ready from then on); after that ``value += (x - value) * alpha``. 0.0 until ready.
    Takes floats too (e.g. to smooth another indicator).
    """

    __slots__ = ("_count", "_seed", "alpha", "value", "window")

    def __init__(self, window: int) -> None:
        self.window = check_period("window", window)
        self.alpha = 2.0 / (self.window + 1)
        self._count = 0
        self._seed: float = 0
        self.value = 0.0

    @property
    def ready(self) -> bool:
        return self._count >= self.window

    def update(self, value: float) -> float:
        if self._count < self.window:
            self._seed += value
            self._count += 1
            if self._count == self.window:
                self.value = float(self._seed) / self.window
            return self.value
        self.value = (value - self.value) * self.alpha + self.value
        return self.value

    def update_many(self, values: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``update`` for each value in turn: (averages, ready). A recursion: the same loop as
        ``update`` (vectorising it would change its rounding)."""
        items = number_input(values)
        before = self._count
        out = [0.0] * len(items)
        k = 0
        while k < len(items) and self._count < self.window:
            out[k] = self.update(items[k])
            k += 1
        value, alpha = self.value, self.alpha
        for j in range(k, len(items)):
            value = (items[j] - value) * alpha + value
            out[j] = value
        self.value = value
        return np.array(out, dtype=np.float64), ready_after(before, len(items), self.window)

    def state(self) -> dict[str, Any]:
        """Plain data to continue exactly where this left off (a strategy's ``save``)."""
        return {"kind": "ema", "window": self.window, "count": self._count, "seed": self._seed,
                "value": self.value}

    def load_state(self, state: dict[str, Any]) -> None:
        check_saved(state, "ema", {"window": self.window})
        self._count = int(state["count"])
        self._seed = state["seed"]
        self.value = float(state["value"])


class WMA:
    """Linearly weighted moving average of the last ``window`` integers (weights 1..window,
    newest heaviest), from an exact integer numerator kept in O(1) per value.

    ``value`` is ``numerator / (window * (window + 1) / 2)``; 0.0 until ready.
    """

    __slots__ = ("_den", "_num", "_total", "_values", "value", "window")

    def __init__(self, window: int) -> None:
        self.window = check_period("window", window)
        self._den = self.window * (self.window + 1) // 2
        self._values: deque[int] = deque(maxlen=self.window)
        self._total = 0
        self._num = 0
        self.value = 0.0

    @property
    def ready(self) -> bool:
        return len(self._values) == self.window

    def update(self, value: int) -> float:
        values = self._values
        n = self.window
        if len(values) == n:
            # Every weight drops by one (minus the old total) and the new value weighs n.
            self._num += n * value - self._total
            self._total += value - values[0]
            values.append(value)
        else:
            values.append(value)
            self._total += value
            if len(values) < n:
                return self.value
            self._num = sum((k + 1) * v for k, v in enumerate(values))
        self.value = float(self._num) / self._den
        return self.value

    def update_many(self, values: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``update`` for each value in turn: (averages, ready), vectorised."""
        arr = int_input(values)
        m = arr.size
        n = self.window
        if not m:
            return np.zeros(0, dtype=np.float64), np.zeros(0, dtype=bool)
        head = list(self._values)[1:] if len(self._values) == n else list(self._values)
        limit = INT64_SAFE // self._den
        if not fits(arr, limit) or any(abs(v) >= limit for v in head):
            before = len(self._values)
            looped = [self.update(v) for v in arr.tolist()]
            return np.array(looped, dtype=np.float64), ready_after(before, m, n)
        ready = ready_after(len(self._values), m, n)
        ext = np.concatenate((np.array(head, dtype=np.int64), arr))
        # numerator at i = sum over its window s..i of (j - s + 1) * x_j
        #                = (Q[i+1] - Q[s]) - (s - 1) * (P[i+1] - P[s]),
        # with P and Q the prefix sums of x_j and j * x_j; exact modulo 2**64 and the result
        # fits in int64, so exact.
        positions = np.arange(ext.size, dtype=np.int64)
        zero = np.zeros(1, dtype=np.int64)
        with np.errstate(over="ignore"):
            prefix = np.concatenate((zero, np.cumsum(ext, dtype=np.int64)))
            weighted = np.concatenate((zero, np.cumsum(positions * ext, dtype=np.int64)))
            ends = positions[len(head):] + 1
            starts = np.maximum(ends - n, 0)
            nums = (weighted[ends] - weighted[starts]) - (starts - 1) * (prefix[ends]
                                                                         - prefix[starts])
        out = np.where(ready, nums.astype(np.float64) / self._den, 0.0)
        self._values.extend(arr[max(0, m - n):].tolist())
        self._total = int(window_sums(ext[-n:], n)[-1])
        if ready[-1]:
            self._num = int(nums[-1])
            self.value = float(out[-1])
        return out, ready

    def state(self) -> dict[str, Any]:
        """Plain data to continue exactly where this left off (a strategy's ``save``)."""
        return {"kind": "wma", "window": self.window, "values": list(self._values),
                "total": self._total, "num": self._num, "value": self.value}

    def load_state(self, state: dict[str, Any]) -> None:
        check_saved(state, "wma", {"window": self.window})
        self._values = deque((int(v) for v in state["values"]), maxlen=self.window)
        self._total = int(state["total"])
        self._num = int(state["num"])
        self.value = float(state["value"])


def _exact_mean(indicator: RollingSum | SMA) -> tuple[int, int, bool]:
    total = indicator.value if isinstance(indicator, RollingSum) else indicator.total
    return total, indicator.window, indicator.ready


class Cross:
    """+1 at the update where the mean of ``a`` crosses above the mean of ``b``, -1 where it
    crosses below, else 0; ``a`` and ``b`` are ``SMA`` or ``RollingSum`` indicators updated
    just before.

    The comparison is exact (``sum_a * n_b`` vs ``sum_b * n_a``): a cross needs one mean
    strictly below the other at the previous update and strictly above at this one, both
    ready, so a tie is never a cross. The same rule as the engine's ``ctx.cross``.
    """

    __slots__ = ("_sign", "ready", "value")

    def __init__(self) -> None:
        self._sign = 0
        self.value = 0
        self.ready = False

    def update(self, a: RollingSum | SMA, b: RollingSum | SMA) -> int:
        sum_a, n_a, ready_a = _exact_mean(a)
        sum_b, n_b, ready_b = _exact_mean(b)
        self.ready = ready_a and ready_b
        diff = sum_a * n_b - sum_b * n_a
        sign = ((diff > 0) - (diff < 0)) if self.ready else 0
        previous = self._sign
        self.value = sign if previous and sign and previous != sign else 0
        self._sign = sign
        return self.value

    def state(self) -> dict[str, Any]:
        """Plain data to continue exactly where this left off (a strategy's ``save``)."""
        return {"kind": "cross", "sign": self._sign, "value": self.value, "ready": self.ready}

    def load_state(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "cross":
            raise ValueError(f"saved state of {state.get('kind')} is not a cross's state")
        self._sign = int(state["sign"])
        self.value = int(state["value"])
        self.ready = bool(state["ready"])
