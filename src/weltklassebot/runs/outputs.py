"""Run outputs: equity curve streamed to Parquet by chunks; fills and orders at the end.

Money and prices are stored exactly as ``decimal128`` columns (scale = the increment's decimal
places); timestamps as ``timestamp[ns, tz=UTC]``; every file carries ``weltklassebot.run_schema``
in its schema metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from weltklassebot.engine.equity_hash import decimal_column
from weltklassebot.model.enums import side_label
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


class EquityWriter:
    """Streams equity points to ``equity.parquet``, one row group per engine chunk."""

    def __init__(self, path: Path, money: MoneySpec) -> None:
        self.scale = money.scale
        self.schema = equity_schema(self.scale)
        # Every value is distinct: dictionary encoding only costs time. Timestamps step
        # regularly, so delta encoding shrinks them to almost nothing.
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd",
                                       compression_level=1, use_dictionary=False,
                                       column_encoding={"ts": "DELTA_BINARY_PACKED"})

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


def _scaled(values: list[int], steps: list[int], scale_ups: list[int], scale: int) -> pa.Array:
    """Exact decimal128 column from ticks: value = ticks * step * 10**scale_up at ``scale``."""
    units = [v * st * 10**up for v, st, up in zip(values, steps, scale_ups, strict=True)]
    if all(abs(u) < (1 << 62) for u in units):
        return decimal_column(np.asarray(units, dtype=np.int64), scale)
    return decimal_column(np.asarray(units, dtype=object), scale)


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
                schema: pa.Schema) -> pa.Table:
    ps, qs, cs = (schema.field(n).type.scale for n in ("price", "qty", "fee"))
    insts = [instruments[f.symbol] for f in fills]
    ones = [1] * len(fills)
    zeros = [0] * len(fills)
    arrays = [
        pa.array([f.ts_ns for f in fills], type=pa.int64()).cast(_TS),
        pa.array([f.symbol for f in fills], type=pa.string()),
        pa.array([side_label(f.side) for f in fills], type=pa.string()),
        _scaled([f.price for f in fills], [i.price_step for i in insts],
                [ps - i.price_scale for i in insts], ps),
        _scaled([f.qty for f in fills], [i.qty_step for i in insts],
                [qs - i.qty_scale for i in insts], qs),
        _scaled([f.fee for f in fills], ones, zeros, cs),
        _scaled([f.notional for f in fills], ones, zeros, cs),
        pa.array([f.liquidity.value for f in fills], type=pa.string()),
        pa.array([f.order_id for f in fills], type=pa.int64()),
        pa.array([f.fill_id for f in fills], type=pa.int64()),
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


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
                 schema: pa.Schema) -> pa.Table:
    ps, qs = schema.field("limit_price").type.scale, schema.field("qty").type.scale
    insts = [instruments[o.symbol] for o in orders]
    price_steps = [i.price_step for i in insts]
    price_ups = [ps - i.price_scale for i in insts]
    qty_steps = [i.qty_step for i in insts]
    qty_ups = [qs - i.qty_scale for i in insts]

    def prices(values: list[int | None]) -> pa.Array:
        present = [0 if v is None else v for v in values]
        column = _scaled(present, price_steps, price_ups, ps)
        mask = pa.array([v is None for v in values], type=pa.bool_())
        return pc.if_else(mask, pa.scalar(None, type=column.type), column)

    arrays = [
        pa.array([o.order_id for o in orders], type=pa.int64()),
        pa.array([o.ts_submitted_ns for o in orders], type=pa.int64()).cast(_TS),
        pa.array([o.active_from_ns for o in orders], type=pa.int64()).cast(_TS),
        pa.array([o.symbol for o in orders], type=pa.string()),
        pa.array([side_label(o.side) for o in orders], type=pa.string()),
        pa.array([o.type.value for o in orders], type=pa.string()),
        pa.array([o.tif.value for o in orders], type=pa.string()),
        _scaled([o.qty for o in orders], qty_steps, qty_ups, qs),
        prices([o.limit for o in orders]),
        prices([o.stop for o in orders]),
        _scaled([o.filled for o in orders], qty_steps, qty_ups, qs),
        pa.array([o.status.value for o in orders], type=pa.string()),
        pa.array([o.reason for o in orders], type=pa.string()),
        pa.array([o.ts_closed_ns for o in orders], type=pa.int64()).cast(_TS),
        pa.array([o.tag for o in orders], type=pa.string()),
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


class RecordsWriter:
    """Appends batches of fills or orders to one Parquet file (a row group per batch)."""

    def __init__(self, path: Path, schema: pa.Schema,
                 build: Callable[[Any, pa.Schema], pa.Table]) -> None:
        self.schema = schema
        self.build = build
        self.writer = pq.ParquetWriter(path, schema, compression="zstd", compression_level=1)
        self.rows = 0

    def write(self, records: list[Any]) -> None:
        if records:
            self.writer.write_table(self.build(records, self.schema))
            self.rows += len(records)

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
