"""Bars for tests: rows of human numbers -> engine ``BarChunk`` or a Parquet snapshot file.

A row is ``(ts_ns, open, high, low, close, volume)``; prices may be ``str``, ``int``, ``Decimal``
or ``float`` and are converted to integer ticks exactly (half-even), the way the engine's ingest
does for floats that are already on the tick grid.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from weltklassebot.core.timeutil import NS_PER_HOUR
from weltklassebot.model.bars import BarChunk
from weltklassebot.model.instrument import Instrument

Number = str | int | float | Decimal
Row = tuple[int, Number, Number, Number, Number, Number]
OHLCV = tuple[Number, Number, Number, Number, Number]

T0 = 1_704_067_200 * 10**9  # 2024-01-01T00:00:00Z
HOUR = NS_PER_HOUR
DATA_DIR = Path(__file__).resolve().parent.parent / "data"


def timed(bars: Sequence[OHLCV], start: int = T0, interval: int = HOUR) -> list[Row]:
    """Give ``(o, h, l, c, v)`` bars consecutive start times ``start + i * interval``."""
    return [(start + i * interval, *bar) for i, bar in enumerate(bars)]


def make_chunk(rows: Sequence[Row], instrument: Instrument) -> BarChunk:
    """One single-symbol chunk (no symbol codes) with prices in ticks of ``instrument``."""
    ts = np.array([r[0] for r in rows], dtype=np.int64)
    cols = [
        np.array([instrument.price_ticks(_text(r[k])) for r in rows], dtype=np.int64)
        for k in (1, 2, 3, 4)
    ]
    volume = np.array([float(r[5]) for r in rows], dtype=np.float64)
    return BarChunk(ts, None, cols[0], cols[1], cols[2], cols[3], volume)


def make_chunks(rows: Sequence[Row], instrument: Instrument,
                chunk_rows: int | None = None) -> list[BarChunk]:
    """Split ``rows`` into chunks of at most ``chunk_rows`` bars (one chunk when ``None``)."""
    if not rows:
        return []
    size = chunk_rows or len(rows)
    return [make_chunk(rows[i:i + size], instrument) for i in range(0, len(rows), size)]


def make_multi_chunks(rows: Sequence[tuple[str, Row]], instruments: dict[str, Instrument],
                      chunk_rows: int | None = None) -> list[BarChunk]:
    """Multi-symbol chunks from ``(symbol, row)`` pairs, ordered by (ts, symbol name).

    An instant is never split across chunks (the engine's contract for ingest).
    """
    names = sorted(instruments)
    ordered = sorted(rows, key=lambda sr: (sr[1][0], sr[0]))
    chunks: list[BarChunk] = []
    size = chunk_rows or max(len(ordered), 1)
    start = 0
    while start < len(ordered):
        end = min(start + size, len(ordered))
        while end < len(ordered) and ordered[end][1][0] == ordered[end - 1][1][0]:
            end += 1
        part = ordered[start:end]
        ts = np.array([r[0] for _, r in part], dtype=np.int64)
        codes = np.array([names.index(s) for s, _ in part], dtype=np.int32)
        cols = [
            np.array([instruments[s].price_ticks(_text(r[k])) for s, r in part], dtype=np.int64)
            for k in (1, 2, 3, 4)
        ]
        volume = np.array([float(r[5]) for _, r in part], dtype=np.float64)
        chunks.append(BarChunk(ts, codes, cols[0], cols[1], cols[2], cols[3], volume))
        start = end
    return chunks


def _text(value: Number) -> str | int | Decimal:
    return repr(value) if isinstance(value, float) else value


def bars_table(rows: Sequence[Row], *, symbols: Sequence[str] | str | None = None,
               metadata: dict[str, Any] | None = None, ts_type: pa.DataType | None = None,
               prices_as: pa.DataType | None = None) -> pa.Table:
    """An Arrow table in the snapshot layout of DESIGN section 5 (floats, ts in UTC)."""
    base = pa.array([r[0] for r in rows], type=pa.int64()).cast(pa.timestamp("ns", tz="UTC"))
    price_type = prices_as or pa.float64()
    columns: dict[str, pa.Array] = {"ts": base if ts_type is None else base.cast(ts_type)}
    if symbols is not None:
        names = [symbols] * len(rows) if isinstance(symbols, str) else list(symbols)
        columns["symbol"] = pa.array(names, type=pa.string())
    for name, k in (("open", 1), ("high", 2), ("low", 3), ("close", 4), ("volume", 5)):
        values = [_float(r[k]) for r in rows]
        array = pa.array(values, type=pa.float64())
        columns[name] = array if name == "volume" else array.cast(price_type)
    table = pa.table(columns)
    if metadata is not None:
        table = table.replace_schema_metadata({"weltklassebot": json.dumps(metadata)})
    return table


def _float(value: Number | None) -> float | None:
    return None if value is None else float(value)


def write_snapshot(path: Path, rows: Sequence[Row], **kwargs: Any) -> Path:
    """Write ``rows`` as a bars snapshot at ``path`` (see ``bars_table`` for options)."""
    pq.write_table(bars_table(rows, **kwargs), path)
    return path


def write_table(path: Path, table: pa.Table, row_group_size: int | None = None) -> Path:
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def read_rows(path: Path, limit: int | None = None) -> list[Row]:
    """Rows of a real bars snapshot as ``(ts_ns, o, h, l, c, v)`` with float prices."""
    table = pq.read_table(path, columns=["ts", "open", "high", "low", "close", "volume"])
    if limit is not None:
        table = table.slice(0, limit)
    ts = table.column("ts").cast(pa.int64()).to_pylist()
    cols = [table.column(n).to_pylist() for n in ("open", "high", "low", "close", "volume")]
    return [(t, *vals) for t, *vals in zip(ts, *cols, strict=True)]


def flat_bars(prices: Iterable[Number], volume: Number = 1000) -> list[OHLCV]:
    """Bars whose open, high, low and close are all ``price``."""
    return [(p, p, p, p, volume) for p in prices]


TickRow = tuple[str, int, int, int, int, int, float]  # symbol, ts, o, h, l, c (ticks), volume


def tick_chunks(rows: Sequence[TickRow], symbols: Sequence[str],
                chunk_rows: int | None = None) -> list[BarChunk]:
    """Chunks from rows already in ticks; symbol codes only when there are several symbols.

    Rows are put in (ts, symbol) order and an instant is never split across chunks.
    """
    names = sorted(symbols)
    ordered = sorted(rows, key=lambda r: (r[1], r[0]))
    size = chunk_rows or max(len(ordered), 1)
    chunks: list[BarChunk] = []
    start = 0
    while start < len(ordered):
        end = min(start + size, len(ordered))
        while end < len(ordered) and ordered[end][1] == ordered[end - 1][1]:
            end += 1
        part = ordered[start:end]
        cols = [np.array([r[k] for r in part], dtype=np.int64) for k in (1, 2, 3, 4, 5)]
        codes = (np.array([names.index(r[0]) for r in part], dtype=np.int32)
                 if len(names) > 1 else None)
        volume = np.array([float(r[6]) for r in part], dtype=np.float64)
        chunks.append(BarChunk(cols[0], codes, cols[1], cols[2], cols[3], cols[4], volume))
        start = end
    return chunks
