"""A small portfolio view for risk tests: whole-unit quantities, prices in cents, money in cents.

qty ticks = units (increment 1), price ticks = cents (increment 0.01), money_scale = 2, so the
notional of ``qty`` at ``price`` is exactly ``qty * price`` money units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from weltklassebot.risk import OrderProposal


@dataclass
class FakeView:
    positions: dict[str, int] = field(default_factory=dict)
    open_orders: dict[tuple[str, int], int] = field(default_factory=dict)
    prices: dict[str, int] = field(default_factory=dict)
    cash: int = 1_000_000
    money_scale: int = 2

    def symbols(self) -> tuple[str, ...]:
        return tuple(sorted({*self.positions, *self.prices}))

    def position(self, symbol: str) -> int:
        return self.positions.get(symbol, 0)

    def open_qty(self, symbol: str, side: int) -> int:
        return self.open_orders.get((symbol, side), 0)

    def last_price(self, symbol: str) -> int | None:
        return self.prices.get(symbol)

    def notional(self, symbol: str, qty: int, price: int) -> int:
        return abs(qty) * price

    def qty_ticks(self, symbol: str, qty: Decimal) -> int:
        assert qty == qty.to_integral_value(), qty
        return int(qty)

    def price_ticks(self, symbol: str, price: Decimal) -> int:
        return int(price * 100)

    def gross_exposure(self) -> int:
        return sum(abs(p) * self.prices.get(s, 0) for s, p in sorted(self.positions.items()))

    def equity(self) -> int:
        return self.cash + sum(p * self.prices.get(s, 0) for s, p in self.positions.items())

    def fill(self, symbol: str, side: int, qty: int) -> None:
        self.positions[symbol] = self.positions.get(symbol, 0) + side * qty


def proposal(
    side: int = 1,
    qty: int = 1,
    price: int = 10_000,
    ts_ns: int = 0,
    symbol: str = "BTC",
    order_id: int = 1,
    reduce_only: bool = False,
) -> OrderProposal:
    return OrderProposal(
        order_id=order_id, symbol=symbol, side=side, qty=qty, price=price, ts_ns=ts_ns,
        reduce_only=reduce_only,
    )
