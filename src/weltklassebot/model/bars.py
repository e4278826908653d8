"""Bars as the engine consumes them: column chunks of integer ticks in event order.

Produced by a feed at the data edge (``data.ingest`` reads Parquet snapshots), consumed by the
engine; a plain record with no I/O, so neither side imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class BarChunk:
    """Consecutive events: bar start times, symbol codes and integer-tick prices."""

    ts: np.ndarray
    codes: np.ndarray | None
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return int(self.ts.size)

    def as_lists(self) -> tuple[list[int], list[int], list[int], list[int], list[int],
                                list[float]]:
        """ts, open, high, low, close, volume as Python lists: the per-bar loops index them
        far faster than NumPy scalars."""
        return (self.ts.tolist(), self.open.tolist(), self.high.tolist(), self.low.tolist(),
                self.close.tolist(), self.volume.tolist())

    def slice(self, start: int, stop: int) -> BarChunk:
        """Rows ``start`` to ``stop - 1`` (views, no copy): e.g. a feed split at a cursor."""
        codes = None if self.codes is None else self.codes[start:stop]
        return BarChunk(self.ts[start:stop], codes, self.open[start:stop],
                        self.high[start:stop], self.low[start:stop], self.close[start:stop],
                        self.volume[start:stop])
