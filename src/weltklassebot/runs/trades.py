"""Round trips from the fills: ``trades.parquet`` and the statistics computed from it.

A round trip runs flat to flat per symbol: it opens with the fill that leaves a flat position
and closes with the fill that makes it flat again. A fill that goes through zero (a reversal)
is split: the part that closes ends this trip, the rest opens the next one; its notional and
fee are shared out in proportion to quantity, half-even to the cash unit, the remainder to the
part that opens, so every trip's money is exact and the trips add up to the fills.

A trip's PnL is the cash it moved (sales minus purchases) less its fees, in the quote currency:
exactly what it added to equity. A trip still open at the end of the run is marked at its
symbol's last close as the ledger marks it (``exit_ts`` is then empty and ``open`` true), so
the PnL of all rows adds up to final equity minus initial equity; the trade statistics count
closed trips only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from weltklassebot.core.decimal import div_round_half_even, format_scaled
from weltklassebot.engine.equity_hash import decimal_column
from weltklassebot.model.instrument import Instrument, MoneySpec
from weltklassebot.runs.benchmark import MarketTape
from weltklassebot.runs.outputs import RUN_SCHEMA_VERSION
from weltklassebot.runs.record import decimal_units
from weltklassebot.runs.stats import number

TRADES = "trades.parquet"
AVG_PRICE_EXTRA_DIGITS = 6  # average prices keep six more decimals than the price increment
_TS = pa.timestamp("ns", tz="UTC")
_META = {b"weltklassebot.run_schema": str(RUN_SCHEMA_VERSION).encode()}


@dataclass
class Trip:
    """One round trip; quantities in ticks, money in cash units, price sums in tick products."""

    symbol: str
    side: int  # +1 long, -1 short
    entry_ts: int
    entry_qty: int = 0
    entry_pq: int = 0  # sum of price ticks x qty ticks of the opening parts
    entry_notional: int = 0
    exit_qty: int = 0
    exit_pq: int = 0
    exit_ts: int | None = None
    cash: int = 0  # money the trip moved: sales minus purchases
    fees: int = 0
    fills: int = 0
    open: bool = True
    mark: int = 0  # the open remainder's value at the last close (signed), open trips only
    mark_price: int | None = None
    bars_held: int = 0
    pnl: int = field(default=0)


@dataclass(frozen=True)
class FillRows:
    """fills.parquet as exact integers: ticks for price and quantity, cash units for money."""

    ts: list[int]
    symbol: list[str]
    side: list[int]
    price: list[int]
    qty: list[int]
    fee: list[int]
    notional: list[int]

    def __len__(self) -> int:
        return len(self.ts)


def read_fills(path: Path, instruments: dict[str, Instrument], money: MoneySpec) -> FillRows:
    table = pq.read_table(path, columns=["ts", "symbol", "side", "price", "qty", "fee",
                                         "notional"])
    if table.num_rows == 0:
        return FillRows([], [], [], [], [], [], [])
    table = table.combine_chunks()
    ts = table.column("ts").cast(pa.int64()).to_numpy().tolist()
    symbols = table.column("symbol").to_pylist()
    side = [1 if s == "buy" else -1 for s in table.column("side").to_pylist()]
    price_units, ps = decimal_units(table.column("price").chunk(0), path.name, "price")
    qty_units, qs = decimal_units(table.column("qty").chunk(0), path.name, "qty")
    fee_units, cs = decimal_units(table.column("fee").chunk(0), path.name, "fee")
    notional_units, ns = decimal_units(table.column("notional").chunk(0), path.name, "notional")
    if cs != money.scale or ns != money.scale:
        raise ValueError(f"{path.name}: money columns at scale {cs}/{ns}, the run's cash "
                         f"increment has scale {money.scale}")
    price_factor = {s: i.price_step * 10 ** (ps - i.price_scale) for s, i in instruments.items()}
    qty_factor = {s: i.qty_step * 10 ** (qs - i.qty_scale) for s, i in instruments.items()}
    prices = [int(u) // price_factor[s] for u, s in zip(price_units.tolist(), symbols,
                                                        strict=True)]
    qtys = [int(u) // qty_factor[s] for u, s in zip(qty_units.tolist(), symbols, strict=True)]
    return FillRows(ts, symbols, side, prices, qtys, [int(v) for v in fee_units.tolist()],
                    [int(v) for v in notional_units.tolist()])


def round_trips(fills: FillRows, instruments: dict[str, Instrument],
                tape: MarketTape | None) -> list[Trip]:
    """Every round trip in the order they opened (module docstring)."""
    trips: list[Trip] = []
    current: dict[str, Trip] = {}
    position: dict[str, int] = {}
    for i in range(len(fills)):
        symbol, side, qty = fills.symbol[i], fills.side[i], fills.qty[i]
        price, fee, notional, ts = fills.price[i], fills.fee[i], fills.notional[i], fills.ts[i]
        held = position.get(symbol, 0)
        closing = min(qty, abs(held)) if held and (held > 0) != (side > 0) else 0
        if closing:
            trip = current[symbol]
            share = notional if closing == qty else div_round_half_even(notional * closing, qty)
            fee_share = fee if closing == qty else div_round_half_even(fee * closing, qty)
            trip.exit_qty += closing
            trip.exit_pq += price * closing
            trip.cash -= side * share
            trip.fees += fee_share
            trip.fills += 1
            held += side * closing
            if held == 0:
                trip.exit_ts = ts
                trip.open = False
                del current[symbol]
            notional -= share
            fee -= fee_share
            qty -= closing
        if qty:
            opened = current.get(symbol)
            if opened is None:
                opened = current[symbol] = Trip(symbol, side, ts)
                trips.append(opened)
            trip = opened
            trip.entry_qty += qty
            trip.entry_pq += price * qty
            trip.entry_notional += notional
            trip.cash -= side * notional
            trip.fees += fee
            trip.fills += 1
            held += side * qty
        position[symbol] = held
    symbols = tape.symbols if tape is not None else {}
    for trip in trips:
        bars = symbols.get(trip.symbol)
        if trip.open:
            remaining = position.get(trip.symbol, 0)
            if bars is not None and bars.ts.size:
                last = int(bars.close[-1])
                inst = instruments[trip.symbol]
                value = inst.notional(abs(remaining), last)
                trip.mark = value if remaining > 0 else -value
                trip.mark_price = last
        trip.pnl = trip.cash + trip.mark - trip.fees
        if bars is not None and bars.ts.size:
            start = int(np.searchsorted(bars.ts, trip.entry_ts, side="left"))
            end = (int(np.searchsorted(bars.ts, trip.exit_ts, side="left"))
                   if trip.exit_ts is not None else int(bars.ts.size) - 1)
            trip.bars_held = max(end - start, 0)
    return trips


def trades_schema(instruments: dict[str, Instrument], money: MoneySpec) -> pa.Schema:
    ps = max((i.price_scale for i in instruments.values()), default=0)
    qs = max((i.qty_scale for i in instruments.values()), default=0)
    cs = money.scale
    avg = pa.decimal128(38, ps + AVG_PRICE_EXTRA_DIGITS)
    return pa.schema(
        [("trade", pa.int64()), ("symbol", pa.string()), ("side", pa.string()),
         ("entry_ts", _TS), ("exit_ts", _TS), ("entry_price", avg), ("exit_price", avg),
         ("qty", pa.decimal128(38, qs)), ("pnl", pa.decimal128(38, cs)),
         ("return", pa.float64()), ("fees", pa.decimal128(38, cs)), ("bars_held", pa.int64()),
         ("fills", pa.int64()), ("open", pa.bool_())],
        metadata=_META,
    )


def _avg_units(pq_sum: int, qty: int, inst: Instrument, scale: int) -> int | None:
    """The average price sum(p*q)/sum(q), in units of 10**-scale, half-even."""
    if qty == 0:
        return None
    value = Fraction(pq_sum, qty) * Fraction(inst.price_increment) * 10**scale
    return div_round_half_even(value.numerator, value.denominator)


def trades_table(trips: list[Trip], instruments: dict[str, Instrument],
                 money: MoneySpec) -> pa.Table:
    schema = trades_schema(instruments, money)
    if not trips:
        return schema.empty_table()
    avg_scale = schema.field("entry_price").type.scale
    qs = schema.field("qty").type.scale
    entry = [_avg_units(t.entry_pq, t.entry_qty, instruments[t.symbol], avg_scale) for t in trips]
    exits: list[int | None] = []
    for t in trips:
        inst = instruments[t.symbol]
        if t.open:
            exits.append(None if t.mark_price is None else _avg_units(
                t.mark_price, 1, inst, avg_scale))
        else:
            exits.append(_avg_units(t.exit_pq, t.exit_qty, inst, avg_scale))
    qty = [t.entry_qty * instruments[t.symbol].qty_step
           * 10 ** (qs - instruments[t.symbol].qty_scale) for t in trips]
    returns = [float(Fraction(t.pnl, t.entry_notional)) if t.entry_notional else None
               for t in trips]
    arrays = [
        pa.array(range(1, len(trips) + 1), type=pa.int64()),
        pa.array([t.symbol for t in trips], type=pa.string()),
        pa.array(["long" if t.side > 0 else "short" for t in trips], type=pa.string()),
        pa.array([t.entry_ts for t in trips], type=pa.int64()).cast(_TS),
        pa.array([t.exit_ts for t in trips], type=pa.int64()).cast(_TS),
        _decimals(entry, avg_scale),
        _decimals(exits, avg_scale),
        _decimals(qty, qs),
        _decimals([t.pnl for t in trips], money.scale),
        pa.array(returns, type=pa.float64()),
        _decimals([t.fees for t in trips], money.scale),
        pa.array([t.bars_held for t in trips], type=pa.int64()),
        pa.array([t.fills for t in trips], type=pa.int64()),
        pa.array([t.open for t in trips], type=pa.bool_()),
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _decimals(units: list[int | None], scale: int) -> pa.Array:
    nulls = [u is None for u in units]
    column = decimal_column(np.asarray([0 if u is None else u for u in units], dtype=object),
                            scale)
    if any(nulls):
        column = pc.if_else(pa.array(nulls), pa.scalar(None, type=column.type), column)
    return column


def write_trades(path: Path, trips: list[Trip], instruments: dict[str, Instrument],
                 money: MoneySpec) -> None:
    pq.write_table(trades_table(trips, instruments, money), path, compression="zstd",
                   compression_level=1)


def trade_stats(trips: list[Trip], money: MoneySpec) -> dict[str, Any]:
    """trades, win_rate, profit_factor, expectancy, avg_win and avg_loss of the closed trips."""
    return pnl_stats([t.pnl for t in trips if not t.open], money, exact=True)


def pnl_stats(pnls: list[int] | list[float], money: MoneySpec, *,
              exact: bool) -> dict[str, Any]:
    """Statistics of trade PnLs in money units (exact ints when ``exact``, else floats)."""
    count = len(pnls)
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    gross_win = sum(wins)
    gross_loss = sum(losses)

    def money_text(total: float, n: int) -> str | None:
        if n == 0:
            return None
        mean = Fraction(int(total), n) if exact else Fraction(total / n)
        return format_scaled(div_round_half_even(mean.numerator, mean.denominator), money.scale)

    return {
        "trades": count,
        "win_rate": number(len(wins) / count) if count else None,
        "profit_factor": number(float(gross_win / -gross_loss)) if gross_loss else None,
        "expectancy": money_text(sum(pnls), count),
        "avg_win": money_text(gross_win, len(wins)),
        "avg_loss": money_text(gross_loss, len(losses)),
    }
