"""Stage probes: how long each of the five pipeline stages takes, per event.

The engine brackets its stages (ingest is the feed's, outside it) with ``enter(stage)`` and
``exit()``; a probe charges the time between to that stage *exclusively*: when execution calls
accounting (a fill being booked) and accounting calls the strategy (``on_fill``), each stage gets
only its own time. The backtest runs with no probe (``engine.probe is None``: one attribute test
per stage, nothing measurable); the live service injects a ``TimingProbe`` and exports what it
measured. The only module of the core that reads a timer: ``time.perf_counter_ns``, injected as
``timer`` so tests can drive it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, Protocol

STAGES: Final = ("ingest", "strategy", "risk", "execution", "accounting")


class StageProbe(Protocol):
    """What the engine calls around each stage."""

    def enter(self, stage: str) -> None: ...

    def exit(self) -> None: ...

    def event_done(self) -> None: ...


class TimingProbe:
    """Exclusive nanoseconds per stage: for the last event and in total, with event counts."""

    __slots__ = ("_mark", "_stack", "_timer", "current", "events", "last", "total")

    def __init__(self, timer: Callable[[], int] = time.perf_counter_ns) -> None:
        self._timer = timer
        self._stack: list[str] = []
        self._mark = 0
        self.current = dict.fromkeys(STAGES, 0)
        self.last = dict.fromkeys(STAGES, 0)
        self.total = dict.fromkeys(STAGES, 0)
        self.events = 0

    def enter(self, stage: str) -> None:
        now = self._timer()
        if self._stack:
            self.current[self._stack[-1]] += now - self._mark
        self._stack.append(stage)
        self._mark = now

    def exit(self) -> None:
        now = self._timer()
        stage = self._stack.pop()
        self.current[stage] += now - self._mark
        self._mark = now

    def event_done(self) -> None:
        """One event (a bar, with everything it caused) is complete."""
        for stage, spent in self.current.items():
            self.last[stage] = spent
            self.total[stage] += spent
            self.current[stage] = 0
        self.events += 1
