"""Ingest: snapshot batches -> integer-tick column chunks (``model.bars.BarChunk``) in
(ts, symbol) event order. It reads files, so it sits at the data edge; the engine only takes
the chunks.

Reading is this module's job; converting float prices to integer ticks (``rint(price * 10**k)``,
i.e. half-even on the float's value) is ``data.ticks``', the rule validation checks and any other
feed applies too: a price that does not survive the conversion (below one increment, off the
increment's grid, too fine for its column type) stops the run naming the file row, never
becomes a silent 0 or a wrong tick.

Single-symbol files, and multi-symbol files already in time order, stream
by row group, so memory stays flat however long the file; any other multi-symbol file is read
whole and ordered by (ts, symbol name). Chunks are cut at timestamp boundaries so all bars of one
instant are in one chunk.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from weltklassebot.core.timeutil import ns_to_iso
from weltklassebot.data.reader import SnapshotFile, float_array, ts_ns_array
from weltklassebot.data.ticks import BadPrice, bars_to_chunk
from weltklassebot.errors import InvalidSnapshot
from weltklassebot.model.bars import BarChunk
from weltklassebot.model.instrument import Instrument

CHUNK_ROWS = 1 << 17
_COLUMNS = ["ts", "open", "high", "low", "close", "volume"]


def _bad_price(snapshot: SnapshotFile, error: BadPrice, file_row: int, ts: int) -> InvalidSnapshot:
    return InvalidSnapshot(
        f"snapshot {snapshot.path}: {error.field} at row {file_row} (ts {ns_to_iso(ts)}) is "
        f"{error.value!r}, {error.problem}. Nothing was written. Set the price_increment the "
        "prices are quoted in ([data] price_increment in the config, or price_increment in the "
        "snapshot metadata), or correct the price."
    )


def _price_types(snapshot: SnapshotFile) -> list[pa.DataType]:
    return [snapshot.schema.field(name).type for name in _COLUMNS[1:5]]


def iter_chunks(snapshot: SnapshotFile, instruments: dict[str, Instrument],
                symbol_of_file: str | None, chunk_rows: int = CHUNK_ROWS,
                time_ordered: bool = False) -> Iterator[BarChunk]:
    """Yield bar chunks in event order; symbol codes index ``sorted(instruments)``.

    A multi-symbol file whose rows are already in time order (``time_ordered``, a validation
    fact) streams too; otherwise it is read whole and sorted.
    """
    if not snapshot.has_symbol or len(instruments) == 1:
        # One instrument (with or without a symbol column): no ordering across symbols needed.
        symbol_of_file = symbol_of_file or next(iter(instruments))
        increments = [instruments[symbol_of_file].price_increment]
        types = _price_types(snapshot)
        offset = 0
        for batch in snapshot.iter_batches(_COLUMNS, batch_rows=chunk_rows):
            ts = ts_ns_array(batch.column(0))
            prices = [float_array(batch.column(i)) for i in range(1, 5)]
            try:
                yield bars_to_chunk(ts, prices, float_array(batch.column(5)), increments,
                                    column_types=types)
            except BadPrice as error:
                raise _bad_price(snapshot, error, offset + error.row,
                                 int(ts[error.row])) from None
            offset += batch.num_rows
        return
    if time_ordered:
        yield from _streamed_multi_symbol_chunks(snapshot, instruments, chunk_rows)
    else:
        yield from _multi_symbol_chunks(snapshot, instruments, chunk_rows)


def _streamed_multi_symbol_chunks(snapshot: SnapshotFile, instruments: dict[str, Instrument],
                                  chunk_rows: int) -> Iterator[BarChunk]:
    """Stream a time-ordered multi-symbol file; rows of the batch's last instant are held back
    and joined to the next batch, so one instant never spans two chunks."""
    pending: pa.Table | None = None
    offset = 0
    for batch in snapshot.iter_batches([*_COLUMNS, "symbol"], batch_rows=chunk_rows):
        table = pa.Table.from_batches([batch])
        if pending is not None:
            table = pa.concat_tables([pending, table])
        ts = ts_ns_array(table.column("ts"))
        if ts.size == 0:
            continue
        cut = int(np.searchsorted(ts, ts[-1], side="left"))  # start of the last instant
        if cut == 0:
            pending = table  # one long instant: keep gathering
            continue
        pending = table.slice(cut)
        ready = table.slice(0, cut)
        yield from _multi_symbol_chunks_of(ready, snapshot, instruments, cut, offset)
        offset += cut
    if pending is not None and pending.num_rows:
        yield from _multi_symbol_chunks_of(pending, snapshot, instruments, pending.num_rows,
                                           offset)


def _multi_symbol_chunks(snapshot: SnapshotFile, instruments: dict[str, Instrument],
                         chunk_rows: int) -> Iterator[BarChunk]:
    table = snapshot.parquet.read(columns=[*_COLUMNS, "symbol"])
    yield from _multi_symbol_chunks_of(table, snapshot, instruments, chunk_rows, 0)


def _multi_symbol_chunks_of(table: pa.Table, snapshot: SnapshotFile,
                            instruments: dict[str, Instrument], chunk_rows: int,
                            row_offset: int) -> Iterator[BarChunk]:
    """Order ``table``'s rows by (ts, symbol name), convert to ticks, cut into chunks at
    timestamp boundaries. ``row_offset`` is the table's first row in the file (for errors)."""
    names = sorted(instruments)
    symbol_col = table.column("symbol")
    if pa.types.is_dictionary(symbol_col.type):
        symbol_col = symbol_col.cast(pa.string())
    codes = np.asarray(
        pc.index_in(symbol_col, value_set=pa.array(names)).to_numpy(zero_copy_only=False),
        dtype=np.int32,
    )
    ts = ts_ns_array(table.column("ts"))
    order = np.lexsort((codes, ts))
    ts = ts[order]
    codes = codes[order]
    increments = [instruments[n].price_increment for n in names]
    prices = [float_array(table.column(name))[order] for name in _COLUMNS[1:5]]
    volume = float_array(table.column("volume"))[order]
    types = _price_types(snapshot)
    del table
    try:
        whole = bars_to_chunk(ts, prices, volume, increments, codes, types)
    except BadPrice as error:
        raise _bad_price(snapshot, error, int(order[error.row]) + row_offset,
                         int(ts[error.row])) from None
    del prices
    start = 0
    n = ts.size
    while start < n:
        end = min(start + chunk_rows, n)
        # Never split one instant across chunks: one equity point per distinct timestamp.
        while end < n and ts[end] == ts[end - 1]:
            end += 1
        yield whole.slice(start, end)
        start = end
