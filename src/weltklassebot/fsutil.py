"""File-system helpers shared by every edge that writes durably: hashing and fsync.

Durable writes follow one pattern everywhere: write a temporary file in the target directory,
fsync it, rename it over the final name, fsync the directory.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_BLOCK = 1 << 20


def sha256_file(path: Path) -> str:
    """Lowercase hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def write_and_sync(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (looping over short writes), then ``fsync`` it."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


def fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (creations, renames, deletions) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def adopt_directory_owner(path: Path, directory: Path | None = None) -> None:
    """Give ``path`` the owner and group of the directory that holds it.

    Operators run commands such as ``risk halt`` or ``snapshot promote`` as root in directories
    that belong to the service's own user. A file root creates there would be root's, and the
    service could no longer append to it or replace it. Only root can change an owner, and
    only root creates files of a foreign owner, so for anyone else this is a no-op. Symlinks
    are changed themselves, never their targets.
    """
    if os.geteuid() != 0:
        return
    parent = directory if directory is not None else path.parent
    wanted = os.stat(parent)
    current = os.lstat(path)
    if (current.st_uid, current.st_gid) != (wanted.st_uid, wanted.st_gid):
        os.chown(path, wanted.st_uid, wanted.st_gid, follow_symlinks=False)
