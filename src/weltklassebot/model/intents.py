"""Order intents: orders a component other than the strategy asks the engine to place.

Risk decides *that* positions must be closed (flatten on halt); the engine decides *how* an
order is placed (ids, clock, buying power, latency, venue). An intent is the plain record that
crosses between the two, so risk never calls into the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from weltklassebot.model.enums import OrderType, TimeInForce


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """Place this order now, on the event clock. ``qty`` is positive qty ticks."""

    symbol: str
    side: int
    qty: int
    order_type: OrderType = OrderType.MARKET
    limit: int | None = None
    stop: int | None = None
    tif: TimeInForce = TimeInForce.GTC
    tag: str = ""
    reduce_only: bool = False
