"""The prune policy: which old snapshots ``snapshot prune --keep N`` removes.

Only snapshots older than the one ``latest.parquet`` points to are candidates, the newest ``keep``
of them stay for rollback, and ``keep`` is at least ``MIN_KEEP`` (runbook, Data Snapshots).
Snapshots newer than the current one (left by a rollback) are never removed.
"""

from __future__ import annotations

from weltklassebot.data.catalog.naming import Entry
from weltklassebot.errors import UsageError

MIN_KEEP = 3


def check_keep(keep: int) -> None:
    """Refuse a ``--keep`` below ``MIN_KEEP``."""
    if keep < MIN_KEEP:
        raise UsageError(
            f"--keep {keep} refused: at least {MIN_KEEP} previous snapshots are kept for "
            "rollback (runbook, Data Snapshots). Use --keep 3 or more."
        )


def to_remove(entries: list[Entry], current: Entry, keep: int) -> list[Entry]:
    """The snapshots to delete: all older than ``current`` but the newest ``keep``."""
    older = [e for e in entries if e.file < current.file]
    return older[: max(len(older) - keep, 0)]
