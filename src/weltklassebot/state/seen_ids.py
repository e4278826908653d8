"""A bounded window of processed ids (fill ids), carried in checkpoints for idempotency.

The checkpoint holds the window (``to_json``); the ``fill`` records after the checkpoint add the
rest on replay. The window keeps the ``capacity`` most recently added ids, in insertion order
(never set or hash order), so memory and checkpoint size stay bounded and identical across
processes. Size it above the number of fills a venue may resend or a restart may replay; an id
older than the window is no longer recognised.
"""

from __future__ import annotations

from collections.abc import Iterable


class SeenIdWindow:
    """The last ``capacity`` ids added, oldest evicted first."""

    __slots__ = ("_capacity", "_ids")

    def __init__(self, capacity: int, ids: Iterable[str] = ()) -> None:
        if type(capacity) is not int or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, not {capacity!r}")
        self._capacity = capacity
        self._ids: dict[str, None] = {}
        for fill_id in ids:
            self.add(fill_id)

    @property
    def capacity(self) -> int:
        """How many ids the window keeps."""
        return self._capacity

    def __contains__(self, fill_id: object) -> bool:
        return fill_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, fill_id: str) -> bool:
        """Add ``fill_id``; return False if it was already in the window (a duplicate).

        Mark an id only after the fill it names has been applied.
        """
        if not isinstance(fill_id, str):
            raise TypeError(f"ids are strings, not {fill_id!r}")
        if fill_id in self._ids:
            return False
        self._ids[fill_id] = None
        if len(self._ids) > self._capacity:
            del self._ids[next(iter(self._ids))]
        return True

    def to_json(self) -> list[str]:
        """Return the ids oldest first, for a checkpoint."""
        return list(self._ids)

    @classmethod
    def from_json(cls, ids: object, capacity: int) -> SeenIdWindow:
        """Rebuild a window from ``to_json`` output (keeping the newest ``capacity`` ids)."""
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError("a seen-id window is a JSON list of strings")
        return cls(capacity, ids)
