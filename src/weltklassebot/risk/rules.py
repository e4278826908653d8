"""Pre-trade checks: the order proposal, the decision and each rule.

Everything here is pure integer arithmetic. Quantities are qty ticks, prices price ticks, money
is money units (``10**-money_scale`` of the quote currency); the portfolio view
(:class:`weltklassebot.portfolio.view.PortfolioView`) converts.

Every limit rule compares with a strict ``>``: a value equal to its limit passes. Money limits
given in ``Decimal`` are floored to money units once; for an integer ``x``, ``x > floor(L)``
holds exactly when ``x > L``, so the conversion changes no decision.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from weltklassebot.risk.state import DenialReason

BPS = 10_000


@dataclass(frozen=True, slots=True)
class OrderProposal:
    """An order the strategy wants to place, before risk.

    ``price`` is the reference price in price ticks: the limit (or stop) price, or the last close
    for a market order. ``side`` is +1 (buy) or -1 (sell); ``qty`` is positive qty ticks.
    """

    order_id: int
    symbol: str
    side: int
    qty: int
    price: int
    ts_ns: int
    reduce_only: bool = False

    def __post_init__(self) -> None:
        if self.side not in (1, -1):
            raise ValueError(f"order {self.order_id}: side must be +1 or -1, got {self.side!r}")
        if self.qty <= 0:
            raise ValueError(f"order {self.order_id}: qty must be positive, got {self.qty!r}")


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """The verdict on one proposal.

    ``allowed_qty == qty``: passed untouched (``reason`` is ``None``). ``0 < allowed_qty < qty``:
    clipped to its position-reducing part (``reason`` is ``cooldown``, ``halted`` or
    ``reduce_only``). ``allowed_qty == 0``: denied, ``reason`` says why.
    """

    allowed_qty: int
    reason: DenialReason | None
    detail: str

    @property
    def denied(self) -> bool:
        return self.allowed_qty == 0

    @property
    def passed(self) -> bool:
        return self.allowed_qty > 0


@dataclass(frozen=True, slots=True)
class Exposure:
    """How an order of ``side``/``qty`` splits into a reducing and an increasing part.

    ``before`` is position + same-side open orders (signed); the reducing part is what brings
    ``|before|`` toward zero without crossing it; the rest is risk-increasing.
    """

    position: int
    before: int
    reducing: int
    increasing: int

    def after(self, side: int, qty: int) -> int:
        return self.before + side * qty


def split_exposure(side: int, qty: int, position: int, open_same_side: int) -> Exposure:
    """Split an order into its reducing and risk-increasing parts (DESIGN section 8)."""
    before = position + side * open_same_side
    reducing = min(qty, max(0, -side * before))
    return Exposure(position=position, before=before, reducing=reducing, increasing=qty - reducing)


def money_units(value: Decimal, money_scale: int) -> int:
    """A money limit in money units, floored (exact for strict ``>`` comparisons)."""
    scaled: Fraction = Fraction(value) * 10**money_scale
    return math.floor(scaled)


# --- single rules: each returns None when the order passes, else the denial ---------------------


def rule_max_order_qty(qty: int, limit: int | None) -> RiskDecision | None:
    if limit is not None and qty > limit:
        return RiskDecision(0, DenialReason.max_order_qty, f"qty {qty} ticks > limit {limit} ticks")
    return None


def rule_max_order_notional(notional: int, limit: int | None) -> RiskDecision | None:
    if limit is not None and notional > limit:
        return RiskDecision(
            0, DenialReason.max_order_notional,
            f"order notional {notional} > limit {limit} money units",
        )
    return None


def rule_price_band(price: int, last: int | None, band_bps: Fraction | None) -> RiskDecision | None:
    """Deny when ``|price - last| x 10000 > band_bps x last`` (exact); no last price: pass."""
    if band_bps is None or last is None:
        return None
    distance = abs(price - last)
    if distance * BPS * band_bps.denominator > band_bps.numerator * last:
        away = f"{float(Fraction(distance * BPS, last)):.2f} bps" if last > 0 else "away"
        return RiskDecision(
            0, DenialReason.price_band,
            f"price {price} ticks is {away} from last price {last} ticks; "
            f"band {float(band_bps):g} bps",
        )
    return None


def rule_max_position(after: int, limit: int | None) -> RiskDecision | None:
    if limit is not None and abs(after) > limit:
        return RiskDecision(
            0, DenialReason.max_position,
            f"|position + open orders| would be {abs(after)} ticks > limit {limit} ticks",
        )
    return None


def rule_max_gross_notional(projected: int, limit: int | None) -> RiskDecision | None:
    if limit is not None and projected > limit:
        return RiskDecision(
            0, DenialReason.max_gross_notional,
            f"gross exposure would be {projected} > limit {limit} money units",
        )
    return None


class RateWindow:
    """Sliding window ``(now - width, now]`` of accepted submission times, bounded by ``limit``.

    Only the last ``limit`` accepted times are kept: the window is full exactly when the
    ``limit``-th most recent one is still inside it.
    """

    __slots__ = ("_times", "limit", "width_ns")

    def __init__(self, limit: int, width_ns: int, times: Iterable[int] = ()) -> None:
        self.limit = limit
        self.width_ns = width_ns
        self._times: deque[int] = deque(times, maxlen=limit)

    def full(self, now_ns: int) -> bool:
        return len(self._times) >= self.limit and self._times[0] > now_ns - self.width_ns

    def record(self, now_ns: int) -> None:
        self._times.append(now_ns)

    def times(self) -> list[int]:
        return list(self._times)
