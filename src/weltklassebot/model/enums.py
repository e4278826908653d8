"""Small closed vocabularies used across the core."""

from __future__ import annotations

from enum import StrEnum

BUY = 1
SELL = -1


def side_label(side: int) -> str:
    """``buy`` for +1, ``sell`` for -1 (the text used in outputs and the equity hash)."""
    return "buy" if side > 0 else "sell"


def parse_side(text: str) -> int:
    lowered = text.strip().lower()
    if lowered == "buy":
        return BUY
    if lowered == "sell":
        return SELL
    raise ValueError(f"side must be 'buy' or 'sell', not {text!r}")


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(StrEnum):
    GTC = "gtc"
    IOC = "ioc"


class OrderStatus(StrEnum):
    OPEN = "open"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"
