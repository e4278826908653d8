"""core/decimal.py: exact half-even division, ceilings, scales and canonical text."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weltklassebot.core.decimal import (
    decimal_scale,
    div_ceil,
    div_round_half_even,
    format_scaled,
    scaled_int,
    scaled_to_decimal,
    to_decimal,
)


@pytest.mark.parametrize(
    ("num", "den", "want"),
    [
        (5, 2, 2), (7, 2, 4), (-5, 2, -2), (-7, 2, -4), (1, 3, 0), (2, 3, 1), (-2, 3, -1),
        (0, 7, 0), (25, 10, 2), (35, 10, 4), (5, -2, -2), (-5, -2, 2),
        (10**30 + 1, 2, 5 * 10**29), (10**30 + 3, 2, 5 * 10**29 + 2),
    ],
)
def test_div_round_half_even_table(num: int, den: int, want: int) -> None:
    assert div_round_half_even(num, den) == want


@settings(max_examples=300)
@given(st.integers(-10**25, 10**25), st.integers(-10**12, 10**12).filter(bool))
def test_div_round_half_even_matches_decimal(num: int, den: int) -> None:
    exact = Fraction(num, den)
    want = (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(
        Decimal(1), rounding=ROUND_HALF_EVEN) if abs(num) < 10**20 else None
    got = div_round_half_even(num, den)
    assert abs(Fraction(got) - exact) <= Fraction(1, 2)
    if abs(Fraction(got) - exact) == Fraction(1, 2):
        assert got % 2 == 0
    if want is not None:
        assert got == int(want)


def test_div_by_zero_raises() -> None:
    with pytest.raises(ZeroDivisionError):
        div_round_half_even(1, 0)


@given(st.integers(-10**18, 10**18), st.integers(1, 10**9))
def test_div_ceil(num: int, den: int) -> None:
    got = div_ceil(num, den)
    assert (got - 1) * den < num <= got * den


@pytest.mark.parametrize(
    ("value", "scale"),
    [("1", 0), ("0.01", 2), ("0.00000001", 8), ("0.25", 2), ("10", 0), ("1E+2", 0),
     ("0.10", 1), ("5E-3", 3)],
)
def test_decimal_scale(value: str, scale: int) -> None:
    assert decimal_scale(Decimal(value)) == scale


def test_scaled_int_exact_and_refuses_extra_places() -> None:
    assert scaled_int(Decimal("1.23"), 2) == 123
    assert scaled_int(Decimal("-0.5"), 3) == -500
    with pytest.raises(ValueError, match="more than 2 decimal places"):
        scaled_int(Decimal("1.234"), 2)


@pytest.mark.parametrize(
    ("units", "scale", "text"),
    [
        (0, 8, "0"), (100000000, 8, "1"), (123450000, 8, "1.2345"), (-5, 2, "-0.05"),
        (-100, 2, "-1"), (1, 8, "0.00000001"), (7, 0, "7"), (12, -2, "1200"),
        (10**30, 2, "10000000000000000000000000000"),
    ],
)
def test_format_scaled_is_canonical(units: int, scale: int, text: str) -> None:
    assert format_scaled(units, scale) == text


@given(st.integers(-10**20, 10**20), st.integers(0, 12))
def test_format_scaled_round_trips(units: int, scale: int) -> None:
    text = format_scaled(units, scale)
    assert "e" not in text.lower()
    assert Decimal(text) == scaled_to_decimal(units, scale)
    if "." in text:
        assert not text.endswith("0")
        assert not text.endswith(".")


def test_to_decimal_uses_the_shortest_text_of_floats() -> None:
    assert to_decimal(0.1) == Decimal("0.1")
    assert to_decimal("2.50") == Decimal("2.50")
    assert to_decimal(3) == Decimal(3)
    with pytest.raises(ValueError, match="not a decimal"):
        to_decimal("abc")
