"""``latest.parquet``: the relative symlink naming the snapshot in use, and its atomic swap.

A new link is created under a temporary name and renamed over the old one, then the directory is
fsync'd, so the link never points at a partial file. ``read_latest`` says exactly what is at the
path (no link, a regular file, a link to a snapshot, to a missing name, outside the directory, to
something that is not a snapshot), so every command can describe it in accurate words.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from weltklassebot.data.catalog.faults import fault_point
from weltklassebot.data.catalog.naming import SIDECAR, TMP_PREFIX, Entry, entry_at
from weltklassebot.fsutil import adopt_directory_owner, fsync_dir

LATEST = "latest.parquet"

# What can be at ``latest.parquet``.
ABSENT = "absent"
"""Nothing: no snapshot promoted yet."""
SNAPSHOT = "snapshot"
"""A link to a snapshot file in this directory (the only healthy state)."""
REGULAR_FILE = "regular file"
"""A plain file where the link belongs (copied by hand): no sidecar vouches for it."""
NOT_A_FILE = "not a file"
"""A directory, socket, FIFO or device where the link belongs."""
MISSING = "missing"
"""A link to a name in this directory that does not exist (dangling)."""
OUTSIDE = "outside"
"""A link to a path outside this directory (whether or not that path exists)."""
NOT_SNAPSHOT = "not a snapshot"
"""A link to something in this directory that is not a snapshot file (a sidecar, a link, ...)."""


@dataclass(frozen=True)
class LatestState:
    kind: str
    target: str | None
    """The link text (a file name in the directory when healthy); ``None`` if not a link."""
    entry: Entry | None
    """The snapshot it points at; set only when ``kind`` is ``SNAPSHOT``."""
    size: int | None = None
    """Size in bytes of a regular file found where the link belongs."""
    resolved: str | None = None
    """Where the link leads, for links that leave the directory."""

    @property
    def exists(self) -> bool:
        return self.kind != ABSENT

    @property
    def is_symlink(self) -> bool:
        return self.target is not None

    @property
    def broken(self) -> bool:
        """A link that does not lead to a snapshot of this directory."""
        return self.is_symlink and self.entry is None

    @property
    def relative(self) -> bool:
        return self.target is not None and not os.path.isabs(self.target)

    def describe(self) -> str:
        """What is at ``latest.parquet``, in words an operator can act on."""
        if self.kind == ABSENT:
            return "latest.parquet does not exist"
        if self.kind == REGULAR_FILE:
            return (f"latest.parquet is a regular file ({self.size:,} bytes), not the link to a "
                    "snapshot that the catalog manages; no sidecar vouches for its bytes")
        if self.kind == NOT_A_FILE:
            return "latest.parquet is not a link or a file (a directory or special file)"
        if self.kind == MISSING:
            return (f"latest.parquet points to {self.target}, which does not exist in the "
                    "directory (dangling link)")
        if self.kind == OUTSIDE:
            where = self.resolved or self.target
            exists = "exists" if self.resolved and os.path.exists(self.resolved) \
                else "does not exist"
            return (f"latest.parquet points outside the snapshot directory, to {where} (which "
                    f"{exists}); only snapshots in the directory are checked against a sidecar")
        if self.kind == NOT_SNAPSHOT:
            return (f"latest.parquet points to {self.target}, which is in the directory but is "
                    "not a snapshot file")
        assert self.entry is not None
        return f"latest.parquet -> {self.target}"

    def sidecar_problem(self) -> str | None:
        """For a link to a snapshot: what is wrong with its sidecar (not with its bytes)."""
        if self.entry is None:
            return None
        recorded = self.entry.recorded_sha256()
        if recorded is None:
            return (f"latest.parquet points to {self.entry.file}, whose sidecar "
                    f"{self.entry.file}{SIDECAR} is missing, so its bytes cannot be checked")
        if recorded == "":
            return (f"latest.parquet points to {self.entry.file}, whose sidecar "
                    f"{self.entry.file}{SIDECAR} does not hold a SHA-256, so its bytes cannot "
                    "be checked")
        return None


def read_latest(directory: Path) -> LatestState:
    """What is at ``directory/latest.parquet``."""
    link = directory / LATEST
    if not link.is_symlink():
        if not os.path.lexists(link):
            return LatestState(ABSENT, None, None)
        if link.is_file():
            return LatestState(REGULAR_FILE, None, None, size=link.stat().st_size)
        return LatestState(NOT_A_FILE, None, None)
    target = os.readlink(link)
    candidate = Path(os.path.normpath(os.path.join(directory, target)))
    try:
        inside = os.path.realpath(candidate.parent) == os.path.realpath(directory)
    except OSError:
        inside = False
    if not inside:
        return LatestState(OUTSIDE, target, None, resolved=str(candidate))
    if not os.path.lexists(candidate):
        return LatestState(MISSING, target, None)
    entry = entry_at(directory, candidate.name)
    if entry is None:
        return LatestState(NOT_SNAPSHOT, target, None)
    return LatestState(SNAPSHOT, target, entry)


def swap_latest(directory: Path, target: str, step_prefix: str) -> None:
    """Point ``latest.parquet`` at ``target`` atomically and durably.

    The caller has moved anything but a link out of the way first (``os.replace`` would
    silently delete a regular file found there).
    """
    tmp = directory / f"{TMP_PREFIX}{LATEST}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    adopt_directory_owner(tmp, directory)
    fault_point(f"{step_prefix}link_created")
    link = directory / LATEST
    if os.path.lexists(link) and not link.is_symlink():
        tmp.unlink()
        raise FileExistsError(f"{link} is not a link; it was not replaced")
    os.replace(tmp, link)
    fault_point(f"{step_prefix}swapped")
    fsync_dir(directory)
    fault_point(f"{step_prefix}dir_synced")
