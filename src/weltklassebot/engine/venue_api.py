"""The venue seam: what the engine asks of the venue between execution and the outside.

The engine accepts and cancels orders, hands the venue each market event (a bar) and receives
fills through the ``on_fill`` callback it passes in; it reads open orders and quantities for
buying power and strategies, and takes the orders that closed. It never touches a venue's
internals. ``SimulatedVenue`` (engine/venue.py) implements this today; an adapter to an outside
venue implements the same protocol (its client order ids: ``BacktestEngine.client_order_id``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from weltklassebot.engine.costs import FeeModel, SlippageModel
from weltklassebot.model.instrument import Instrument
from weltklassebot.model.records import Fill, Order, Trail


class Venue(Protocol):
    """Order entry, market events in, fills out."""

    open_count: int
    """Orders resting at the venue (the per-bar loop skips matching when it is 0)."""

    def accept(self, order: Order) -> None: ...

    def accept_oco(self, first: Order, second: Order) -> None:
        """Rest two orders as one-cancels-other (docs/fill-model.md)."""
        ...

    def accept_bracket(self, entry: Order, exits: list[Order], trail: Trail | None) -> None:
        """Rest an entry whose exits rest once it fills, for what it filled."""
        ...

    def accept_trailing(self, order: Order, trail: Trail) -> None:
        """Rest a stop that trails the price."""
        ...

    def cancel(self, order_id: int, symbol: str, ts_ns: int, reason: str) -> bool: ...

    def process_bar(self, symbol: str, ts_ns: int, bar_open: int, bar_high: int,
                    bar_low: int, volume_cap: int | None) -> bool | None:
        """Match the symbol's orders against a bar; False when no order filled, triggered or
        closed (the strategy need not be woken), True or None otherwise."""
        ...

    def reduce_to(self, symbol: str, position: int, ts_ns: int) -> None:
        """After a fill: resting reduce-only orders of ``symbol`` that would now open or grow
        the position are cancelled, larger ones cut to it."""
        ...

    def expire_all(self, ts_ns: int) -> None: ...

    def open_orders(self, symbol: str) -> list[Order]: ...

    def has_open(self, symbol: str) -> bool: ...

    def open_qty(self, symbol: str, side: int) -> int: ...

    def record_closed(self, order: Order) -> None: ...

    def take_closed(self) -> list[Order]: ...

    def pending_closed(self) -> list[Order]: ...

    def restore_closed(self, orders: list[Order]) -> None: ...

    def book_state(self) -> dict[str, Any]: ...

    def load_book(self, orders: list[Order], next_fill_id: int,
                  links: dict[str, Any] | None = None) -> None: ...


VenueFactory = Callable[
    [dict[str, Instrument], FeeModel, SlippageModel, Callable[[Fill], None]], Venue]
"""Builds the venue of a run: instruments, fees, slippage and the engine's fill callback."""
