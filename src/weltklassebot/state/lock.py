"""One writer per state directory: an advisory ``flock`` on ``store.lock``.

The kernel drops the lock when its holder dies, so a ``kill -9`` never leaves a stale lock; the
file itself stays and names the last holder's pid for messages.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from weltklassebot.state.errors import StoreLocked, StoreUnusable, describe_os_error
from weltklassebot.state.segment import LOCK_NAME

_READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


class StoreLock:
    """An exclusive lock on a state directory, or the note that none could be taken."""

    __slots__ = ("_fd", "error", "path")

    def __init__(self, fd: int | None, path: Path, error: OSError | None = None) -> None:
        self._fd = fd
        self.path = path
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
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _holder(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise StoreLocked(directory, holder) from None
            raise
        if writable:
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"pid {os.getpid()}\n".encode("ascii"), 0)
            except OSError:
                pass  # the pid is only for messages; the flock is what counts
        return cls(fd, path)

    @property
    def held(self) -> bool:
        """True when this process holds the directory's lock."""
        return self._fd is not None

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return f"process {text[4:]}" if text.startswith("pid ") else "another process"
