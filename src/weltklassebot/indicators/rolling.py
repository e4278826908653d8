"""Exact rolling windows over integers: sum, maximum and minimum.

Prices are integer ticks, so these are exact: a decision taken on them never depends on float
rounding, and a tie stays a tie.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from weltklassebot.core.ints import int_array
from weltklassebot.indicators._base import (
    INT64_SAFE,
    ArrayLike,
    check_period,
    fits,
    int_input,
    ready_after,
    sliding_max,
    window_sums,
)


class RollingSum:
    """Exact sum of the last ``window`` integers.

    ``value`` is the sum (before the window is full: the sum so far); ``ready`` once ``window``
    values were seen. ``sum`` is a deprecated alias of ``value`` kept for existing strategies.
    """

    __slots__ = ("_buffer", "_count", "_pos", "value", "window")

    def __init__(self, window: int) -> None:
        self.window = check_period("window", window)
        self._buffer = [0] * self.window
        self._pos = 0
        self._count = 0
        self.value = 0

    @property
    def sum(self) -> int:
        """Deprecated alias of ``value`` (the sum); use ``value``."""
        return self.value

    def update(self, value: int) -> int:
        pos = self._pos
        self.value += value - self._buffer[pos]
        self._buffer[pos] = value
        self._pos = pos + 1 if pos + 1 < self.window else 0
        if self._count < self.window:
            self._count += 1
        return self.value

    @property
    def ready(self) -> bool:
        return self._count >= self.window

    def update_many(self, values: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``update`` for each value in turn: (sums, ready), vectorised."""
        arr = int_input(values)
        m = arr.size
        n = self.window
        if not m:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
        head = self.tail(n - 1)
        if not fits(arr, INT64_SAFE // n) or any(abs(v) >= INT64_SAFE // n for v in head):
            return self._loop(arr.tolist())
        ready = ready_after(self._count, m, n)
        ext = np.concatenate((np.array(head, dtype=np.int64), arr))
        sums = window_sums(ext, n)[len(head):]
        # The ring buffer exactly as single updates leave it.
        buffer, pos = self._buffer, self._pos
        new = arr.tolist()
        for k in range(max(0, m - n), m):
            buffer[(pos + k) % n] = new[k]
        self._pos = (pos + m) % n
        self._count = min(self._count + m, n)
        self.value = int(sums[-1])
        return sums, ready

    def _loop(self, values: list[int]) -> tuple[np.ndarray, np.ndarray]:
        before = self._count
        sums = [self.update(v) for v in values]
        return int_array(sums), ready_after(before, len(values), self.window)

    def tail(self, k: int) -> list[int]:
        """The last ``k`` values seen (fewer at the start), oldest first."""
        if self._count < self.window:
            values = self._buffer[:self._count]
        else:
            values = self._buffer[self._pos:] + self._buffer[:self._pos]
        return values[len(values) - k:] if k < len(values) else values

    def state(self) -> dict[str, Any]:
        """Plain data to continue exactly where this left off (a strategy's ``save``)."""
        return {"buffer": list(self._buffer), "pos": self._pos, "count": self._count,
                "sum": self.value}

    def load_state(self, state: dict[str, Any]) -> None:
        buffer = [int(v) for v in state["buffer"]]
        if len(buffer) != self.window:
            raise ValueError(f"saved window {len(buffer)} is not this indicator's {self.window}")
        self._buffer = buffer
        self._pos = int(state["pos"])
        self._count = int(state["count"])
        self.value = int(state["sum"])


class RollingMax:
    """Highest of the last ``window`` integers (a monotonic queue: O(1) amortised).

    ``value`` is the highest (before the window is full: the highest so far; 0 before any
    value); ``ready`` once ``window`` values were seen.
    """

    __slots__ = ("_count", "_items", "window")

    def __init__(self, window: int) -> None:
        self.window = check_period("window", window)
        self._items: deque[tuple[int, int]] = deque()
        self._count = 0

    def update(self, value: int) -> int:
        index = self._count
        self._count += 1
        items = self._items
        while items and items[-1][1] <= value:
            items.pop()
        items.append((index, value))
        if items[0][0] <= index - self.window:
            items.popleft()
        return items[0][1]

    @property
    def value(self) -> int:
        return self._items[0][1] if self._items else 0

    @property
    def ready(self) -> bool:
        return self._count >= self.window

    def update_many(self, values: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``update`` for each value in turn: (highest values, ready), vectorised."""
        arr = int_input(values)
        m = arr.size
        if not m:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
        if not fits(arr, INT64_SAFE) or any(abs(v) >= INT64_SAFE for _, v in self._items):
            return self._loop(arr.tolist())
        n = self.window
        start = self._count
        ready = ready_after(start, m, n)
        # The window before this chunk: the queued values at their places, and in between a
        # value no higher than any real one. A value the queue dropped had a later value at
        # least as high, which every later window holding it also holds: so no later maximum
        # changes.
        low = min(int(arr.min()), min((v for _, v in self._items), default=0))
        head = np.full(n - 1, low, dtype=np.int64)
        for index, v in self._items:
            at = index - (start - (n - 1))
            if at >= 0:
                head[at] = v
        ext = np.concatenate((head, arr))
        out = sliding_max(ext, n)
        # The queue single updates would leave: the values of the last window higher than every
        # later one (of equal values the latest), oldest first.
        end = start + m
        last = ext[-n:]
        later = np.concatenate((np.maximum.accumulate(last[::-1])[::-1][1:],
                                np.array([low - 1], dtype=np.int64)))
        kept = np.flatnonzero(last > later)
        kept = kept[kept >= n - end]  # (positions before the first value hold the filler)
        self._items = deque(zip((kept + (end - n)).tolist(), last[kept].tolist(), strict=True))
        self._count = end
        return out, ready

    def _loop(self, values: list[int]) -> tuple[np.ndarray, np.ndarray]:
        before = self._count
        out = [self.update(v) for v in values]
        return int_array(out), ready_after(before, len(values), self.window)

    def state(self) -> dict[str, Any]:
        """Plain data to continue exactly where this left off (a strategy's ``save``)."""
        return {"window": self.window, "count": self._count,
                "items": [[i, v] for i, v in self._items]}

    def load_state(self, state: dict[str, Any]) -> None:
        if int(state["window"]) != self.window:
            raise ValueError(f"saved window {state['window']} is not this indicator's "
                             f"{self.window}")
        self._count = int(state["count"])
        self._items = deque((int(i), int(v)) for i, v in state["items"])


class RollingMin:
    """Lowest of the last ``window`` integers; as ``RollingMax`` otherwise."""

    __slots__ = ("_max",)

    def __init__(self, window: int) -> None:
        self._max = RollingMax(window)

    @property
    def window(self) -> int:
        return self._max.window

    def update(self, value: int) -> int:
        return -self._max.update(-value)

    @property
    def value(self) -> int:
        return -self._max.value

    @property
    def ready(self) -> bool:
        return self._max.ready

    def update_many(self, values: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``update`` for each value in turn: (lowest values, ready), vectorised."""
        arr = int_input(values)
        if not fits(arr, INT64_SAFE):
            arr = np.array(arr.tolist(), dtype=object)
        out, ready = self._max.update_many(-arr)
        return -out, ready

    def state(self) -> dict[str, Any]:
        """Plain data to continue exactly where this left off (a strategy's ``save``)."""
        return self._max.state()

    def load_state(self, state: dict[str, Any]) -> None:
        self._max.load_state(state)
