"""Incremental indicators with exact integer state (prices are integer ticks).

Each ``update`` costs O(1) (amortised for the rolling extremes) and only sees values already
passed in, so an indicator cannot look ahead. Decisions compare exact integers: e.g. two moving
averages compare as ``sum_fast * slow_n`` vs ``sum_slow * fast_n``, so a tie is never a cross.
"""

from __future__ import annotations

from collections import deque
from typing import Any


class RollingSum:
    """Exact sum of the last ``window`` integers; ``ready`` once the window is full."""

    __slots__ = ("_buffer", "_count", "_pos", "sum", "window")

    def __init__(self, window: int) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self.window = window
        self._buffer = [0] * window
        self._pos = 0
        self._count = 0
        self.sum = 0

    def update(self, value: int) -> int:
        pos = self._pos
        self.sum += value - self._buffer[pos]
        self._buffer[pos] = value
        self._pos = pos + 1 if pos + 1 < self.window else 0
        if self._count < self.window:
            self._count += 1
        return self.sum

    @property
    def ready(self) -> bool:
        return self._count >= self.window

    def state(self) -> dict[str, Any]:
        """Plain data to continue exactly where this left off (a strategy's ``save``)."""
        return {"buffer": list(self._buffer), "pos": self._pos, "count": self._count,
                "sum": self.sum}

    def load_state(self, state: dict[str, Any]) -> None:
        buffer = [int(v) for v in state["buffer"]]
        if len(buffer) != self.window:
            raise ValueError(f"saved window {len(buffer)} is not this indicator's {self.window}")
        self._buffer = buffer
        self._pos = int(state["pos"])
        self._count = int(state["count"])
        self.sum = int(state["sum"])


class RollingMax:
    """Maximum of the last ``window`` values (monotonic deque)."""

    __slots__ = ("_count", "_items", "window")

    def __init__(self, window: int) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self.window = window
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
        return self._items[0][1]

    @property
    def ready(self) -> bool:
        return self._count >= self.window

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
    """Minimum of the last ``window`` values."""

    __slots__ = ("_max",)

    def __init__(self, window: int) -> None:
        self._max = RollingMax(window)

    def update(self, value: int) -> int:
        return -self._max.update(-value)

    @property
    def value(self) -> int:
        return -self._max.value

    @property
    def ready(self) -> bool:
        return self._max.ready

    def state(self) -> dict[str, Any]:
        """Plain data to continue exactly where this left off (a strategy's ``save``)."""
        return self._max.state()

    def load_state(self, state: dict[str, Any]) -> None:
        self._max.load_state(state)
