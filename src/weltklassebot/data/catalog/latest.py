"""``latest.parquet``: the relative symlink naming the snapshot in use, and its atomic swap.

A new link is created under a temporary name and renamed over the old one, then the directory is
fsync'd, so the link never points at a partial file.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from weltklassebot.data.catalog.faults import fault_point
from weltklassebot.data.catalog.naming import TMP_PREFIX, Entry, entry_at
from weltklassebot.fsutil import fsync_dir

LATEST = "latest.parquet"


@dataclass(frozen=True)
class LatestState:
    exists: bool
    is_symlink: bool
    target: str | None
    """The link text (a file name in the directory when healthy)."""
    entry: Entry | None
    """The snapshot it points at; ``None`` if missing, dangling or pointing elsewhere."""

    @property
    def dangling(self) -> bool:
        return self.is_symlink and self.entry is None


def read_latest(directory: Path) -> LatestState:
    """Where ``directory/latest.parquet`` points."""
    link = directory / LATEST
    if not link.is_symlink():
        return LatestState(exists=link.exists(), is_symlink=False, target=None, entry=None)
    target = os.readlink(link)
    entry = entry_at(directory, target) if "/" not in target else None
    return LatestState(exists=True, is_symlink=True, target=target, entry=entry)


def swap_latest(directory: Path, target: str, step_prefix: str) -> None:
    """Point ``latest.parquet`` at ``target`` atomically and durably."""
    tmp = directory / f"{TMP_PREFIX}{LATEST}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    fault_point(f"{step_prefix}link_created")
    os.replace(tmp, directory / LATEST)
    fault_point(f"{step_prefix}swapped")
    fsync_dir(directory)
    fault_point(f"{step_prefix}dir_synced")
