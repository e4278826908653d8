"""The store's only door to the filesystem for writes: a small object tests can replace.

``FileOps`` does plain POSIX calls. A test subclass overrides one method to fail with ``ENOSPC``,
to write half a record, or to kill the process between two writes; the store never patches
``os``. Reads go through ``open()`` directly: they cannot damage anything.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from weltklassebot.fsutil import adopt_directory_owner


class FileOps:
    """POSIX file operations used by the store for everything that changes the disk."""

    def open_append(self, path: Path) -> int:
        """Open an existing segment for appending; return its descriptor."""
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)

    def open_new(self, path: Path, mode: int) -> int:
        """Create (or empty) ``path`` for appending with permission bits ``mode``."""
        return os.open(
            path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode
        )

    def open_mark(self, path: Path, mode: int) -> int:
        """Open (creating if needed) the high-water mark file for in-place rewrites."""
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)

    def write_mark(self, fd: int, data: bytes) -> None:
        """Overwrite the mark file with ``data`` from offset 0 (it never changes size)."""
        if os.pwrite(fd, data, 0) != len(data):
            raise OSError(errno.EIO, "short write of the high-water mark")

    def adopt_owner(self, path: Path, directory: Path) -> None:
        """Give a file root created the owner of the state directory (see fsutil)."""
        adopt_directory_owner(path, directory)

    def write(self, fd: int, data: bytes) -> int:
        """Write some of ``data``; return how many bytes the kernel took."""
        return os.write(fd, data)

    def write_all(self, fd: int, data: bytes) -> None:
        """Write all of ``data``, looping over short writes."""
        offset = 0
        while offset < len(data):
            written = self.write(fd, data[offset:])
            if written <= 0:
                raise OSError(errno.EIO, "the kernel accepted no bytes")
            offset += written

    def fsync(self, fd: int) -> None:
        """Make the file's data (and its size) durable."""
        os.fdatasync(fd)

    def truncate(self, fd: int, size: int) -> None:
        """Cut the file back to ``size`` bytes."""
        os.ftruncate(fd, size)

    def truncate_path(self, path: Path, size: int) -> None:
        """Cut the file at ``path`` back to ``size`` bytes and make that durable."""
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self, fd: int) -> None:
        """Close a descriptor."""
        os.close(fd)

    def rename(self, source: Path, target: Path) -> None:
        """Atomically rename ``source`` to ``target`` (same directory)."""
        os.rename(source, target)

    def unlink(self, path: Path) -> None:
        """Remove a file."""
        os.unlink(path)

    def fsync_dir(self, directory: Path) -> None:
        """Make the directory's entries (creations, renames, removals) durable."""
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
