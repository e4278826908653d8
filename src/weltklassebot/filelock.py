"""Exclusive advisory locks: ``flock(2)`` with a time-out, and a note naming the holder.

Three edges let one process at a time change a directory: the snapshot directory
(``data.catalog.lock``), a service's state directory (``service.operator``) and the state store
(``state.lock``). They take the lock the same way, by non-blocking attempts until a deadline, and
the holder leaves a note in the lock file that the messages of whoever waits quote; each caller
keeps its own lock file, note format, error types and wording. The kernel drops the lock when its
holder dies, so a killed process never leaves a stale lock; the note may outlive it and is only
ever used for messages.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

BUSY_ERRNOS = frozenset({errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES})
"""What a non-blocking ``flock`` fails with while another process holds the lock."""
POLL_INTERVAL_S = 0.05


def flock_exclusive(fd: int, timeout_s: float, *,
                    on_busy: Callable[[], None] | None = None) -> bool:
    """Take an exclusive ``flock`` on ``fd``, retrying until ``timeout_s`` seconds have passed.

    Returns ``True`` once the lock is held and ``False`` if another process still holds it at the
    deadline; at least one attempt is made, so ``timeout_s=0`` tries exactly once. ``on_busy`` is
    called once, the first time the lock is found held while there is time left to wait. Any other
    failure raises the ``OSError``.
    """
    deadline = time.monotonic() + timeout_s
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in BUSY_ERRNOS:
                raise
        if time.monotonic() >= deadline:
            return False
        if not told and on_busy is not None:
            on_busy()
            told = True
        time.sleep(POLL_INTERVAL_S)


def write_note(fd: int, text: str, *, sync: bool = False) -> None:
    """Replace the lock file's contents with ``text``, the holder's note; fsync when ``sync``."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)
    if sync:
        os.fsync(fd)


def read_note(fd: int, limit: int) -> str:
    """The first ``limit`` bytes of the holder's note, stripped; ``""`` when it cannot be read."""
    try:
        return os.pread(fd, limit, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""


class HeldLock:
    """An exclusive ``flock`` held through an open descriptor until :meth:`release`."""

    __slots__ = ("_fd", "path")

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path = path
        self._fd = fd

    @property
    def held(self) -> bool:
        """True while this process holds the lock."""
        return self._fd is not None

    def release(self) -> None:
        """Release the lock and close its descriptor (idempotent)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
