"""Immutable records of orders, fills, denials and risk events.

The records are named tuples: immutable like frozen dataclasses, but built several times faster
(the order path builds one or two per order) and read as fast. Build them positionally on hot
paths; ``_replace`` and ``_asdict`` are there for the rest.
"""

from __future__ import annotations

from typing import NamedTuple

from weltklassebot.model.enums import Liquidity, OrderStatus, OrderType, TimeInForce

_OPEN = OrderStatus.OPEN


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

    # Explicit positional constructors: the order path's records, without keyword handling.
    def with_fill(self, qty: int) -> Order:
        return Order(self.order_id, self.symbol, self.side, self.type, self.qty, self.limit,
                     self.stop, self.tif, self.ts_submitted_ns, self.active_from_ns,
                     self.filled + qty, self.status, self.triggered, self.reason,
                     self.ts_closed_ns, self.tag, self.reduce_only)

    def with_trigger(self) -> Order:
        return Order(self.order_id, self.symbol, self.side, self.type, self.qty, self.limit,
                     self.stop, self.tif, self.ts_submitted_ns, self.active_from_ns,
                     self.filled, self.status, True, self.reason, self.ts_closed_ns, self.tag,
                     self.reduce_only)

    def closed(self, status: OrderStatus, ts_ns: int, reason: str) -> Order:
        return Order(self.order_id, self.symbol, self.side, self.type, self.qty, self.limit,
                     self.stop, self.tif, self.ts_submitted_ns, self.active_from_ns,
                     self.filled, status, self.triggered, reason, ts_ns, self.tag,
                     self.reduce_only)


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
