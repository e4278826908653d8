"""Immutable records of orders, fills, denials and risk events.

The records are named tuples: immutable like frozen dataclasses, but built several times faster
(the order path builds one or two per order) and read as fast. Build them positionally on hot
paths; ``_replace`` and ``_asdict`` are there for the rest.
"""

from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple

from weltklassebot.model.enums import Liquidity, OrderStatus, OrderType, TimeInForce

_OPEN = OrderStatus.OPEN
_new = tuple.__new__


class Order(NamedTuple):
    """An order and its current state; every change yields a new record.

    ``active_from_ns`` is decision time plus latency: the order may fill only in bars that start
    at or after it. ``triggered`` is set when a stop or stop-limit triggers: from then on a stop
    is a market order and a stop-limit a limit order.
    """

    order_id: int
    symbol: str
    side: int
    type: OrderType
    qty: int
    limit: int | None
    stop: int | None
    tif: TimeInForce
    ts_submitted_ns: int
    active_from_ns: int
    filled: int = 0
    status: OrderStatus = OrderStatus.OPEN
    triggered: bool = False
    reason: str = ""
    ts_closed_ns: int | None = None
    tag: str = ""
    reduce_only: bool = False

    @property
    def remaining(self) -> int:
        return self.qty - self.filled

    @property
    def is_open(self) -> bool:
        return self.status is _OPEN

    # The order path's new states, built by unpacking the record and handing the new tuple to
    # tuple.__new__: no keyword handling, no per-field attribute lookups.
    def with_fill(self, qty: int) -> Order:
        (oid, sym, side, kind, total, lim, stp, tif, sub, act, filled, status, trig, reason,
         closed, tag, ro) = self
        return _new(Order, (oid, sym, side, kind, total, lim, stp, tif, sub, act, filled + qty,
                            status, trig, reason, closed, tag, ro))

    def with_trigger(self) -> Order:
        (oid, sym, side, kind, total, lim, stp, tif, sub, act, filled, status, _trig, reason,
         closed, tag, ro) = self
        return _new(Order, (oid, sym, side, kind, total, lim, stp, tif, sub, act, filled,
                            status, True, reason, closed, tag, ro))

    def closed(self, status: OrderStatus, ts_ns: int, reason: str) -> Order:
        (oid, sym, side, kind, total, lim, stp, tif, sub, act, filled, _status, trig, _reason,
         _closed, tag, ro) = self
        return _new(Order, (oid, sym, side, kind, total, lim, stp, tif, sub, act, filled,
                            status, trig, reason, ts_ns, tag, ro))


class Fill(NamedTuple):
    """One execution: ``ts_ns`` is the start of the bar it filled in; ``fee`` in money units."""

    fill_id: int
    order_id: int
    ts_ns: int
    symbol: str
    side: int
    price: int
    qty: int
    fee: int
    notional: int
    liquidity: Liquidity


class Denial(NamedTuple):
    """An order refused before reaching the venue, with its fixed reason label."""

    order_id: int
    ts_ns: int
    symbol: str
    side: int
    qty: int
    reason: str
    detail: str


class Trail(NamedTuple):
    """How a trailing stop follows the price: by a fixed ``distance`` (price ticks) or by a
    ``fraction`` of the price (exactly one is set). The stop moves only in the trade's favour
    (docs/fill-model.md, Trailing stops)."""

    distance: int | None = None
    fraction: Fraction | None = None

    def level(self, side: int, reference: int) -> int:
        """The stop this trail asks for at ``reference`` (ticks): below it for a sell stop,
        above it for a buy stop, rounded away from the price (never closer than asked)."""
        if self.distance is not None:
            return reference - self.distance if side < 0 else reference + self.distance
        assert self.fraction is not None
        if side < 0:
            return int(reference * (1 - self.fraction))  # floor: reference is positive
        scaled = reference * (1 + self.fraction)
        return -(-scaled.numerator // scaled.denominator)  # ceiling
