"""One writer per state directory: an advisory ``flock`` on ``store.lock``.

The kernel drops the lock when its holder dies, so a ``kill -9`` never leaves a stale lock; the
file itself stays and names the last holder's pid for messages.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from weltklassebot.filelock import HeldLock, flock_exclusive, read_note, write_note
from weltklassebot.fsutil import adopt_directory_owner
from weltklassebot.state.errors import StoreLocked, StoreUnusable, describe_os_error
from weltklassebot.state.segment import LOCK_NAME

_READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


class StoreLock(HeldLock):
    """An exclusive lock on a state directory, or the note that none could be taken."""

    __slots__ = ("error",)

    def __init__(self, fd: int | None, path: Path, error: OSError | None = None) -> None:
        super().__init__(path, fd)
        self.error = error

    @classmethod
    def acquire(cls, directory: Path, mode: int) -> StoreLock:
        """Lock ``directory``; raise ``StoreLocked`` if another process holds it.

        On a read-only directory without a lock file no lock can be taken; the returned lock then
        has ``held`` false and the caller must not write.
        """
        path = directory / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
            writable = True
            with contextlib.suppress(OSError):  # only root changes owners; see fsutil
                adopt_directory_owner(path)
        except OSError as exc:
            if exc.errno not in _READ_ONLY_ERRNOS:
                raise StoreUnusable(
                    directory,
                    f"the lock file {LOCK_NAME} cannot be opened: {describe_os_error(exc)}",
                    "Fix the state directory's permissions or the disk, then start again.",
                ) from None
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return cls(None, path, exc)
            writable = False
        try:
            acquired = flock_exclusive(fd, 0.0)
        except OSError:
            os.close(fd)
            raise
        if not acquired:
            holder = _holder(fd)
            os.close(fd)
            raise StoreLocked(directory, holder) from None
        if writable:
            # The pid is only for messages; the flock is what counts.
            with contextlib.suppress(OSError):
                write_note(fd, f"pid {os.getpid()}\n")
        return cls(fd, path)


def _holder(fd: int) -> str:
    text = read_note(fd, 64)
    return f"process {text[4:]}" if text.startswith("pid ") else "another process"
