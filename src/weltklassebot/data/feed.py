"""Feeds: where the engine's bars come from, in event order, from a cursor.

The engine takes ``BarChunk``s and knows nothing of files; a feed produces them. ``Feed`` is the
seam: ``chunks(cursor)`` yields the bars from bar ``cursor`` on (0: the start), so a resumed run
continues exactly where its saved state says (``engine.save_state()["cursor"]``). Today's feed
reads a Parquet snapshot (``ParquetFeed``, through ``data.ingest``, which converts prices to
ticks); a paced replay of a snapshot or a live feed implement the same protocol.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from weltklassebot.data.ingest import CHUNK_ROWS, iter_chunks
from weltklassebot.data.reader import SnapshotFile
from weltklassebot.model.bars import BarChunk
from weltklassebot.model.instrument import Instrument


class Feed(Protocol):
    """Bars in event order from a cursor (a count of bars)."""

    def chunks(self, cursor: int = 0) -> Iterator[BarChunk]: ...


class ParquetFeed:
    """A snapshot's bars, chunk by chunk (an instant of several symbols is never split)."""

    def __init__(self, snapshot: SnapshotFile, instruments: dict[str, Instrument],
                 symbol_of_file: str | None, *, time_ordered: bool = False,
                 chunk_rows: int = CHUNK_ROWS) -> None:
        self.snapshot = snapshot
        self.instruments = instruments
        self.symbol_of_file = symbol_of_file
        self.time_ordered = time_ordered
        self.chunk_rows = chunk_rows

    def chunks(self, cursor: int = 0) -> Iterator[BarChunk]:
        """Yield the bars from bar ``cursor`` on; the chunk holding it is cut there."""
        if cursor < 0:
            raise ValueError(f"cursor must be >= 0, not {cursor}")
        done = 0
        for chunk in iter_chunks(self.snapshot, self.instruments, self.symbol_of_file,
                                 self.chunk_rows, time_ordered=self.time_ordered):
            size = len(chunk)
            if done + size <= cursor:
                done += size
                continue
            yield chunk if done >= cursor else chunk.slice(cursor - done, size)
            done += size
        if done < cursor:
            raise ValueError(f"the feed holds {done} bars, fewer than the cursor {cursor}")
