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

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from weltklassebot.core.decimal import div_round_half_even, format_scaled
from weltklassebot.engine.equity_hash import decimal_column
from weltklassebot.engine.equity_hash import peak_magnitude as _peak
from weltklassebot.model.instrument import Instrument, MoneySpec
from weltklassebot.runs.benchmark import MarketTape
from weltklassebot.runs.outputs import RUN_SCHEMA_VERSION, parquet_options
from weltklassebot.runs.record import decimal_units
from weltklassebot.runs.stats import number

TRADES = "trades.parquet"
AVG_PRICE_EXTRA_DIGITS = 6  # average prices keep six more decimals than the price increment
_TS = pa.timestamp("ns", tz="UTC")
_META = {b"weltklassebot.run_schema": str(RUN_SCHEMA_VERSION).encode()}
# Sums and products of int64 columns stay below this bound, or the column is widened to Python
# ints first: int64 arithmetic wraps silently, and every figure here must be exact.
_SAFE = 1 << 62
_EXACT_FLOAT = 1 << 53  # integers up to this are exact doubles: one division, correctly rounded


def exact_ints(values: Any) -> np.ndarray:
    """Integers as int64 when every value fits, else as an object array of Python ints."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        return values.astype(np.int64, copy=False)
    try:
        return np.asarray(values, dtype=np.int64)
    except OverflowError:
        return np.asarray([int(v) for v in values], dtype=object)


def _wide(values: np.ndarray) -> np.ndarray:
    return values if values.dtype == object else values.astype(object)


def _mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact elementwise product: int64 when it cannot wrap, else Python ints."""
    if a.dtype != object and b.dtype != object and _peak(a) * _peak(b) < _SAFE:
        product: np.ndarray = a * b
        return product
    wide: np.ndarray = _wide(a) * _wide(b)
    return wide


def _half_even(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Elementwise ``div_round_half_even`` for positive denominators, exact."""
    if num.dtype != object and den.dtype != object and _peak(num) < _SAFE \
            and 2 * _peak(den) < _SAFE:
        quotient = num // den
        twice = 2 * (num - quotient * den)  # the remainder, in [0, den), doubled
    else:
        num, den = _wide(num), _wide(den)
        quotient = num // den
        twice = 2 * (num - quotient * den)
    up = (twice > den) | ((twice == den) & (quotient % 2 == 1))
    rounded: np.ndarray = np.where(up, quotient + 1, quotient)
    return rounded


def exact_sum(values: Any) -> int:
    """The exact sum of integers (a list or an int64/object array)."""
    ints = exact_ints(values)
    if ints.dtype != object and _peak(ints) * ints.size < _SAFE:
        return int(ints.sum())
    return sum(int(v) for v in ints.tolist())


def _codes(symbols: Any) -> tuple[list[str], np.ndarray]:
    """The distinct symbols (in order of appearance) and each row's index into them."""
    encoded = pa.array(symbols, type=pa.string()).dictionary_encode()
    names: list[str] = encoded.dictionary.to_pylist()
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return names, codes


@dataclass(frozen=True)
class Trip:
    """One round trip (a row of ``Trips``); quantities in ticks, money in cash units, price
    sums in tick products."""

    symbol: str
    side: int  # +1 long, -1 short
    entry_ts: int
    entry_qty: int
    entry_pq: int  # sum of price ticks x qty ticks of the opening parts
    entry_notional: int
    exit_qty: int
    exit_pq: int
    exit_ts: int | None
    cash: int  # money the trip moved: sales minus purchases
    fees: int
    fills: int
    open: bool
    mark: int  # the open remainder's value at the last close (signed), open trips only
    mark_price: int | None
    bars_held: int
    pnl: int


@dataclass(frozen=True)
class Trips:
    """Every round trip in the order they opened, one array per field of ``Trip``.

    Integer columns are int64, or object arrays of Python ints where a value (or a sum on the
    way to it) does not fit. ``exit_ts`` counts where ``open`` is false, ``mark_price`` where
    ``marked`` is true (an open trip whose symbol has bars).
    """

    names: list[str]  # the symbols ``code`` indexes
    code: np.ndarray
    side: np.ndarray
    entry_ts: np.ndarray
    entry_qty: np.ndarray
    entry_pq: np.ndarray
    entry_notional: np.ndarray
    exit_qty: np.ndarray
    exit_pq: np.ndarray
    exit_ts: np.ndarray
    cash: np.ndarray
    fees: np.ndarray
    fills: np.ndarray
    open: np.ndarray
    mark: np.ndarray
    mark_price: np.ndarray
    marked: np.ndarray
    bars_held: np.ndarray
    pnl: np.ndarray

    def __len__(self) -> int:
        return int(self.side.size)

    def __iter__(self) -> Iterator[Trip]:
        return (self[i] for i in range(len(self)))

    def __getitem__(self, i: int) -> Trip:
        is_open = bool(self.open[i])
        return Trip(
            self.names[int(self.code[i])], int(self.side[i]), int(self.entry_ts[i]),
            int(self.entry_qty[i]), int(self.entry_pq[i]), int(self.entry_notional[i]),
            int(self.exit_qty[i]), int(self.exit_pq[i]),
            None if is_open else int(self.exit_ts[i]), int(self.cash[i]), int(self.fees[i]),
            int(self.fills[i]), is_open, int(self.mark[i]),
            int(self.mark_price[i]) if self.marked[i] else None, int(self.bars_held[i]),
            int(self.pnl[i]))


@dataclass(frozen=True)
class FillRows:
    """fills.parquet as exact integers: ticks for price and quantity, cash units for money
    (lists, or int64/object arrays as ``read_fills`` gives them)."""

    ts: Sequence[int] | np.ndarray
    symbol: Sequence[str] | np.ndarray
    side: Sequence[int] | np.ndarray
    price: Sequence[int] | np.ndarray
    qty: Sequence[int] | np.ndarray
    fee: Sequence[int] | np.ndarray
    notional: Sequence[int] | np.ndarray

    def __len__(self) -> int:
        return len(self.ts)


def read_fills(path: Path, instruments: dict[str, Instrument], money: MoneySpec) -> FillRows:
    table = pq.read_table(path, columns=["ts", "symbol", "side", "price", "qty", "fee",
                                         "notional"])
    if table.num_rows == 0:
        empty = np.zeros(0, np.int64)
        return FillRows(empty, np.zeros(0, object), empty, empty, empty, empty, empty)
    table = table.combine_chunks()
    ts = np.asarray(table.column("ts").cast(pa.int64()).to_numpy(), dtype=np.int64)
    symbol = table.column("symbol").chunk(0)
    buys = pc.equal(table.column("side").chunk(0), "buy").fill_null(False)
    side = np.where(buys.to_numpy(zero_copy_only=False), 1, -1).astype(np.int64)
    price_units, ps = decimal_units(table.column("price").chunk(0), path.name, "price")
    qty_units, qs = decimal_units(table.column("qty").chunk(0), path.name, "qty")
    fee_units, cs = decimal_units(table.column("fee").chunk(0), path.name, "fee")
    notional_units, ns = decimal_units(table.column("notional").chunk(0), path.name, "notional")
    if cs != money.scale or ns != money.scale:
        raise ValueError(f"{path.name}: money columns at scale {cs}/{ns}, the run's cash "
                         f"increment has scale {money.scale}")
    names, codes = _codes(symbol)
    price_factor = exact_ints([instruments[s].price_step * 10 ** (ps - instruments[s].price_scale)
                               for s in names])[codes]
    qty_factor = exact_ints([instruments[s].qty_step * 10 ** (qs - instruments[s].qty_scale)
                             for s in names])[codes]
    return FillRows(ts, np.asarray(symbol.to_numpy(zero_copy_only=False), dtype=object), side,
                    exact_ints(price_units // price_factor), exact_ints(qty_units // qty_factor),
                    exact_ints(fee_units), exact_ints(notional_units))


def round_trips(fills: FillRows, instruments: dict[str, Instrument],
                tape: MarketTape | None) -> Trips:
    """Every round trip in the order they opened (module docstring), computed column-wise.

    Per symbol, the position before and after each fill is a running sum. A fill against the
    position closes ``min(qty, |position|)`` of the symbol's current trip; a fill that leaves
    a flat position or goes through zero opens a trip with what it has left. Each fill's parts
    are then summed into their trips.
    """
    n = len(fills)
    side = np.asarray(fills.side, dtype=np.int64)
    ts = np.asarray(fills.ts, dtype=np.int64)
    qty, price = exact_ints(fills.qty), exact_ints(fills.price)
    fee, notional = exact_ints(fills.fee), exact_ints(fills.notional)
    names, code = _codes(fills.symbol) if n else ([], np.zeros(0, np.int64))
    rows = max(n, 1)
    if _peak(qty) * rows >= _SAFE:  # positions and quantity sums could wrap
        qty = _wide(qty)
    if _peak(price) * _peak(qty) * rows >= _SAFE:  # price x quantity sums could wrap
        price = _wide(price)
    if (_peak(notional) + _peak(fee)) * rows >= _SAFE:  # money sums could wrap
        notional, fee = _wide(notional), _wide(fee)
    groups = [np.flatnonzero(code == c) for c in range(len(names))] if len(names) > 1 else (
        [np.arange(n)] if n else [])
    before = np.empty(n, dtype=qty.dtype)  # the symbol's position before the fill
    after = np.empty(n, dtype=qty.dtype)
    for at in groups:
        held = np.cumsum(side[at] * qty[at])
        after[at] = held
        before[at] = np.concatenate((np.zeros(1, dtype=held.dtype), held[:-1]))
    against = np.where(side > 0, before < 0, before > 0)
    closing = np.where(against, np.minimum(qty, np.abs(before)), 0)
    opening = qty - closing
    new = (after != 0) & ((before == 0) | ((after > 0) != (before > 0)))
    count = int(np.count_nonzero(new))
    opened = np.where(new, np.cumsum(new) - 1, -1)  # each new trip's index, in opening order
    trip_after = np.empty(n, dtype=np.int64)  # the symbol's current trip after the fill
    trip_before = np.empty(n, dtype=np.int64)
    for at in groups:
        current = np.maximum.accumulate(opened[at])
        trip_after[at] = current
        trip_before[at] = np.concatenate(([-1], current[:-1]))
    shut = closing > 0
    opens = opening > 0
    share, fee_share = notional.copy(), fee.copy()
    split = shut & opens  # a reversal: notional and fee shared in proportion to quantity
    if split.any():
        share[split] = _half_even(_mul(notional[split], closing[split]), qty[split])
        fee_share[split] = _half_even(_mul(fee[split], closing[split]), qty[split])
    share = np.where(shut, share, 0)
    fee_share = np.where(shut, fee_share, 0)
    open_notional, open_fee = notional - share, fee - fee_share
    closes, enters = trip_before[shut], trip_after[opens]

    def per_trip(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
        out = np.zeros(count, dtype=values.dtype)
        np.add.at(out, ids, values)
        return out

    cash = (per_trip(closes, (-side * share)[shut])
            + per_trip(enters, (-side * open_notional)[opens]))
    fees = per_trip(closes, fee_share[shut]) + per_trip(enters, open_fee[opens])
    ended = shut & (closing == np.abs(before))  # the fill leaves its trip flat
    is_open = np.ones(count, dtype=bool)
    is_open[trip_before[ended]] = False
    exit_ts = np.zeros(count, dtype=np.int64)
    exit_ts[trip_before[ended]] = ts[ended]
    trip_code, entry_ts = code[new], ts[new]
    bars_held = np.zeros(count, dtype=np.int64)
    marks: dict[int, tuple[int, int]] = {}
    symbols = tape.symbols if tape is not None else {}
    for c, at in enumerate(groups):
        bars = symbols.get(names[c])
        if bars is None or not bars.ts.size:
            continue
        last_fill = int(at[-1])
        remaining = int(after[last_fill])
        if remaining:
            last = int(bars.close[-1])
            value = instruments[names[c]].notional(abs(remaining), last)
            marks[int(trip_after[last_fill])] = (value if remaining > 0 else -value, last)
        mine = np.flatnonzero(trip_code == c)
        start = np.searchsorted(bars.ts, entry_ts[mine], side="left")
        end = np.where(is_open[mine], bars.ts.size - 1,
                       np.searchsorted(bars.ts, exit_ts[mine], side="left"))
        bars_held[mine] = np.maximum(end - start, 0)
    pnl = cash - fees
    wide = pnl.dtype == object or any(abs(m) >= _SAFE for m, _ in marks.values())
    mark = np.zeros(count, dtype=object if wide else np.int64)
    mark_price = np.zeros(count, dtype=np.int64)
    marked = np.zeros(count, dtype=bool)
    for trip, (value, last) in marks.items():
        mark[trip], mark_price[trip], marked[trip] = value, last, True
    return Trips(
        names=names, code=trip_code, side=side[new], entry_ts=entry_ts,
        entry_qty=per_trip(enters, opening[opens]),
        entry_pq=per_trip(enters, _mul(price, opening)[opens]),
        entry_notional=per_trip(enters, open_notional[opens]),
        exit_qty=per_trip(closes, closing[shut]),
        exit_pq=per_trip(closes, _mul(price, closing)[shut]),
        exit_ts=exit_ts, cash=cash, fees=fees,
        fills=(np.bincount(closes, minlength=count) + np.bincount(enters, minlength=count))
        .astype(np.int64),
        open=is_open, mark=mark, mark_price=mark_price, marked=marked, bars_held=bars_held,
        pnl=(_wide(pnl) if wide else pnl) + mark)


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


def _avg_units(pq_sum: np.ndarray, qty: np.ndarray, factors: tuple[np.ndarray, np.ndarray],
               ) -> tuple[np.ndarray, np.ndarray]:
    """Average prices sum(p*q)/sum(q) in units of the column's scale, half-even, and where
    there is none (no quantity). ``factors``: per row, the numerator and the denominator of
    one price tick in those units."""
    none = qty == 0
    den = _mul(np.where(none, 1, qty), factors[1])
    return _half_even(_mul(pq_sum, factors[0]), den), none


def _tick_units(names: list[str], code: np.ndarray, instruments: dict[str, Instrument],
                scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row: one price tick of its symbol in units of ``10**-scale``, as a fraction."""
    ticks = [Fraction(instruments[s].price_increment) * 10**scale for s in names]
    return (exact_ints([t.numerator for t in ticks])[code],
            exact_ints([t.denominator for t in ticks])[code])


def trades_table(trips: Trips, instruments: dict[str, Instrument],
                 money: MoneySpec) -> pa.Table:
    schema = trades_schema(instruments, money)
    if not len(trips):
        return schema.empty_table()
    avg_scale = schema.field("entry_price").type.scale
    qs = schema.field("qty").type.scale
    code, is_open = trips.code, trips.open
    factors = _tick_units(trips.names, code, instruments, avg_scale)
    entry, no_entry = _avg_units(trips.entry_pq, trips.entry_qty, factors)
    # An open trip's exit price is its mark (when its symbol has bars), a closed one's the
    # average of its closing parts.
    exits, no_exit = _avg_units(np.where(is_open, trips.mark_price, trips.exit_pq),
                                np.where(is_open, 1, trips.exit_qty), factors)
    no_exit |= is_open & ~trips.marked
    qty_factor = exact_ints([instruments[s].qty_step * 10 ** (qs - instruments[s].qty_scale)
                             for s in trips.names])[code]
    arrays = [
        pa.array(np.arange(1, len(trips) + 1, dtype=np.int64), type=pa.int64()),
        pc.take(pa.array(trips.names, type=pa.string()), pa.array(code, type=pa.int64())),
        pc.if_else(pa.array(trips.side > 0), "long", "short"),
        pa.array(trips.entry_ts, type=pa.int64()).cast(_TS),
        pa.array(trips.exit_ts, type=pa.int64(), mask=is_open).cast(_TS),
        _decimals(entry, avg_scale, no_entry),
        _decimals(exits, avg_scale, no_exit),
        _decimals(_mul(trips.entry_qty, qty_factor), qs),
        _decimals(trips.pnl, money.scale),
        _returns(trips.pnl, trips.entry_notional),
        _decimals(trips.fees, money.scale),
        pa.array(trips.bars_held, type=pa.int64()),
        pa.array(trips.fills, type=pa.int64()),
        pa.array(is_open, type=pa.bool_()),
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _returns(pnl: np.ndarray, notional: np.ndarray) -> pa.Array:
    """PnL over the entry notional as the nearest double (null without a notional)."""
    none = notional == 0
    if pnl.dtype != object and notional.dtype != object and _peak(pnl) <= _EXACT_FLOAT \
            and _peak(notional) <= _EXACT_FLOAT:
        # Both exact as doubles, so the division is the correctly rounded quotient, as
        # Fraction's; + 0.0 turns a -0.0 (zero over a negative notional) into Fraction's 0.0.
        ratio = pnl.astype(np.float64) / np.where(none, 1, notional).astype(np.float64) + 0.0
    else:
        ratio = np.asarray([float(Fraction(int(p), int(e))) if e else 0.0
                            for p, e in zip(pnl.tolist(), notional.tolist(), strict=True)],
                           dtype=np.float64)
    return pa.array(ratio, type=pa.float64(), mask=none)


def _decimals(units: np.ndarray, scale: int, nulls: np.ndarray | None = None) -> pa.Array:
    column = decimal_column(exact_ints(units), scale)
    if nulls is not None and nulls.any():
        column = pc.if_else(pa.array(nulls), pa.scalar(None, type=column.type), column)
    return column


def write_trades(path: Path, trips: Trips, instruments: dict[str, Instrument],
                 money: MoneySpec) -> None:
    table = trades_table(trips, instruments, money)
    pq.write_table(table, path, **parquet_options(table.schema, dictionary=("qty",)))


def trade_stats(trips: Trips, money: MoneySpec) -> dict[str, Any]:
    """trades, win_rate, profit_factor, expectancy, avg_win and avg_loss of the closed trips."""
    pnls: list[int] = trips.pnl[~trips.open].tolist()
    return pnl_stats(pnls, money, exact=True)


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
