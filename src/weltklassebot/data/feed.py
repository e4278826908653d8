"""Feeds: where the engine's bars come from, in event order, from a cursor.

The engine takes ``BarChunk``s and knows nothing of files; a feed produces them. ``Feed`` is the
seam: ``chunks(cursor)`` yields the bars from bar ``cursor`` on (0: the start), so a resumed run
continues exactly where its saved state says (``engine.save_state()["cursor"]``). Today's feed
reads a Parquet snapshot (``ParquetFeed``, through ``data.ingest``, which converts prices to
ticks); a paced replay of a snapshot or a live feed implement the same protocol.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Generator, Iterator
from typing import Any, Protocol

from weltklassebot.data.ingest import CHUNK_ROWS, iter_chunks
from weltklassebot.data.reader import SnapshotFile
from weltklassebot.model.bars import BarChunk
from weltklassebot.model.instrument import Instrument


class Feed(Protocol):
    """Bars in event order from a cursor (a count of bars)."""

    def chunks(self, cursor: int = 0) -> Iterator[BarChunk]: ...


class ParquetFeed:
    """A snapshot's bars, chunk by chunk (an instant of several symbols is never split).

    With ``read_ahead`` (the default) the next chunk is read and converted to ticks in a
    worker thread while the caller works on the current one: Parquet decoding and the NumPy
    conversion release the GIL, so that work runs beside the engine. The chunks, their order
    and where an error is raised are the same either way."""

    def __init__(self, snapshot: SnapshotFile, instruments: dict[str, Instrument],
                 symbol_of_file: str | None, *, time_ordered: bool = False,
                 chunk_rows: int = CHUNK_ROWS, read_ahead: bool = True) -> None:
        self.snapshot = snapshot
        self.instruments = instruments
        self.symbol_of_file = symbol_of_file
        self.time_ordered = time_ordered
        self.chunk_rows = chunk_rows
        self.read_ahead = read_ahead

    def chunks(self, cursor: int = 0) -> Iterator[BarChunk]:
        """Yield the bars from bar ``cursor`` on; the chunk holding it is cut there."""
        if cursor < 0:
            raise ValueError(f"cursor must be >= 0, not {cursor}")
        bars = self._chunks(cursor)
        return read_ahead(bars) if self.read_ahead else bars

    def _chunks(self, cursor: int) -> Iterator[BarChunk]:
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


def read_ahead(items: Iterator[Any]) -> Generator[Any, None, None]:
    """Yield ``items``' values in order while a worker thread makes the next one.

    At most one made value waits besides the one being made. An exception raised by
    ``items`` is raised here at its place in the sequence. When the caller stops early (or
    fails), the worker is stopped and joined before this generator closes."""
    slot: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def make() -> None:
        try:
            for item in items:
                slot.put((_ITEM, item))
                if stop.is_set():
                    return
            slot.put((_END, None))
        except BaseException as exc:  # handed to the consumer at its place
            slot.put((_ERROR, exc))

    worker = threading.Thread(target=make, name="weltklassebot-feed", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = slot.get()
            if kind == _ITEM:
                yield value
            elif kind == _END:
                return
            else:
                raise value
    finally:
        stop.set()
        while worker.is_alive():  # free a worker blocked on a full slot, then let it end
            with contextlib.suppress(queue.Empty):
                slot.get(timeout=0.01)
        worker.join()


_ITEM, _END, _ERROR = range(3)
