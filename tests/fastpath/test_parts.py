"""The compiled parts against the engine's own code, value for value: the random streams, the
exact integer arithmetic, the fill model, the channels, the volume caps and the hash text."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weltklassebot.core.decimal import format_scaled
from weltklassebot.core.rng import RandomStream
from weltklassebot.engine.backtest import _volume_cap
from weltklassebot.engine.equity_hash import equity_text, fill_lines_text
from weltklassebot.engine.fill_model import fill_point
from weltklassebot.fastpath import kernels as k
from weltklassebot.fastpath.bars import CAP_MAX, volume_caps
from weltklassebot.fastpath.runner import fill_records, fill_text, stream_state
from weltklassebot.model.enums import Liquidity, OrderType
from weltklassebot.model.instrument import Instrument, MoneySpec

INT64 = st.integers(-(2**63) + 1, 2**63 - 1)
BIG = st.integers(-(2**62), 2**62)
SETTINGS = settings(max_examples=300, deadline=None)


@given(seed=st.integers(0, 2**64 - 1), name=st.sampled_from(["slippage", "latency", "x"]),
       bounds=st.lists(st.one_of(st.integers(1, 10), st.integers(1, 2**63 - 1),
                                 st.sampled_from([1, 2, 3, 1001, 2**32 + 1, 2**62 + 12345,
                                                  2**63 - 1])), min_size=1, max_size=40))
@SETTINGS
def test_the_kernel_draws_what_the_named_stream_draws(seed: int, name: str,
                                                      bounds: list[int]) -> None:
    """PCG64 re-implemented in the kernel gives RandomStream's raw draws, and ``below`` maps
    them (rejection sampling included) to the same values, in the same order."""
    stream = RandomStream(seed, name)
    state = stream_state(seed, name)
    assert [int(k.pcg64_raw(state)) for _ in range(5)] == [stream.raw() for _ in range(5)]
    assert [int(k.pcg64_below(state, b)) for b in bounds] == [stream.below(b) for b in bounds]


def test_rejection_sampling_consumes_the_draws_the_stream_consumes() -> None:
    """With a bound just above 2**63 about half of the raw draws are rejected: the kernel and
    the stream stay in step over many of them."""
    bound = 2**63 + 1
    assert bound > 2**63 - 1  # beyond int64: only the unsigned kernel can take it
    stream = RandomStream(99, "latency")
    state = stream_state(99, "latency")
    mine = [int(k.pcg64_below(state, np.uint64(bound))) for _ in range(200)]
    assert mine == [stream.below(bound) for _ in range(200)]


@given(a=BIG, b=BIG, d=st.one_of(st.integers(1, 10**9), st.integers(1, 2**62 - 1)))
@SETTINGS
def test_products_divide_exactly_in_128_bits(a: int, b: int, d: int) -> None:
    ok, q, r = k.floor_divmod_product(a, b, d)
    want_q, want_r = divmod(a * b, d)
    if abs(want_q) >= 2**62 - 1:
        return  # reported or exact; either way the caller is told
    assert ok
    assert (q, r) == (want_q, want_r)
    ok, rounded = k.half_even_product(a, b, d)
    twice = 2 * want_r
    want = want_q + (1 if twice > d or (twice == d and want_q % 2) else 0)
    assert ok
    assert rounded == want


def test_a_quotient_beyond_int64_is_reported() -> None:
    ok, _q, _r = k.floor_divmod_product(2**62, 2**62, 3)
    assert not ok
    ok, _q, _r = k.floor_divmod_product(2**62, 2**40, 2**40)  # fits 128 bits, not int64
    assert not ok


@given(a=BIG, b=BIG, c=BIG, d=BIG)
@SETTINGS
def test_product_comparison_is_exact(a: int, b: int, c: int, d: int) -> None:
    assert bool(k.product_exceeds(a, b, c, d)) == (a * b > c * d)
    assert not k.product_exceeds(a, b, a, b)


_TYPES = [OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT]


@given(kind=st.integers(0, 3), side=st.sampled_from([1, -1]), limit=st.integers(1, 60),
       stop=st.integers(1, 60), triggered=st.booleans(), o=st.integers(1, 60),
       up=st.integers(0, 20), down=st.integers(0, 20))
@SETTINGS
def test_fill_point_is_the_engines(kind: int, side: int, limit: int, stop: int,
                                   triggered: bool, o: int, up: int, down: int) -> None:
    """Every order type, side and trigger state, on bars around the levels."""
    h, low = o + up, max(1, o - down)
    order_type = _TYPES[kind]
    has_limit = order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    has_stop = order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
    price, liquidity, now = fill_point(order_type, side, limit if has_limit else None,
                                       stop if has_stop else None, triggered, o, h, low)
    fills, mine, my_liquidity, my_now = k.fill_point(
        kind, side, limit if has_limit else k.NONE, stop if has_stop else k.NONE, triggered,
        o, h, low)
    assert bool(fills) == (price is not None)
    assert bool(my_now) == now
    if price is not None:
        assert mine == price
        assert (my_liquidity == k.MAKER) == (liquidity is Liquidity.MAKER)


@given(values=st.lists(st.integers(-(2**40), 2**40), max_size=80), window=st.integers(1, 90))
@SETTINGS
def test_channels_are_the_extremes_of_the_window(values: list[int], window: int) -> None:
    array = np.asarray(values, dtype=np.int64)
    highs = [max(values[max(0, i - window + 1):i + 1]) for i in range(len(values))]
    lows = [min(values[max(0, i - window + 1):i + 1]) for i in range(len(values))]
    assert k.rolling_extreme(array, window, 1).tolist() == highs
    assert k.rolling_extreme(array, window, -1).tolist() == lows


@given(volumes=st.lists(st.one_of(
    st.floats(min_value=0, max_value=1e30, allow_nan=False),
    st.sampled_from([0.0, 5e-324, 1e-300, 0.1, 0.3, 1.0, 2.5, 123.456, 1e15, 1e300, -0.0,
                     -3.5])), max_size=30),
       participation=st.sampled_from(["1", "0.5", "0.1", "0.01", "0.333"]),
       increment=st.sampled_from(["1", "0.001", "0.25", "0.00000001"]))
@SETTINGS
def test_volume_caps_are_the_engines(volumes: list[float], participation: str,
                                     increment: str) -> None:
    """floor(volume x participation) in quantity ticks, exactly (negative caps fill nothing
    either way; caps beyond any order's quantity are stored as CAP_MAX)."""
    p = Fraction(Decimal(participation))
    slot: Any = SimpleNamespace(instrument=SimpleNamespace(
        quantity_increment=Decimal(increment)))
    want = [_volume_cap(v, p, slot) for v in volumes]
    got = volume_caps(np.asarray(volumes, dtype=np.float64), p, Decimal(increment)).tolist()
    assert got == [max(0, min(w, CAP_MAX)) for w in want]


@given(values=st.lists(BIG, min_size=1, max_size=30), times=st.lists(INT64, min_size=30,
                                                                     max_size=30),
       scale=st.integers(0, 24))
@SETTINGS
def test_equity_lines_are_the_canonical_text(values: list[int], times: list[int],
                                             scale: int) -> None:
    ts = np.asarray(times[:len(values)], dtype=np.int64)
    equity = np.asarray(values, dtype=np.int64)
    out = np.empty(len(values) * (23 + max(21, scale + 3)), dtype=np.uint8)
    size = k.render_equity(ts, equity, scale, out)
    want = "".join(f"{t},{format_scaled(v, scale)}\n" for t, v in zip(
        ts.tolist(), values, strict=True)).encode()
    assert out[:size].tobytes() == want
    if scale < 19:  # the engine's Arrow renderer works up to 18 decimals
        assert bytes(equity_text(ts, equity, scale)) == want


@pytest.mark.parametrize(("price_inc", "qty_inc", "cash_inc", "price", "qty"), [
    ("0.01", "0.001", "0.01", 123_456, 1_500),
    ("0.00000001", "0.00000001", "0.00000001", 262_379_000_000, 100_000_000),
    ("0.25", "1", "0.25", 7, 3),
    ("0.01", "1", "0.01", 2**62, 5),  # beyond 2**62 units: the engine's per-record route
])
def test_fill_lines_are_the_engines(price_inc: str, qty_inc: str, cash_inc: str, price: int,
                                    qty: int) -> None:
    inst = Instrument("X/Y", Decimal(price_inc), Decimal(qty_inc),
                      MoneySpec("Y", Decimal(cash_inc)))
    table = {
        "fill_id": np.array([1, 2, 3], dtype=np.int64),
        "order_id": np.array([1, 1, 4], dtype=np.int64),
        "ts": np.array([1_700_000_000 * 10**9, 1_700_000_060 * 10**9, 0], dtype=np.int64),
        "side": np.array([1, -1, 1], dtype=np.int64),
        "price": np.array([price, 1, price // 3], dtype=np.int64),
        "qty": np.array([qty, 1, qty * 2], dtype=np.int64),
        "fee": np.array([12_345, 0, -7], dtype=np.int64),
        "notional": np.array([1, 2, 3], dtype=np.int64),
        "liquidity": np.array([0, 1, 0], dtype=np.int64),
    }
    records = fill_records(table, inst.symbol)
    assert fill_text(table, inst) == fill_lines_text(records, {inst.symbol: inst})
