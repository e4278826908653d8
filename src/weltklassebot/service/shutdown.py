"""A stop asked for before the service could listen for it.

``python -m cli live`` installs ``request`` as its SIGTERM/SIGINT handler as soon as the process
starts; the service's own handler takes over once it runs and reads ``pending`` first. A signal
that arrives while Python is still importing the service is then a clean stop (exit 0 for
SIGTERM), never an exception raised in the middle of an import.
"""

from __future__ import annotations

import threading
from types import FrameType

pending = threading.Event()
signal_number: list[int] = []


def request(signum: int, _frame: FrameType | None) -> None:
    signal_number.append(signum)
    pending.set()
