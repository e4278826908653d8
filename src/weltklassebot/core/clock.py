"""Clocks: the core only asks an injected ``Clock``; only the service edge uses ``WallClock``."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Source of the current time in integer nanoseconds UTC."""

    def now_ns(self) -> int: ...


class SimClock:
    """Event clock: advanced by the engine to each event's time; never goes backwards."""

    __slots__ = ("_now",)

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def advance_to(self, ts_ns: int) -> None:
        if ts_ns < self._now:
            raise ValueError(f"event clock cannot go back from {self._now} to {ts_ns}")
        self._now = ts_ns


class WallClock:
    """Real time, for pacing the live simulation and for wall-time measurements at the edges."""

    __slots__ = ()

    def now_ns(self) -> int:
        return time.time_ns()
