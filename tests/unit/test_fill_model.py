"""engine/fill_model.py: the fill price of one order in one bar, for every order type and side.

Bar (open, high, low) in ticks; the path is open -> adverse extreme -> favourable extreme -> close.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weltklassebot.engine.fill_model import fill_point, path_stage
from weltklassebot.model.enums import BUY, SELL, Liquidity, OrderType

M, T = Liquidity.MAKER, Liquidity.TAKER
MKT, LMT, STP, STL = OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT

# (type, side, limit, stop, triggered, (open, high, low)) -> (price, liquidity, triggered)
TABLE = [
    (MKT, BUY, None, None, False, (100, 110, 90), (100, T, False)),
    (MKT, SELL, None, None, False, (100, 110, 90), (100, T, False)),
    # limits
    (LMT, BUY, 95, None, False, (100, 110, 95), (95, M, False)),
    (LMT, BUY, 95, None, False, (100, 110, 96), (None, M, False)),
    (LMT, BUY, 95, None, False, (93, 110, 90), (93, T, False)),
    (LMT, BUY, 95, None, False, (95, 110, 90), (95, T, False)),
    (LMT, SELL, 105, None, False, (100, 105, 90), (105, M, False)),
    (LMT, SELL, 105, None, False, (100, 104, 90), (None, M, False)),
    (LMT, SELL, 105, None, False, (107, 110, 100), (107, T, False)),
    # stops
    (STP, BUY, None, 105, False, (100, 104, 90), (None, T, False)),
    (STP, BUY, None, 105, False, (100, 105, 90), (105, T, True)),
    (STP, BUY, None, 105, False, (108, 110, 100), (108, T, True)),
    (STP, BUY, None, 105, True, (100, 101, 99), (100, T, False)),
    (STP, SELL, None, 95, False, (100, 110, 96), (None, T, False)),
    (STP, SELL, None, 95, False, (100, 110, 95), (95, T, True)),
    (STP, SELL, None, 95, False, (92, 94, 90), (92, T, True)),
    (STP, SELL, None, 95, True, (100, 101, 99), (100, T, False)),
    # stop-limits, not yet triggered
    (STL, BUY, 106, 105, False, (100, 104, 90), (None, T, False)),
    (STL, BUY, 106, 105, False, (100, 107, 90), (105, T, True)),
    (STL, BUY, 104, 105, False, (100, 107, 103), (104, M, True)),
    (STL, BUY, 104, 105, False, (100, 107, 104.5), (None, M, True)),
    (STL, BUY, 106, 105, False, (105.5, 107, 104), (105.5, T, True)),
    (STL, BUY, 106, 105, False, (108, 110, 106), (106, M, True)),
    (STL, BUY, 106, 105, False, (108, 110, 107), (None, M, True)),
    (STL, SELL, 94, 95, False, (100, 110, 90), (95, T, True)),
    (STL, SELL, 96, 95, False, (100, 110, 90), (96, M, True)),
    (STL, SELL, 96, 95, False, (95.5, 95.8, 90), (None, M, True)),
    (STL, SELL, 94, 95, False, (94.5, 96, 90), (94.5, T, True)),
    (STL, SELL, 94, 95, False, (92, 93, 90), (None, M, True)),
    # stop-limits already triggered behave as limits
    (STL, BUY, 104, 105, True, (103, 108, 100), (103, T, False)),
    (STL, BUY, 104, 105, True, (106, 108, 104), (104, M, False)),
    (STL, BUY, 104, 105, True, (106, 108, 104.5), (None, M, False)),
    (STL, SELL, 96, 95, True, (97, 98, 90), (97, T, False)),
]


def _ticks(x: float | int | None) -> int | None:
    return None if x is None else round(x * 10)


@pytest.mark.parametrize(("typ", "side", "limit", "stop", "trig", "bar", "want"), TABLE)
def test_fill_point_table(typ: OrderType, side: int, limit: float | None, stop: float | None,
                          trig: bool, bar: tuple[float, float, float],
                          want: tuple[float | None, Liquidity, bool]) -> None:
    o, h, lo = (_ticks(v) for v in bar)
    price, liquidity, triggered = fill_point(typ, side, _ticks(limit), _ticks(stop), trig,
                                             o, h, lo)  # type: ignore[arg-type]
    assert (price, triggered) == (_ticks(want[0]), want[2])
    if price is not None:
        assert liquidity is want[1]


bars = st.tuples(st.integers(1, 1000), st.integers(0, 200), st.integers(0, 200)).map(
    lambda t: (t[0], t[0] + t[1], max(1, t[0] - t[2])))


@given(bars, st.integers(1, 1200), st.sampled_from([BUY, SELL]))
def test_a_limit_never_fills_at_a_worse_price_than_its_limit(
        bar: tuple[int, int, int], limit: int, side: int) -> None:
    price, _, _ = fill_point(LMT, side, limit, None, False, *bar)
    if price is not None:
        assert price * side <= limit * side
        assert bar[2] <= price <= bar[1]


@given(bars, st.integers(1, 1200), st.sampled_from([BUY, SELL]))
def test_a_stop_fills_at_the_worse_of_stop_and_open(
        bar: tuple[int, int, int], stop: int, side: int) -> None:
    o, h, lo = bar
    price, _, triggered = fill_point(STP, side, None, stop, False, o, h, lo)
    reached = h >= stop if side > 0 else lo <= stop
    assert (price is not None) == reached == triggered
    if price is not None:
        assert price == (max(stop, o) if side > 0 else min(stop, o))


@given(bars, st.integers(1, 1200), st.integers(1, 1200), st.sampled_from([BUY, SELL]))
def test_stop_limit_fills_within_its_limit_and_inside_the_bar(
        bar: tuple[int, int, int], stop: int, limit: int, side: int) -> None:
    o, h, lo = bar
    price, _, triggered = fill_point(STL, side, limit, stop, False, o, h, lo)
    if price is not None:
        assert triggered
        assert price * side <= limit * side
        assert lo <= price <= h


@given(bars, st.integers(1, 1200), st.sampled_from([LMT, STP, STL]))
def test_sell_is_the_mirror_of_buy(bar: tuple[int, int, int], level: int,
                                   typ: OrderType) -> None:
    o, h, lo = bar
    limit = level if typ is not STP else None
    stop = level if typ is not LMT else None
    buy = fill_point(typ, BUY, limit, stop, False, o, h, lo)
    top = 10_000
    mirrored = fill_point(typ, SELL, None if limit is None else top - limit,
                          None if stop is None else top - stop, False,
                          top - o, top - lo, top - h)
    assert mirrored[2] == buy[2]
    assert (mirrored[0] is None) == (buy[0] is None)
    if buy[0] is not None:
        assert mirrored[0] == top - buy[0]
        assert mirrored[1] is buy[1]


# (type, side, limit, stop, triggered, (open, high, low)) -> stage on the path (None: no fill)
STAGES = [
    (MKT, BUY, None, None, False, (100, 110, 90), 0),
    (LMT, BUY, 95, None, False, (93, 110, 90), 0),  # the open is already better
    (LMT, BUY, 95, None, False, (100, 110, 95), 2),  # touched on the way down, after the high
    (LMT, SELL, 105, None, False, (100, 106, 90), 2),  # a sell sees the low first
    (STP, BUY, None, 105, False, (100, 110, 90), 1),  # reached on the way to the high
    (STP, BUY, None, 105, False, (106, 110, 90), 0),  # gapped through at the open
    (STP, SELL, None, 95, False, (100, 110, 90), 1),
    (STP, SELL, None, 95, True, (100, 110, 99), 0),  # triggered before: a market order
    (STL, BUY, 106, 105, False, (100, 110, 90), 1),  # stop within the limit: at the stop
    (STL, BUY, 100, 105, False, (100, 110, 90), 2),  # then the limit, later in the path
    (STL, BUY, 95, 105, False, (100, 110, 96), None),
    (LMT, BUY, 95, None, False, (100, 110, 96), None),
]


@pytest.mark.parametrize(("kind", "side", "limit", "stop", "triggered", "bar", "stage"), STAGES)
def test_path_stage(kind: OrderType, side: int, limit: int | None, stop: int | None,
                    triggered: bool, bar: tuple[int, int, int], stage: int | None) -> None:
    assert path_stage(kind, side, limit, stop, triggered, *bar) == stage
