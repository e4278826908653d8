"""Instruments and the exact conversion between human numbers, ticks and money units."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from weltklassebot.core.decimal import decimal_scale, div_round_half_even, format_scaled

DEFAULT_INCREMENT = Decimal("0.00000001")


@dataclass(frozen=True, slots=True)
class MoneySpec:
    """The quote currency's cash increment: money is an int count of ``10**-scale`` units.

    ``step`` is the increment in those units (1 for powers of ten, 25 for 0.25).
    """

    currency: str
    increment: Decimal
    scale: int = field(init=False)
    step: int = field(init=False)

    def __post_init__(self) -> None:
        scale = decimal_scale(self.increment)
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "step", int(self.increment.scaleb(scale)))

    def units(self, amount: Decimal) -> int:
        """Human amount -> money units, rounded half-even to the cash increment."""
        exact = Fraction(amount) / Fraction(self.increment)
        return div_round_half_even(exact.numerator, exact.denominator) * self.step

    def text(self, units: int) -> str:
        return format_scaled(units, self.scale)

    def decimal(self, units: int) -> Decimal:
        return Decimal(units).scaleb(-self.scale)


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable symbol: its price and quantity increments relative to a ``MoneySpec``.

    ``notional_ratio`` is money units per (price tick x qty tick), exact; the value of ``q``
    ticks at price ``p`` ticks is ``round_half_even(q * p * num / (den * step)) * step``.
    """

    symbol: str
    price_increment: Decimal
    quantity_increment: Decimal
    money: MoneySpec
    price_scale: int = field(init=False)
    qty_scale: int = field(init=False)
    notional_ratio: Fraction = field(init=False)
    value_num: int = field(init=False)
    value_den: int = field(init=False)
    price_step: int = field(init=False)
    qty_step: int = field(init=False)

    def __post_init__(self) -> None:
        money_unit = Fraction(1, 10**self.money.scale)
        ratio = Fraction(self.price_increment) * Fraction(self.quantity_increment) / money_unit
        object.__setattr__(self, "price_scale", decimal_scale(self.price_increment))
        object.__setattr__(self, "qty_scale", decimal_scale(self.quantity_increment))
        object.__setattr__(self, "notional_ratio", ratio)
        object.__setattr__(self, "value_num", ratio.numerator)
        object.__setattr__(self, "value_den", ratio.denominator * self.money.step)
        # The increments in units of 10**-scale (1 for powers of ten, 25 for 0.25).
        object.__setattr__(self, "price_step", int(self.price_increment.scaleb(self.price_scale)))
        object.__setattr__(self, "qty_step",
                           int(self.quantity_increment.scaleb(self.qty_scale)))

    def notional(self, qty: int, price: int) -> int:
        """``qty`` ticks at ``price`` ticks, in money units, half-even to the cash increment."""
        return div_round_half_even(qty * price * self.value_num, self.value_den) * self.money.step

    def price_ticks(self, price: Decimal | int | float | str) -> int:
        """Human price -> ticks, half-even (raises if not finite)."""
        value = Fraction(Decimal(repr(price)) if isinstance(price, float) else Decimal(price))
        exact = value / Fraction(self.price_increment)
        return div_round_half_even(exact.numerator, exact.denominator)

    def qty_ticks(self, qty: Decimal | int | float | str) -> int:
        value = Fraction(Decimal(repr(qty)) if isinstance(qty, float) else Decimal(qty))
        exact = value / Fraction(self.quantity_increment)
        return div_round_half_even(exact.numerator, exact.denominator)

    def price_decimal(self, ticks: int) -> Decimal:
        return Decimal(ticks) * self.price_increment

    def qty_decimal(self, ticks: int) -> Decimal:
        return Decimal(ticks) * self.quantity_increment

    def price_text(self, ticks: int) -> str:
        return format_scaled(ticks * self.price_step, self.price_scale)

    def qty_text(self, ticks: int) -> str:
        return format_scaled(ticks * self.qty_step, self.qty_scale)

