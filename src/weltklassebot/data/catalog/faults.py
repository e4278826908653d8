"""Test hook: kill or pause the process at a named step of a mutating command.

The environment variable ``WELTKLASSE_FAULT_AT`` names steps (comma-separated) at which the process
kills itself with SIGKILL (``step``) or pauses (``step:sleep=SECONDS``). The crash and concurrency
tests use it; it is never set in production.
"""

from __future__ import annotations

import os
import signal
import time

ENV_FAULT = "WELTKLASSE_FAULT_AT"


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
        else:
            os.kill(os.getpid(), signal.SIGKILL)
