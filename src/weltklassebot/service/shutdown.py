"""Stop requests by signal (SIGTERM, SIGINT), safe to take at any moment.

A Python signal handler runs in the main thread between two bytecodes, also while that thread
is inside a lock. A handler that takes a lock the interrupted code holds waits forever: a
``threading.Event``'s ``set()`` from the handler hangs when the signal lands inside the same
event's ``wait()`` (which holds the event's lock around its checks). The service waited on
such an event between paced events, so a SIGTERM could, rarely, leave it running until
systemd's stop timeout killed it. ``StopLatch`` takes no lock: the handler sets plain
attributes and writes one byte to a pipe that ``wait`` polls.

``python -m cli live`` installs ``request`` as its SIGTERM/SIGINT handler as soon as the process
starts; the service's own latch takes over once it runs and reads ``signal_number`` first. A
signal that arrives while Python is still importing the service is then a clean stop (exit 0
for SIGTERM), never an exception raised in the middle of an import.
"""

from __future__ import annotations

import contextlib
import os
import select
from types import FrameType

signal_number: list[int] = []
"""The signals that came before the service's latch took over (list.append takes no lock)."""


def request(signum: int, _frame: FrameType | None) -> None:
    signal_number.append(signum)


class StopLatch:
    """A stop request set from a signal handler and waited for with a timeout, lock-free.

    Use the instance as the handler (``signal.signal(SIGTERM, latch)``); ``wait(timeout)``
    returns early once a stop is requested. ``close`` releases the pipe."""

    def __init__(self) -> None:
        self.requested = False
        self.signal: int | None = None
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._poll = select.poll()
        self._poll.register(self._read, select.POLLIN)

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        self.requested = True
        self.signal = signum
        # The pipe may be full (already woken) or closed (the service has ended): either way
        # there is nothing left to wake.
        with contextlib.suppress(OSError):
            os.write(self._write, b"\0")

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, less once a stop is requested; whether one is."""
        if not self.requested and timeout > 0:
            # A signal interrupts poll; Python runs the handler (which makes the pipe readable)
            # and then polls again, returning at once.
            self._poll.poll(timeout * 1000.0)
        return self.requested

    def close(self) -> None:
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._read = self._write = -1
