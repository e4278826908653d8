"""Exact decimal helpers: increments, scaled integers, half-even division, canonical text.

Money and quantities are Python ``int`` counts of a power-of-ten unit (``scale`` decimal places);
``format_scaled`` renders one in the canonical form used by the equity hash: plain notation, no
exponent, no trailing zeros, ``0`` for zero, a leading ``-`` for negatives.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from fractions import Fraction


def to_decimal(value: str | int | float | Decimal) -> Decimal:
    """Convert a config value to ``Decimal`` via its shortest text, never via binary expansion."""
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"not a decimal number: {value!r}") from exc


def decimal_scale(value: Decimal) -> int:
    """Number of decimal places needed to write ``value`` exactly (0 for whole numbers)."""
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def scaled_int(value: Decimal, scale: int) -> int:
    """``value * 10**scale`` as an exact int; raises if ``value`` has more places than ``scale``."""
    scaled = value.scaleb(scale)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value} has more than {scale} decimal places")
    return int(scaled)


def div_round_half_even(numerator: int, denominator: int) -> int:
    """Integer division rounded half to even (banker's rounding), exact for any sign."""
    if denominator == 0:
        raise ZeroDivisionError("division by zero")
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def div_ceil(numerator: int, denominator: int) -> int:
    """Ceiling of ``numerator / denominator`` for a positive denominator."""
    return -((-numerator) // denominator)


def fraction_of(value: Decimal) -> Fraction:
    """Exact ``Fraction`` of a ``Decimal``."""
    return Fraction(value)


def format_scaled(units: int, scale: int) -> str:
    """Render ``units * 10**-scale`` canonically: plain notation, no trailing zeros."""
    if scale <= 0:
        return str(units * 10 ** (-scale))
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**scale)
    if frac == 0:
        return f"{sign}{whole}"
    digits = str(frac).rjust(scale, "0").rstrip("0")
    return f"{sign}{whole}.{digits}"


def scaled_to_decimal(units: int, scale: int) -> Decimal:
    """``units * 10**-scale`` as an exact ``Decimal``."""
    return Decimal(units).scaleb(-scale)
