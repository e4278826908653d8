"""Test hook: kill or pause the process at a named step of a mutating command.

The environment variable ``WELTKLASSE_FAULT_AT`` names steps (comma-separated) at which the process
kills itself with SIGKILL (``step``), pauses (``step:sleep=SECONDS``) or pauses until a file exists
(``step:wait=PATH``, at most ``WAIT_LIMIT_S``). A file, unlike a fixed pause, lets a test hold the
lock for exactly as long as its checks take on a slow machine. The crash and concurrency tests use
it; it is never set in production.
"""

from __future__ import annotations

import os
import signal
import time

ENV_FAULT = "WELTKLASSE_FAULT_AT"
WAIT_LIMIT_S = 120.0


def fault_point(step: str) -> None:
    """Test hook: die (SIGKILL) or pause at ``step`` when ``WELTKLASSE_FAULT_AT`` names it."""
    spec = os.environ.get(ENV_FAULT)
    if not spec:
        return
    for item in spec.split(","):
        name, _, action = item.strip().partition(":")
        if name != step:
            continue
        if action.startswith("sleep="):
            time.sleep(float(action.removeprefix("sleep=")))
        elif action.startswith("wait="):
            _wait_for_file(action.removeprefix("wait="))
        else:
            os.kill(os.getpid(), signal.SIGKILL)


def _wait_for_file(path: str) -> None:
    deadline = time.monotonic() + WAIT_LIMIT_S
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
