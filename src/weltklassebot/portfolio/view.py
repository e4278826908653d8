"""The read-only portfolio view: what risk (and anything else outside accounting) may ask.

Risk reads the portfolio through :class:`PortfolioView` and never holds the ledger, the venue
or the engine: the engine hands a view in with each call, so the same risk code runs against a
backtest, the live service or a test's fake.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from weltklassebot.portfolio.ledger import Ledger, Position


class PortfolioView(Protocol):
    """Positions, open quantities, prices and money of one portfolio, read-only.

    Quantities are qty ticks, prices price ticks, money is money units (``10**-money_scale``
    of the quote currency).
    """

    money_scale: int

    def symbols(self) -> tuple[str, ...]:
        """Every symbol the portfolio trades, sorted."""
        ...

    def position(self, symbol: str) -> int:
        """Signed position, qty ticks."""
        ...

    def open_qty(self, symbol: str, side: int) -> int:
        """Remaining qty ticks of open orders on ``side`` (+1 buy, -1 sell); never negative."""
        ...

    def last_price(self, symbol: str) -> int | None:
        """Last close, price ticks; ``None`` before the first bar."""
        ...

    def notional(self, symbol: str, qty: int, price: int) -> int:
        """``|qty| x price`` in money units, exact."""
        ...

    def qty_ticks(self, symbol: str, qty: Decimal) -> int:
        """Human quantity to qty ticks (for config limits)."""
        ...

    def price_ticks(self, symbol: str, price: Decimal) -> int:
        """Human price to price ticks."""
        ...

    def gross_exposure(self) -> int:
        """Sum over symbols of ``|position| x last price``, money units."""
        ...

    def equity(self) -> int:
        """Equity, money units."""
        ...


class OpenOrders(Protocol):
    """Where open order quantities come from (the venue, in the engine)."""

    def open_qty(self, symbol: str, side: int) -> int: ...


class LedgerView:
    """A :class:`PortfolioView` over a :class:`Ledger` and the open orders; it only reads."""

    __slots__ = ("_ledger", "_open", "_positions", "_symbols", "money_scale")

    def __init__(self, ledger: Ledger, open_orders: OpenOrders, money_scale: int) -> None:
        self._ledger = ledger
        self._positions: dict[str, Position] = ledger.positions
        self._open = open_orders
        self._symbols = tuple(sorted(ledger.positions))
        self.money_scale = money_scale

    def symbols(self) -> tuple[str, ...]:
        return self._symbols

    def position(self, symbol: str) -> int:
        return self._positions[symbol].qty

    def open_qty(self, symbol: str, side: int) -> int:
        return self._open.open_qty(symbol, side)

    def last_price(self, symbol: str) -> int | None:
        return self._positions[symbol].last_price

    def notional(self, symbol: str, qty: int, price: int) -> int:
        return self._positions[symbol].instrument.notional(abs(qty), price)

    def qty_ticks(self, symbol: str, qty: Decimal) -> int:
        return self._positions[symbol].instrument.qty_ticks(qty)

    def price_ticks(self, symbol: str, price: Decimal) -> int:
        return self._positions[symbol].instrument.price_ticks(price)

    def gross_exposure(self) -> int:
        return self._ledger.gross_exposure()

    def equity(self) -> int:
        return self._ledger.equity()
