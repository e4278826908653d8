"""Round trips and ``trades.parquet`` computed column-wise equal a fill-by-fill reference.

The reference below is the plain loop the module docstring of ``runs.trades`` describes: one
fill at a time, a reversal split in proportion to quantity (half-even, the remainder to the
part that opens), open trips marked at their symbol's last close. Hypothesis draws fills of
several symbols with reversals, partial closes, zero quantities, open trips at the end and
values far beyond int64, and the vectorised code must give every field, and every cell of the
trades table, exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from weltklassebot.core.decimal import div_round_half_even
from weltklassebot.model.bars import BarChunk
from weltklassebot.model.instrument import Instrument, MoneySpec
from weltklassebot.runs.benchmark import MarketTape
from weltklassebot.runs.trades import (
    FillRows,
    Trip,
    exact_sum,
    round_trips,
    trade_stats,
    trades_schema,
    trades_table,
)

USD = MoneySpec("USD", Decimal("0.01"))
INSTRUMENTS = {
    "A": Instrument("A", Decimal("0.01"), Decimal("1"), USD),
    "B": Instrument("B", Decimal("0.25"), Decimal("0.001"), USD),
    "C": Instrument("C", Decimal("0.5"), Decimal("0.1"), USD),
}
_TS = pa.timestamp("ns", tz="UTC")


@dataclass
class RefTrip:
    symbol: str
    side: int
    entry_ts: int
    entry_qty: int = 0
    entry_pq: int = 0
    entry_notional: int = 0
    exit_qty: int = 0
    exit_pq: int = 0
    exit_ts: int | None = None
    cash: int = 0
    fees: int = 0
    fills: int = 0
    open: bool = True
    mark: int = 0
    mark_price: int | None = None
    bars_held: int = 0
    pnl: int = 0


def reference_trips(fills: FillRows, tape: MarketTape | None) -> list[RefTrip]:
    trips: list[RefTrip] = []
    current: dict[str, RefTrip] = {}
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
            trip = current.get(symbol) or RefTrip(symbol, side, ts)
            if symbol not in current:
                current[symbol] = trip
                trips.append(trip)
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
        if trip.open and bars is not None and bars.ts.size:
            remaining = position[trip.symbol]
            last = int(bars.close[-1])
            value = INSTRUMENTS[trip.symbol].notional(abs(remaining), last)
            trip.mark = value if remaining > 0 else -value
            trip.mark_price = last
        trip.pnl = trip.cash + trip.mark - trip.fees
        if bars is not None and bars.ts.size:
            start = int(np.searchsorted(bars.ts, trip.entry_ts, side="left"))
            end = (int(np.searchsorted(bars.ts, trip.exit_ts, side="left"))
                   if trip.exit_ts is not None else int(bars.ts.size) - 1)
            trip.bars_held = max(end - start, 0)
    return trips


def reference_table(trips: list[RefTrip]) -> pa.Table:
    schema = trades_schema(INSTRUMENTS, USD)
    avg_scale = schema.field("entry_price").type.scale
    qs = schema.field("qty").type.scale

    def avg(pq_sum: int, qty: int, inst: Instrument) -> Decimal | None:
        if qty == 0:
            return None
        value = Fraction(pq_sum, qty) * Fraction(inst.price_increment) * 10**avg_scale
        return Decimal(div_round_half_even(value.numerator, value.denominator)).scaleb(
            -avg_scale)

    def exit_price(t: RefTrip) -> Decimal | None:
        inst = INSTRUMENTS[t.symbol]
        if t.open:
            return None if t.mark_price is None else avg(t.mark_price, 1, inst)
        return avg(t.exit_pq, t.exit_qty, inst)

    def money(units: int) -> Decimal:
        return Decimal(units).scaleb(-USD.scale)

    columns = {
        "trade": list(range(1, len(trips) + 1)),
        "symbol": [t.symbol for t in trips],
        "side": ["long" if t.side > 0 else "short" for t in trips],
        "entry_ts": pa.array([t.entry_ts for t in trips], type=pa.int64()).cast(_TS),
        "exit_ts": pa.array([t.exit_ts for t in trips], type=pa.int64()).cast(_TS),
        "entry_price": [avg(t.entry_pq, t.entry_qty, INSTRUMENTS[t.symbol]) for t in trips],
        "exit_price": [exit_price(t) for t in trips],
        "qty": [Decimal(t.entry_qty * INSTRUMENTS[t.symbol].qty_step
                        * 10 ** (qs - INSTRUMENTS[t.symbol].qty_scale)).scaleb(-qs)
                for t in trips],
        "pnl": [money(t.pnl) for t in trips],
        "return": [float(Fraction(t.pnl, t.entry_notional)) if t.entry_notional else None
                   for t in trips],
        "fees": [money(t.fees) for t in trips],
        "bars_held": [t.bars_held for t in trips],
        "fills": [t.fills for t in trips],
        "open": [t.open for t in trips],
    }
    return pa.Table.from_arrays([pa.array(columns[f.name], type=f.type) for f in schema],
                                schema=schema)


_SMALL = st.integers(1, 50)
_HUGE = st.integers(1, 10**24)
_EDGE = st.integers(2**60, 2**63 - 1)  # each fits int64, their sums and products do not


@st.composite
def fill_rows(draw: st.DrawFn) -> FillRows:
    # Values beyond int64, or within it but with sums and products beyond: the exact route.
    size = draw(st.sampled_from(["small", "huge", "edge"]))
    big = {"huge": _HUGE, "edge": _EDGE}.get(size)
    symbols = draw(st.sampled_from([["A"], ["A", "B"], ["A", "B", "C"]]))
    n = draw(st.integers(0, 40))
    gaps = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    rows = []
    ts = 10
    for gap in gaps:
        ts += gap
        rows.append((
            ts, draw(st.sampled_from(symbols)), draw(st.sampled_from([1, -1])),
            draw(st.integers(1, 20_000) if big is None else big),
            # Small quantities repeat, so positions often come back to exactly zero.
            draw(st.integers(0, 6) if big is None else st.one_of(st.just(0), _SMALL, big)),
            draw(st.integers(0, 500) if big is None else st.one_of(_SMALL, big)),
            draw(st.integers(0, 10**6) if big is None else st.one_of(_SMALL, big)),
        ))
    return FillRows(*(list(column) for column in zip(*rows, strict=True))) if rows else \
        FillRows([], [], [], [], [], [], [])


@st.composite
def tapes(draw: st.DrawFn) -> MarketTape | None:
    if draw(st.booleans()):
        return None
    tape = MarketTape(INSTRUMENTS)
    for code in range(len(tape.names)):
        bars = draw(st.integers(0, 30))
        if not bars:
            continue  # a symbol without bars: no marks, no bars held
        ts = np.cumsum(np.asarray(draw(st.lists(st.integers(1, 4), min_size=bars,
                                                 max_size=bars)), dtype=np.int64))
        close = np.asarray(draw(st.lists(st.integers(1, 10**6), min_size=bars, max_size=bars)),
                           dtype=np.int64)
        codes = np.full(bars, code, dtype=np.int64)
        tape.add(BarChunk(ts, codes, close, close, close, close, np.ones(bars)))
    return tape


@settings(max_examples=400, deadline=None)
@given(fill_rows(), tapes())
def test_round_trips_equal_the_fill_by_fill_reference(fills: FillRows,
                                                      tape: MarketTape | None) -> None:
    expected = reference_trips(fills, tape)
    trips = round_trips(fills, INSTRUMENTS, tape)
    assert [asdict(t) for t in trips] == [asdict(t) for t in expected]
    assert all(isinstance(t, Trip) for t in trips)
    table = trades_table(trips, INSTRUMENTS, USD)
    assert table.equals(reference_table(expected), check_metadata=True)
    closed = [t.pnl for t in expected if not t.open]
    assert trade_stats(trips, USD)["trades"] == len(closed)


def test_a_reversal_in_numpy_arrays_shares_money_like_lists() -> None:
    """read_fills gives int64 arrays; the same fills as lists give the same trips."""
    rows = FillRows([1, 2, 3], ["A", "A", "A"], [1, -1, 1], [100, 110, 105], [2, 5, 3],
                    [101, 333, 99], [200, 550, 315])
    as_arrays = FillRows(*(np.asarray(c) if i != 1 else np.asarray(c, dtype=object)
                           for i, c in enumerate(
                               (rows.ts, rows.symbol, rows.side, rows.price, rows.qty, rows.fee,
                                rows.notional))))
    a, b = round_trips(rows, INSTRUMENTS, None), round_trips(as_arrays, INSTRUMENTS, None)
    assert list(a) == list(b)
    # 550 x 2/5 = 220, 333 x 2/5 = 133.2 -> 133: the closing part; the rest opens the short.
    assert [(t.side, t.cash, t.fees, t.open) for t in a] == [
        (1, 220 - 200, 101 + 133, False), (-1, 330 - 315, 200 + 99, False)]


def test_exact_sum_does_not_wrap() -> None:
    big = np.asarray([2**62, 2**62, 2**62], dtype=np.int64)
    assert exact_sum(big) == 3 * 2**62
    assert exact_sum([10**30, -1]) == 10**30 - 1


_BIG_PQ = 2**31 - 1  # price x quantity just under 2^62: three of them add up beyond int64
_NOTIONAL, _PNL = 81_764_416_680_803_268, 132_762_829_599_805  # beyond 2^53, a double apart


def _check(fills: FillRows) -> list[Trip]:
    trips = round_trips(fills, INSTRUMENTS, None)
    expected = reference_trips(fills, None)
    assert [asdict(t) for t in trips] == [asdict(t) for t in expected]
    assert trades_table(trips, INSTRUMENTS, USD).equals(reference_table(expected))
    return list(trips)


def test_sums_of_int64_products_beyond_int64_stay_exact() -> None:
    fills = FillRows([1, 2, 3, 4], ["A"] * 4, [1, 1, 1, -1], [_BIG_PQ] * 4,
                     [_BIG_PQ, _BIG_PQ, _BIG_PQ, 3 * _BIG_PQ], [0] * 4, [1] * 4)
    (trip,) = _check(fills)
    assert trip.entry_pq == trip.exit_pq == 3 * _BIG_PQ**2 > 2**63


def test_a_return_beyond_exact_doubles_is_the_nearest_double() -> None:
    fills = FillRows([1, 2], ["A"] * 2, [1, -1], [100, 101], [1, 1], [0, 0],
                     [_NOTIONAL, _NOTIONAL + _PNL])
    (trip,) = _check(fills)
    assert trip.pnl == _PNL
    assert float(Fraction(_PNL, _NOTIONAL)) != float(_PNL) / float(_NOTIONAL)
