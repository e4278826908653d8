"""engine/costs.py: fee rounding, minimum fee, rebates, slippage rounding, latency draws."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weltklassebot.core.rng import RandomStream
from weltklassebot.engine.costs import (
    FeeModel,
    FixedSlippage,
    LatencyModel,
    SlippageModel,
    StochasticSlippage,
)
from weltklassebot.model.enums import BUY, SELL, Liquidity

M, T = Liquidity.MAKER, Liquidity.TAKER


def fees(maker: str = "10", taker: str = "10", min_fee: int = 0, step: int = 1) -> FeeModel:
    return FeeModel(Decimal(maker), Decimal(taker), min_fee, step)


@pytest.mark.parametrize(
    ("model", "notional", "liquidity", "want"),
    [
        (fees(), 100_000, T, 100),
        (fees(), 100_500, T, 100),  # 100.5 -> 100 (half-even)
        (fees(), 101_500, T, 102),  # 101.5 -> 102
        (fees(), -100_000, T, 100),  # fees are charged on |notional|
        (fees(maker="2"), 99_000, M, 20),  # 19.8 -> 20
        (fees(maker="-2.5"), 99_000, M, -25),  # rebate: -24.75 -> -25
        (fees(maker="-2.5", min_fee=500), 99_000, M, -25),  # no minimum on rebates
        (fees(min_fee=500), 101_000, T, 500),
        (fees(min_fee=500), 10_100_000, T, 10_100),
        (fees(taker="0", min_fee=500), 101_000, T, 0),  # a zero fee stays zero
        (fees(maker="0"), 99_000, M, 0),
        (fees(step=25), 100_000, T, 100),  # 100 / 25 = 4 steps
        (fees(step=25), 112_500, T, 100),  # 112.5 / 25 = 4.5 -> 4 steps
        (fees(step=25), 137_500, T, 150),  # 5.5 -> 6 steps
    ],
)
def test_fee(model: FeeModel, notional: int, liquidity: Liquidity, want: int) -> None:
    assert model.fee(notional, liquidity) == want


@given(st.integers(-10**15, 10**15), st.decimals("0", "100", places=3),
       st.integers(0, 10**6))
def test_taker_fees_are_never_negative(notional: int, bps: Decimal, min_fee: int) -> None:
    assert FeeModel(Decimal(-5), bps, min_fee, 1).fee(notional, T) >= 0


def test_no_slippage_model_returns_the_price() -> None:
    assert SlippageModel().apply(12345, BUY) == 12345
    assert SlippageModel().apply(12345, SELL) == 12345


@pytest.mark.parametrize(
    ("bps", "price", "side", "want"),
    [
        ("10", 10_001, BUY, 10_012),  # 10011.001 -> up
        ("10", 10_001, SELL, 9_990),  # 9990.999 -> down
        ("10", 10_000, BUY, 10_010),  # exact: no rounding
        ("10", 10_000, SELL, 9_990),
        ("0.5", 3, BUY, 4),  # any slippage moves at least one tick against a buyer
        ("0.5", 3, SELL, 2),
        ("0", 3, BUY, 3),
    ],
)
def test_fixed_slippage_rounds_against_the_trader(bps: str, price: int, side: int,
                                                  want: int) -> None:
    assert FixedSlippage(Decimal(bps)).apply(price, side) == want


@given(st.integers(1, 10**12), st.decimals("0", "500", places=2), st.sampled_from([BUY, SELL]))
def test_fixed_slippage_is_the_nearest_tick_against_the_trader(price: int, bps: Decimal,
                                                              side: int) -> None:
    got = FixedSlippage(bps).apply(price, side)
    exact = Fraction(price) * (1 + side * Fraction(bps) / 10_000)
    if side > 0:
        assert got - 1 < exact <= got
    else:
        assert got <= exact < got + 1


def test_stochastic_slippage_is_seeded_and_bounded() -> None:
    def draws(seed: int) -> list[Fraction]:
        model = StochasticSlippage(Decimal("12.5"), RandomStream(seed, "slippage"))
        return [model.bps() for _ in range(200)]

    first = draws(1)
    assert first == draws(1)
    assert first != draws(2)
    assert all(0 <= b <= Fraction(25, 2) for b in first)
    assert all((b * 1000).denominator == 1 for b in first)
    assert max(first) > 10
    assert min(first) < 2


def test_stochastic_slippage_applies_against_the_trader() -> None:
    model = StochasticSlippage(Decimal("50"), RandomStream(3, "slippage"))
    for _ in range(100):
        assert 10_000 <= model.apply(10_000, BUY) <= 10_050
        assert 9_950 <= model.apply(10_000, SELL) <= 10_000


def test_latency_without_jitter_is_the_delay() -> None:
    assert LatencyModel(5, 0, None).draw() == 5
    assert LatencyModel(5, 10, None).draw() == 5


def test_latency_jitter_is_seeded_and_in_range() -> None:
    def draws(seed: int) -> list[int]:
        model = LatencyModel(1_000, 500, RandomStream(seed, "latency"))
        return [model.draw() for _ in range(300)]

    first = draws(4)
    assert first == draws(4)
    assert first != draws(5)
    assert all(1_000 <= d <= 1_500 for d in first)
    assert len(set(first)) > 100
