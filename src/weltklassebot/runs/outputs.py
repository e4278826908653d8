"""Run outputs: equity curve streamed to Parquet by chunks; fills and orders at the end.

Money and prices are stored exactly as ``decimal128`` columns (scale = the increment's decimal
places); timestamps as ``timestamp[ns, tz=UTC]``; every file carries ``weltklassebot.run_schema``
in its schema metadata.

Encodings are chosen per column (``parquet_options``): integer and time columns are delta
encoded (ids ascend, times step), text and quantity columns dictionary encoded (few distinct
values), prices and money plain. Statistics are written for the integer and time columns only:
they are what a reader filters on, and min/max of text and decimal columns cost more to write
than anything else in the file. The values read back are the same whatever the encoding.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from weltklassebot.engine.equity_hash import (
    FILL_STRUCT,
    decimal_column,
    peak_magnitude,
    record_structs,
)
from weltklassebot.model.instrument import Instrument, MoneySpec
from weltklassebot.model.records import Fill, Order

RUN_SCHEMA_VERSION = 1
_META = {b"weltklassebot.run_schema": str(RUN_SCHEMA_VERSION).encode()}
_TS = pa.timestamp("ns", tz="UTC")


def equity_schema(scale: int) -> pa.Schema:
    return pa.schema(
        [("ts", _TS), ("equity", pa.decimal128(38, scale)), ("cash", pa.decimal128(38, scale)),
         ("drawdown", pa.float64())],
        metadata=_META,
    )


def parquet_options(schema: pa.Schema, dictionary: Iterable[str] = ()) -> dict[str, Any]:
    """Writer options for a run file: zstd level 1; delta encoding and statistics for the
    integer and time columns; dictionary encoding for text columns and those named in
    ``dictionary``; every other column plain."""
    delta = [f.name for f in schema
             if pa.types.is_integer(f.type) or pa.types.is_timestamp(f.type)]
    wanted = set(dictionary)
    keyed = [f.name for f in schema if pa.types.is_string(f.type) or f.name in wanted]
    return {"compression": "zstd", "compression_level": 1,
            "use_dictionary": keyed if keyed else False,
            "column_encoding": dict.fromkeys(delta, "DELTA_BINARY_PACKED"),
            "write_statistics": delta if delta else False}


class EquityWriter:
    """Streams equity points to ``equity.parquet``, one row group per engine chunk."""

    def __init__(self, path: Path, money: MoneySpec) -> None:
        self.scale = money.scale
        self.schema = equity_schema(self.scale)
        # Every value is distinct: dictionary encoding only costs time. Timestamps step
        # regularly, so delta encoding shrinks them to almost nothing.
        self.writer = pq.ParquetWriter(path, self.schema, **parquet_options(self.schema))

    def write(self, ts: np.ndarray, equity: np.ndarray, cash: np.ndarray,
              drawdown: np.ndarray) -> None:
        table = pa.Table.from_arrays(
            [pa.array(ts, type=pa.int64()).cast(_TS), decimal_column(equity, self.scale),
             decimal_column(cash, self.scale), pa.array(drawdown, type=pa.float64())],
            schema=self.schema,
        )
        self.writer.write_table(table)

    def close(self) -> None:
        self.writer.close()


def _max_scale(instruments: Iterable[Instrument], attr: str) -> int:
    return max((getattr(i, attr) for i in instruments), default=0)


_INT64_SAFE = 1 << 62
_FILL = {name: i for i, name in enumerate(Fill._fields)}
_ORDER = {name: i for i, name in enumerate(Order._fields)}
_I, _S, _B = pa.int64(), pa.string(), pa.bool_()
# An order record as an Arrow struct, field for field (the enums as their text); fills:
# FILL_STRUCT, which the equity hash's fill lines share.
ORDER_STRUCT = pa.struct(list(zip(Order._fields, (_I, _S, _I, _S, _I, _I, _I, _S, _I, _I, _I,
                                                  _S, _B, _S, _I, _S, _B), strict=True)))
# Columns with few distinct values besides the text ones (quantities repeat).
_QUANTITIES = ("qty", "filled_qty")


def _factors(symbols: pa.Array, by_symbol: dict[str, int]) -> int | np.ndarray:
    """Each row's factor from its symbol: one int when every symbol has the same."""
    distinct = set(by_symbol.values())
    if len(distinct) == 1:
        return distinct.pop()
    names = pa.array(list(by_symbol), type=pa.string())
    index = pc.index_in(symbols, value_set=names).to_numpy(zero_copy_only=False)
    factors: np.ndarray = np.asarray(list(by_symbol.values()), dtype=object)[index]
    return factors


def _scaled_ticks(ticks: pa.Array, factor: int | np.ndarray, scale: int) -> pa.Array | None:
    """``_scaled`` of an int64 column in one vectorised pass; None when a product could
    leave int64."""
    present = (ticks.fill_null(0) if ticks.null_count else ticks).to_numpy(zero_copy_only=False)
    top = peak_magnitude(present)
    biggest = factor if isinstance(factor, int) else int(np.abs(factor).max())
    if biggest >= _INT64_SAFE or top * biggest >= _INT64_SAFE:
        return None
    column = decimal_column(present * np.asarray(factor, dtype=np.int64), scale)
    if ticks.null_count:
        column = pc.if_else(ticks.is_null(), pa.scalar(None, type=column.type), column)
    return column


def _scaled(values: Sequence[int | None], factor: int | np.ndarray, scale: int) -> pa.Array:
    """Exact decimal128 column from ticks: value = ticks * factor at ``scale`` (None -> null).

    One vectorised int64 pass when every product fits, else exact Python ints."""
    ticks = None
    with contextlib.suppress(OverflowError, pa.ArrowInvalid):  # beyond int64: exact route
        ticks = pa.array(values, type=pa.int64())
    if ticks is not None:
        column = _scaled_ticks(ticks, factor, scale)
        if column is not None:
            return column
    factors = [factor] * len(values) if isinstance(factor, int) else factor.tolist()
    units = [None if v is None else v * f for v, f in zip(values, factors, strict=True)]
    nulls = [u is None for u in units]
    column = decimal_column(np.asarray([0 if u is None else u for u in units], dtype=object),
                            scale)
    if any(nulls):
        column = pc.if_else(pa.array(nulls), pa.scalar(None, type=column.type), column)
    return column


class _Columns:
    """Columns of a list of records (named tuples), each read on demand by a C-level getter."""

    def __init__(self, records: Sequence[tuple[Any, ...]], index: dict[str, int]) -> None:
        self.records = records
        self.index = index

    def __getitem__(self, name: str) -> list[Any]:
        return list(map(itemgetter(self.index[name]), self.records))


def _sides(sides: Sequence[int] | pa.Array) -> pa.Array:
    ints = sides if isinstance(sides, pa.Array) else pa.array(sides, type=pa.int64())
    return pc.if_else(pc.greater(ints, 0), "buy", "sell")


def _timestamps(values: Sequence[int | None]) -> pa.Array:
    return pa.array(values, type=pa.int64()).cast(_TS)


def fills_schema(instruments: dict[str, Instrument], money: MoneySpec) -> pa.Schema:
    ps = _max_scale(instruments.values(), "price_scale")
    qs = _max_scale(instruments.values(), "qty_scale")
    cs = money.scale
    return pa.schema(
        [("ts", _TS), ("symbol", pa.string()), ("side", pa.string()),
         ("price", pa.decimal128(38, ps)), ("qty", pa.decimal128(38, qs)),
         ("fee", pa.decimal128(38, cs)), ("notional", pa.decimal128(38, cs)),
         ("liquidity", pa.string()), ("order_id", pa.int64()), ("fill_id", pa.int64())],
        metadata=_META,
    )


def fills_table(fills: list[Fill], instruments: dict[str, Instrument],
                schema: pa.Schema, structs: pa.StructArray | None = None) -> pa.Table:
    """fills.parquet's rows of ``fills`` (``structs``: ``record_structs`` of them, if at
    hand)."""
    if not fills:
        return schema.empty_table()
    ps, qs, cs = (schema.field(n).type.scale for n in ("price", "qty", "fee"))
    if structs is None:
        structs = record_structs(fills, FILL_STRUCT)
    if structs is not None:
        table = _fills_from_structs(structs, instruments, schema, (ps, qs, cs))
        if table is not None:
            return table
    cols = _Columns(fills, _FILL)
    symbols = pa.array(cols["symbol"], type=pa.string())
    price_f, qty_f = _tick_factors(symbols, instruments, ps, qs)
    arrays = [
        _timestamps(cols["ts_ns"]),
        symbols,
        _sides(cols["side"]),
        _scaled(cols["price"], price_f, ps),
        _scaled(cols["qty"], qty_f, qs),
        _scaled(cols["fee"], 1, cs),
        _scaled(cols["notional"], 1, cs),
        pa.array(cols["liquidity"], type=pa.string()),
        pa.array(cols["order_id"], type=pa.int64()),
        pa.array(cols["fill_id"], type=pa.int64()),
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _fills_from_structs(structs: pa.StructArray, instruments: dict[str, Instrument],
                        schema: pa.Schema, scales: tuple[int, int, int]) -> pa.Table | None:
    """``fills_table`` from the struct array; None when a scaled value could leave int64."""
    ps, qs, cs = scales
    field = structs.field
    symbols = field(_FILL["symbol"])
    price_f, qty_f = _tick_factors(symbols, instruments, ps, qs)
    money = [_scaled_ticks(field(_FILL[name]), factor, scale)
             for name, factor, scale in (("price", price_f, ps), ("qty", qty_f, qs),
                                         ("fee", 1, cs), ("notional", 1, cs))]
    if any(column is None for column in money):
        return None
    arrays = [field(_FILL["ts_ns"]).cast(_TS), symbols, _sides(field(_FILL["side"])), *money,
              field(_FILL["liquidity"]), field(_FILL["order_id"]), field(_FILL["fill_id"])]
    return pa.Table.from_arrays(arrays, schema=schema)


def _orders_from_structs(structs: pa.StructArray, instruments: dict[str, Instrument],
                         schema: pa.Schema, ps: int, qs: int) -> pa.Table | None:
    """``orders_table`` from the struct array; None when a scaled value could leave int64."""
    field = structs.field
    symbols = field(_ORDER["symbol"])
    price_f, qty_f = _tick_factors(symbols, instruments, ps, qs)
    qty, limit, stop, filled = (
        _scaled_ticks(field(_ORDER[name]), factor, scale)
        for name, factor, scale in (("qty", qty_f, qs), ("limit", price_f, ps),
                                    ("stop", price_f, ps), ("filled", qty_f, qs)))
    if qty is None or limit is None or stop is None or filled is None:
        return None
    arrays = [
        field(_ORDER["order_id"]),
        field(_ORDER["ts_submitted_ns"]).cast(_TS),
        field(_ORDER["active_from_ns"]).cast(_TS),
        symbols,
        _sides(field(_ORDER["side"])),
        field(_ORDER["type"]),
        field(_ORDER["tif"]),
        qty, limit, stop, filled,
        field(_ORDER["status"]),
        field(_ORDER["reason"]),
        field(_ORDER["ts_closed_ns"]).cast(_TS),
        field(_ORDER["tag"]),
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _tick_factors(symbols: pa.Array, instruments: dict[str, Instrument], price_scale: int,
                  qty_scale: int) -> tuple[int | np.ndarray, int | np.ndarray]:
    """Per row: what turns a price tick and a quantity tick into the column's decimal units."""
    price = _factors(symbols, {s: i.price_step * 10 ** (price_scale - i.price_scale)
                               for s, i in instruments.items()})
    qty = _factors(symbols, {s: i.qty_step * 10 ** (qty_scale - i.qty_scale)
                             for s, i in instruments.items()})
    return price, qty


def orders_schema(instruments: dict[str, Instrument]) -> pa.Schema:
    ps = _max_scale(instruments.values(), "price_scale")
    qs = _max_scale(instruments.values(), "qty_scale")
    return pa.schema(
        [("order_id", pa.int64()), ("ts_submitted", _TS), ("active_from", _TS),
         ("symbol", pa.string()), ("side", pa.string()), ("type", pa.string()),
         ("tif", pa.string()), ("qty", pa.decimal128(38, qs)),
         ("limit_price", pa.decimal128(38, ps)), ("stop_price", pa.decimal128(38, ps)),
         ("filled_qty", pa.decimal128(38, qs)), ("status", pa.string()),
         ("reason", pa.string()), ("ts_closed", _TS), ("tag", pa.string())],
        metadata=_META,
    )


def orders_table(orders: list[Order], instruments: dict[str, Instrument],
                 schema: pa.Schema, structs: pa.StructArray | None = None) -> pa.Table:
    """orders.parquet's rows of ``orders`` (``structs``: ``record_structs`` of them with
    ``ORDER_STRUCT``, if at hand)."""
    if not orders:
        return schema.empty_table()
    ps, qs = schema.field("limit_price").type.scale, schema.field("qty").type.scale
    if structs is None:
        structs = record_structs(orders, ORDER_STRUCT)
    if structs is not None:
        table = _orders_from_structs(structs, instruments, schema, ps, qs)
        if table is not None:
            return table
    cols = _Columns(orders, _ORDER)
    symbols = pa.array(cols["symbol"], type=pa.string())
    price_f, qty_f = _tick_factors(symbols, instruments, ps, qs)
    arrays = [
        pa.array(cols["order_id"], type=pa.int64()),
        _timestamps(cols["ts_submitted_ns"]),
        _timestamps(cols["active_from_ns"]),
        symbols,
        _sides(cols["side"]),
        pa.array(cols["type"], type=pa.string()),
        pa.array(cols["tif"], type=pa.string()),
        _scaled(cols["qty"], qty_f, qs),
        _scaled(cols["limit"], price_f, ps),
        _scaled(cols["stop"], price_f, ps),
        _scaled(cols["filled"], qty_f, qs),
        pa.array(cols["status"], type=pa.string()),
        pa.array(cols["reason"], type=pa.string()),
        _timestamps(cols["ts_closed_ns"]),
        pa.array(cols["tag"], type=pa.string()),
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


class RecordsWriter:
    """Appends batches of fills or orders to one Parquet file (a row group per batch)."""

    def __init__(self, path: Path, schema: pa.Schema,
                 build: Callable[[Any, pa.Schema], pa.Table]) -> None:
        self.schema = schema
        self.build = build
        self.writer = pq.ParquetWriter(path, schema,
                                       **parquet_options(schema, dictionary=_QUANTITIES))
        self.rows = 0

    def write(self, records: list[Any]) -> None:
        if records:
            self.write_table(self.build(records, self.schema))

    def write_table(self, table: pa.Table) -> None:
        """A table of these records already built (e.g. by ``fills_table`` from structs)."""
        if table.num_rows:
            self.writer.write_table(table)
            self.rows += table.num_rows

    def close(self) -> None:
        self.writer.close()


def fills_writer(path: Path, instruments: dict[str, Instrument],
                 money: MoneySpec) -> RecordsWriter:
    return RecordsWriter(path, fills_schema(instruments, money),
                         lambda fills, schema: fills_table(fills, instruments, schema))


def orders_writer(path: Path, instruments: dict[str, Instrument]) -> RecordsWriter:
    return RecordsWriter(path, orders_schema(instruments),
                         lambda orders, schema: orders_table(orders, instruments, schema))


def write_fills(path: Path, fills: list[Fill], instruments: dict[str, Instrument],
                money: MoneySpec) -> None:
    writer = fills_writer(path, instruments, money)
    writer.write(fills)
    writer.close()


def write_orders(path: Path, orders: list[Order], instruments: dict[str, Instrument]) -> None:
    writer = orders_writer(path, instruments)
    writer.write(orders)
    writer.close()


class OutputThread:
    """Runs a run's output work (Parquet encoding and compression, the equity hash's text) in
    one worker thread, in the order it was handed over, while the engine goes on.

    That work is Arrow's C++ code (Parquet encoding, zstd, compute kernels) and file writes,
    which release the GIL, so it runs beside the engine's Python on a second core; what needs
    the GIL (turning records into arrays) stays with the caller. The files get the same calls
    in the same order as without the thread, so the same bytes. At most ``depth`` tasks wait
    (each a row group), so memory stays bounded when the disk is slower than the engine. An
    error in a task stops the rest and is raised in the caller by the next ``submit`` or by
    ``close``.
    """

    def __init__(self, depth: int = 4) -> None:
        self._tasks: queue.Queue[tuple[Callable[..., None], tuple[Any, ...]] | None] = (
            queue.Queue(maxsize=depth))
        self._error: BaseException | None = None
        self._reported = False
        self._thread = threading.Thread(target=self._serve, name="weltklassebot-outputs",
                                        daemon=True)
        self._thread.start()

    def submit(self, task: Callable[..., None], *args: Any) -> None:
        """Queue ``task(*args)``; raise the error of an earlier task, if one failed."""
        self._raise_error()
        self._tasks.put((task, args))

    def close(self) -> None:
        """Wait until every task has run; raise the first error, unless already raised."""
        if self._thread.is_alive():
            self._tasks.put(None)
            self._thread.join()
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None and not self._reported:
            self._reported = True
            raise self._error

    def _serve(self) -> None:
        while (item := self._tasks.get()) is not None:
            if self._error is not None:
                continue  # after a failure, the rest is skipped (the run is lost anyway)
            task, args = item
            try:
                task(*args)
            except BaseException as exc:  # handed to the caller's thread
                self._error = exc


def run_now(task: Callable[..., None], *args: Any) -> None:
    """``OutputThread.submit``'s stand-in for work done in the caller's thread."""
    task(*args)
