"""The simulated venue: holds open orders per symbol and fills them bar by bar.

Orders are processed in order-id order within a bar, so the outcome never depends on dict or
set iteration. Quantities: without a volume cap an order fills whole; with a cap, the bar's
``floor(volume * participation)`` is shared by the orders in id order and the rest waits
(GTC) or is cancelled (IOC). A zero-volume bar fills nothing when a cap is set.

Each symbol's book is a dict kept in order-id order (orders arrive with rising ids; one that
does not re-sorts the book), and the open quantity of each side is kept up to date as orders
rest, fill and close, so neither matching nor the buying-power check sorts or sums the book.
The book also knows how far a bar must reach to touch any of its resting stops and limits: a
bar that stays inside is done without looking at a single order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from weltklassebot.engine.costs import FeeModel, SlippageModel
from weltklassebot.engine.fill_model import fill_point
from weltklassebot.model.enums import Liquidity, OrderStatus, OrderType, TimeInForce
from weltklassebot.model.instrument import Instrument
from weltklassebot.model.records import Fill, Order

_LIMIT = OrderType.LIMIT
_MARKET = OrderType.MARKET
_STOP = OrderType.STOP
_IOC = TimeInForce.IOC
_TAKER = Liquidity.TAKER
_CANCELLED = OrderStatus.CANCELLED
_FILLED = OrderStatus.FILLED
_INF = float("inf")
_new = tuple.__new__


class _Book:
    """One symbol's open orders (by id, in id order) and what is kept about them.

    ``up`` is at or below the lowest price an upward path must reach to trigger or fill a
    resting order (buy stops and stop-limits by their stop, sell limits by their limit), and
    ``down`` at or above the highest a downward path must reach (sell stops, buy limits).
    ``hot`` counts the orders a bar must always look at: market, triggered and IOC orders.
    The bounds are exact after every bar that looked at the orders; an order leaving between
    bars only makes them cautious (a bar may then look at orders it cannot reach, never the
    reverse).
    """

    __slots__ = ("down", "hot", "last_id", "open_qty", "orders", "stale", "up")

    def __init__(self) -> None:
        self.orders: dict[int, Order] = {}
        # Remaining quantity of the open orders, indexed by side: [unused, buy, sell]
        # (side +1 is index 1, side -1 index -1).
        self.open_qty = [0, 0, 0]
        self.last_id = 0
        self.up: float = _INF
        self.down: float = -_INF
        self.hot = 0
        self.stale = False  # an order left since the bounds were counted (they are cautious)

    def add(self, order: Order) -> None:
        """Count a newly resting order in the bounds (or as hot)."""
        if order.triggered or order.type is _MARKET or order.tif is _IOC:
            self.hot += 1
        elif order.type is _LIMIT:
            level = order.limit
            assert level is not None
            if order.side > 0:
                if level > self.down:
                    self.down = level
            elif level < self.up:
                self.up = level
        else:
            level = order.stop
            assert level is not None
            if order.side > 0:
                if level < self.up:
                    self.up = level
            elif level > self.down:
                self.down = level

    def reset(self) -> None:
        """Recount from the orders resting now (the bounds exact again)."""
        self.up = _INF
        self.down = -_INF
        self.hot = 0
        self.stale = False
        for order in self.orders.values():
            self.add(order)


class SimulatedVenue:
    """Matching against bars; emits ``Fill`` records through ``on_fill``."""

    __slots__ = ("_books", "_next_fill_id", "closed", "fees", "instruments", "on_fill",
                 "open_count", "slippage")

    def __init__(
        self,
        instruments: dict[str, Instrument],
        fees: FeeModel,
        slippage: SlippageModel,
        on_fill: Callable[[Fill], None],
    ) -> None:
        self.instruments = instruments
        self.fees = fees
        self.slippage = slippage
        self.on_fill = on_fill
        self._books: dict[str, _Book] = {s: _Book() for s in sorted(instruments)}
        self._next_fill_id = 1
        self.open_count = 0
        self.closed: list[Order] = []

    # -- order entry -----------------------------------------------------------------------
    def accept(self, order: Order) -> None:
        book = self._books[order.symbol]
        orders = book.orders
        order_id = order.order_id
        orders[order_id] = order
        if order_id < book.last_id:
            ordered = sorted(orders.items())  # in place: a matching loop may hold this dict
            orders.clear()
            orders.update(ordered)
        else:
            book.last_id = order_id
        side = order.side
        book.open_qty[side] += order.qty - order.filled
        self.open_count += 1
        # _Book.add, inlined for the common resting stop: strategies submit about once a bar.
        if order.type is _STOP and not order.triggered and order.tif is not _IOC:
            level = order.stop
            assert level is not None
            if side > 0:
                if level < book.up:
                    book.up = level
            elif level > book.down:
                book.down = level
        else:
            book.add(order)

    def record_closed(self, order: Order) -> None:
        """Keep a final record of an order that never rested (rejected / denied)."""
        self.closed.append(order)

    def take_closed(self) -> list[Order]:
        """The orders closed since the last call, in the order they closed."""
        closed, self.closed = self.closed, []
        return closed

    def pending_closed(self) -> list[Order]:
        """The orders closed and not yet taken (saved with the engine state)."""
        return list(self.closed)

    def restore_closed(self, orders: list[Order]) -> None:
        self.closed = list(orders)

    def cancel(self, order_id: int, symbol: str, ts_ns: int, reason: str) -> bool:
        book = self._books[symbol]
        order = book.orders.pop(order_id, None)
        if order is None:
            return False
        # _close, inlined: strategies cancel about as often as they submit. The bounds may
        # stay where the order was (cautious); a hot order is no longer counted.
        self.open_count -= 1
        book.open_qty[order.side] -= order.qty - order.filled
        if order.triggered or order.type is _MARKET or order.tif is _IOC:
            book.hot -= 1
        else:
            book.stale = True
        # Order.closed, inlined.
        (oid, sym, side, kind, total, lim, stp, tif, sub, act, filled, _status, trig, _reason,
         _closed, tag, ro) = order
        self.closed.append(_new(Order, (oid, sym, side, kind, total, lim, stp, tif, sub, act,
                                        filled, _CANCELLED, trig, reason, ts_ns, tag, ro)))
        return True

    def open_orders(self, symbol: str) -> list[Order]:
        return list(self._books[symbol].orders.values())

    def has_open(self, symbol: str) -> bool:
        return bool(self._books[symbol].orders)

    def open_qty(self, symbol: str, side: int) -> int:
        return self._books[symbol].open_qty[side]

    def reach(self, symbol: str) -> tuple[float, float] | None:
        """How far a bar must reach to touch a resting order of ``symbol``: a bar whose open,
        high and low all stay strictly between ``(down, up)`` changes no order. None when an
        order must be looked at whatever the bar (market, triggered, IOC)."""
        book = self._books[symbol]
        if book.stale:
            book.reset()  # exact again after cancels
        if book.hot:
            return None
        return book.up, book.down

    def next_fill_id(self) -> int:
        return self._next_fill_id

    def set_next_fill_id(self, value: int) -> None:
        self._next_fill_id = value

    # -- matching --------------------------------------------------------------------------
    def process_bar(
        self,
        symbol: str,
        ts_ns: int,
        bar_open: int,
        bar_high: int,
        bar_low: int,
        volume_cap: int | None,
    ) -> bool:
        """Match every eligible open order of ``symbol`` against this bar; True when an order
        filled, triggered or closed.

        ``volume_cap`` is the quantity (ticks) the bar can fill in all, or ``None`` for no cap.
        """
        state = self._books[symbol]
        book = state.orders
        if not book:
            return False
        # How far the bar's path reaches up and down (the open counts too, whatever the data).
        up = bar_high if bar_high > bar_open else bar_open
        down = bar_low if bar_low < bar_open else bar_open
        if not state.hot and up < state.up and down > state.down:
            return False  # no resting order is reached: nothing triggers, fills or is cancelled
        changed = False
        available = volume_cap
        instrument: Instrument | None = None
        # Orders submitted during this bar (from on_fill) are not in this snapshot: they become
        # eligible from the next bar. Orders cancelled from on_fill are skipped. Only the order
        # being matched changes while it is matched, so the snapshot's records are current.
        for order in list(book.values()):
            if not order.triggered:
                # A resting stop or stop-limit whose stop the bar's path does not reach from
                # the far side, or a limit whose limit it does not reach, neither triggers nor
                # fills: exactly the bars where fill_point finds nothing, decided without it.
                # A GTC one has nothing to do: it is passed over before anything else.
                kind = order.type
                if kind is _LIMIT:
                    level = order.limit
                    assert level is not None
                    reached = down <= level if order.side > 0 else up >= level
                elif kind is _MARKET:
                    reached = True
                else:
                    level = order.stop
                    assert level is not None
                    reached = up >= level if order.side > 0 else down <= level
                if not reached and order.tif is not _IOC:
                    continue
            else:
                reached = True
            order_id = order.order_id
            if order_id not in book or order.active_from_ns > ts_ns:
                continue
            changed = True
            if not reached:  # only an IOC order has something left to do
                del book[order_id]
                self._close(order, _CANCELLED, ts_ns, "ioc_remainder")
                continue
            price, liquidity, triggered = fill_point(
                order.type, order.side, order.limit, order.stop, order.triggered,
                bar_open, bar_high, bar_low,
            )
            if triggered and not order.triggered:
                # A triggered stop stays a market order, a stop-limit a limit, for any remainder.
                order = order.with_trigger()
                book[order_id] = order
            if price is not None and (available is None or available > 0):
                qty = order.remaining if available is None else min(order.remaining, available)
                if available is not None:
                    available -= qty
                if instrument is None:
                    instrument = self.instruments[symbol]
                fill, order = self._fill(order, instrument, ts_ns, price, qty, liquidity)
                # Book the order's new state before anyone hears of the fill: on_fill sees a
                # filled order as closed and a partly filled one with its true remainder.
                if order.remaining == 0:
                    del book[order_id]
                    self._close(order, _FILLED, ts_ns, "")
                    self.on_fill(fill)
                    continue
                book[order_id] = order
                self.on_fill(fill)
                if order_id not in book:
                    continue  # cancelled from on_fill
                order = book[order_id]
            if order.tif is _IOC:
                del book[order_id]
                self._close(order, _CANCELLED, ts_ns, "ioc_remainder")
        state.reset()
        return changed

    def _fill(self, order: Order, instrument: Instrument, ts_ns: int, price: int, qty: int,
              liquidity: Liquidity) -> tuple[Fill, Order]:
        side = order.side
        if liquidity is _TAKER:
            slipped = self.slippage.apply(price, side)
            if order.limit is not None and (order.type is _LIMIT or order.triggered):
                # Slippage never pushes a limit order past its limit.
                slipped = min(slipped, order.limit) if side > 0 else max(slipped, order.limit)
            price = slipped
        notional = instrument.notional(qty, price)
        fill = Fill(self._next_fill_id, order.order_id, ts_ns, order.symbol, side, price, qty,
                    self.fees.fee(notional, liquidity), notional, liquidity)
        self._next_fill_id += 1
        self._books[order.symbol].open_qty[side] -= qty
        return fill, order.with_fill(qty)

    def _close(self, order: Order, status: OrderStatus, ts_ns: int, reason: str) -> None:
        # Only from matching (whose end recounts the bounds) and expiry (which empties all).
        self.open_count -= 1
        self._books[order.symbol].open_qty[order.side] -= order.qty - order.filled
        self.closed.append(order.closed(status, ts_ns, reason))

    def book_state(self) -> dict[str, Any]:
        """The resting orders (in id order, per symbol) and the fill counter, as records; the
        engine state record stores them as plain data."""
        return {"orders": [order for symbol in sorted(self._books)
                           for order in self._books[symbol].orders.values()],
                "next_fill_id": self._next_fill_id}

    def load_book(self, orders: list[Order], next_fill_id: int) -> None:
        """Rest ``orders`` again (a resumed run) and continue fill ids at ``next_fill_id``."""
        if self.open_count:
            raise ValueError("the venue already holds orders")
        for order in sorted(orders, key=lambda o: o.order_id):
            self.accept(order)
        self._next_fill_id = next_fill_id

    def expire_all(self, ts_ns: int) -> None:
        """End of data: every open order expires unfilled (nothing is liquidated)."""
        for symbol in sorted(self._books):
            state = self._books[symbol]
            book = state.orders
            for order_id in sorted(book):
                self._close(book[order_id], OrderStatus.EXPIRED, ts_ns, "end_of_data")
            book.clear()
            state.reset()
