"""Fee, slippage and latency models (DESIGN section 2: exact, seeded, written-down rounding).

* Fees: ``notional * bps / 10_000`` rounded half-even to the cash increment; a positive fee is
  at least ``min_fee``; a negative maker fee is a rebate (no minimum applies to rebates).
* Slippage: moves the price against the trader by ``bps`` and rounds to the tick against the
  trader (buys up, sells down); applied to taker fills only, never past a limit price.
* Latency: ``delay + U{0..jitter}`` nanoseconds per order from the ``latency`` stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from weltklassebot.core.decimal import div_ceil
from weltklassebot.core.rng import RandomStream
from weltklassebot.model.enums import Liquidity

_BPS = 10_000
_MAKER = Liquidity.MAKER
_ZERO = Fraction(0)


class FeeModel:
    """Maker and taker fees in bps of notional, exact, half-even to the cash increment."""

    __slots__ = ("_maker", "_taker", "cash_step", "maker_bps", "min_fee_units", "taker_bps")

    def __init__(self, maker_bps: Decimal, taker_bps: Decimal, min_fee_units: int,
                 cash_step: int) -> None:
        self.maker_bps = maker_bps
        self.taker_bps = taker_bps
        self.min_fee_units = min_fee_units
        self.cash_step = cash_step
        # fee = round_half_even(|notional| * num / den) * step, with num/den = bps / 10000 / step
        maker = Fraction(maker_bps) / _BPS / cash_step
        taker = Fraction(taker_bps) / _BPS / cash_step
        self._maker = (maker.numerator, maker.denominator)
        self._taker = (taker.numerator, taker.denominator)

    def fee(self, notional: int, liquidity: Liquidity) -> int:
        num, den = self._maker if liquidity is _MAKER else self._taker
        # div_round_half_even, inlined (den > 0): one fee per fill.
        fee, r = divmod((notional if notional >= 0 else -notional) * num, den)
        twice = 2 * r
        if twice > den or (twice == den and fee & 1):
            fee += 1
        fee *= self.cash_step
        if 0 < fee < self.min_fee_units:
            return self.min_fee_units
        return fee


class SlippageModel:
    """No slippage; base class of the others."""

    name = "none"

    def bps(self) -> Fraction:
        return _ZERO

    def apply(self, price: int, side: int) -> int:
        bps = self.bps()
        if not bps:
            return price
        if side > 0:
            scaled = Fraction(price) * (_BPS + bps) / _BPS
            return div_ceil(scaled.numerator, scaled.denominator)
        scaled = Fraction(price) * (_BPS - bps) / _BPS
        return scaled.numerator // scaled.denominator


class FixedSlippage(SlippageModel):
    name = "fixed"

    def __init__(self, bps: Decimal | Fraction) -> None:
        self._bps = Fraction(bps)

    def bps(self) -> Fraction:
        return self._bps


class StochasticSlippage(SlippageModel):
    """Uniform in [0, max_bps] at a resolution of 1/1000 bp, from the ``slippage`` stream."""

    name = "stochastic"

    def __init__(self, max_bps: Decimal | Fraction, stream: RandomStream) -> None:
        self._max_milli = int(Fraction(max_bps) * 1000)
        self._stream = stream

    def bps(self) -> Fraction:
        return Fraction(self._stream.below(self._max_milli + 1), 1000)


@dataclass(slots=True)
class LatencyModel:
    delay_ns: int
    jitter_ns: int
    stream: RandomStream | None

    def draw(self) -> int:
        if self.jitter_ns <= 0 or self.stream is None:
            return self.delay_ns
        return self.delay_ns + self.stream.below(self.jitter_ns + 1)
