"""Snapshots as a sweep's workers hold them: validated once by the driver, read once per worker.

``SnapshotArrays`` is a snapshot's bars in memory, in the engine's event order, prices already
in integer ticks: the engine path steps through it without touching the file again, the fast
path (``weltklassebot.fastpath``) reads the same arrays, and a Ray cluster ships it once through
its object store (NumPy arrays are read there without a copy, and are read-only).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from weltklassebot.data.feed import ParquetFeed
from weltklassebot.data.reader import open_snapshot
from weltklassebot.errors import UnusableInput
from weltklassebot.fsutil import sha256_file
from weltklassebot.model.bars import BarChunk
from weltklassebot.model.instrument import Instrument
from weltklassebot.runs.backtest import PreparedData


@dataclass(frozen=True)
class SnapshotRef:
    """A snapshot the driver validated: its file, SHA-256 and what the config makes of it."""

    path: str
    sha256: str
    instruments: dict[str, Instrument]
    intervals: dict[str, int]
    rows: int
    time_ordered: bool

    @classmethod
    def of(cls, data: PreparedData) -> SnapshotRef:
        return cls(str(data.path.resolve()), data.sha256, data.instruments, data.intervals,
                   data.report.rows, bool(data.report.facts.get("time_ordered")))


@dataclass(frozen=True)
class SnapshotArrays:
    """Every bar of a snapshot in event order: start times (int64 ns), symbol codes (int32,
    indexes into ``sorted(instruments)``; None for one symbol), open, high, low and close in
    price ticks (int64) and volume (float64)."""

    ref: SnapshotRef
    ts: np.ndarray
    codes: np.ndarray | None
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    @property
    def sha256(self) -> str:
        return self.ref.sha256

    @property
    def instruments(self) -> dict[str, Instrument]:
        return self.ref.instruments

    @property
    def intervals(self) -> dict[str, int]:
        return self.ref.intervals

    def __len__(self) -> int:
        return int(self.ts.size)

    def chunk(self) -> BarChunk:
        """All bars as one chunk (views, no copy); the engine steps through it in parts."""
        return BarChunk(self.ts, self.codes, self.open, self.high, self.low, self.close,
                        self.volume)

    @classmethod
    def load(cls, ref: SnapshotRef) -> SnapshotArrays:
        """Read the file through the backtest's own feed (the same tick conversion), after
        checking it is still the file the driver validated."""
        path = Path(ref.path)
        actual = sha256_file(path) if path.is_file() else None
        if actual != ref.sha256:
            what = "is gone" if actual is None else f"now has SHA-256 {actual}"
            raise UnusableInput(
                f"snapshot {path} {what}, but the sweep validated it with SHA-256 "
                f"{ref.sha256}: it changed while the sweep ran. Restore it and resume the sweep "
                "with --resume.")
        snapshot = open_snapshot(path)
        symbol_of_file = None if snapshot.has_symbol else next(iter(ref.instruments))
        feed = ParquetFeed(snapshot, ref.instruments, symbol_of_file,
                           time_ordered=ref.time_ordered)
        parts = list(feed.chunks())
        if not parts:
            empty = np.zeros(0, np.int64)
            return cls(ref, empty, None, empty, empty, empty, empty, np.zeros(0, np.float64))

        def join(name: str) -> np.ndarray:
            return np.ascontiguousarray(np.concatenate([getattr(p, name) for p in parts]))

        codes = None if parts[0].codes is None else join("codes")
        return cls(ref, join("ts"), codes, join("open"), join("high"), join("low"),
                   join("close"), join("volume"))
