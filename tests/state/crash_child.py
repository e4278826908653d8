"""Child process for the crash tests: appends fill records until it is killed.

Usage: ``python crash_child.py MODE DIRECTORY [N]``. It opens (and so recovers) the store, writes
``ready`` to stdout, then appends fills with the deterministic ``support.payload`` of their data
index, three durable records out of four. After each durable ``append`` returns it writes the
acknowledged sequence number to stdout with one ``os.write`` (no buffering to lose).

MODE ``loop`` appends forever (the parent kills it with SIGKILL at a random moment). MODE
``split`` appends N records, then writes the next record in two halves and kills itself with
SIGKILL between them; MODE ``split-batch`` does the same for a batch of buffered records, and
``split-rotation`` for the checkpoint that starts a new segment.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from state.support import CHILD_CONFIG, payload, ts_for
from weltklassebot.state.codec import encode_record
from weltklassebot.state.fileops import FileOps
from weltklassebot.state.jsonl_store import JsonlStore

CONFIG = CHILD_CONFIG


class SplitOps(FileOps):
    """Writes the armed write in two halves and dies between them."""

    armed = False

    def write(self, fd: int, data: bytes) -> int:
        if self.armed:
            os.write(fd, data[: len(data) // 2 + 1])
            os.kill(os.getpid(), signal.SIGKILL)
        return super().write(fd, data)


def main() -> None:
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    mode, directory = sys.argv[1], Path(sys.argv[2])
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else -1
    state: dict[str, Any] = {"count": 0, "last": 0}
    ops = SplitOps()
    store = JsonlStore.open(directory, CONFIG, lambda: dict(state), ops=ops)
    recovery = store.recovery
    if recovery.checkpoint is not None:
        state["count"] = recovery.checkpoint["count"] + len(recovery.records)
        state["last"] = recovery.next_seq - 1
    os.write(1, b"ready\n")
    appended = 0
    while True:
        index = state["count"] + 1
        durable = index % 4 != 0
        if appended >= limit >= 0:
            line = encode_record(store.next_seq, ts_for(index), "fill", payload(index))
            rotates = store.active_bytes + len(line) > CONFIG.max_segment_bytes
            if mode == "split":
                ops.armed = durable and not rotates
            elif mode == "split-batch":
                durable = False
                ops.armed = store.pending == CONFIG.batch_records - 1 and not rotates
            elif mode == "split-rotation":
                ops.armed = rotates
        seq = store.append("fill", payload(index), ts_for(index), durable=durable)
        state["count"] = index
        state["last"] = seq
        appended += 1
        if durable:
            os.write(1, b"%d\n" % seq)


if __name__ == "__main__":
    main()
