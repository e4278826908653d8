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

Linked orders (docs/fill-model.md): two legs of one-cancels-other, where a fill of one takes
the same quantity from the other; brackets, whose exits rest once their entry fills, for what
it filled, as one-cancels-other; and trailing stops, whose stop follows the bar's favourable
extreme after every bar they are active in. Their links live in the symbol's book beside the
orders and are saved with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from weltklassebot.engine.costs import FeeModel, SlippageModel
from weltklassebot.engine.fill_model import fill_point, path_stage
from weltklassebot.model.enums import Liquidity, OrderStatus, OrderType, TimeInForce
from weltklassebot.model.instrument import Instrument
from weltklassebot.model.records import Fill, Order, Trail

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

    Links: ``oco`` maps each leg of a one-cancels-other pair to the other; ``brackets`` maps an
    entry to its bracket, ``exit_of`` a rested exit to its entry; ``trails`` a trailing stop
    to its trail (a trailing stop is hot: every bar may move it). ``linked`` is True while any
    link may exist, so unlinked books skip the link work.
    """

    __slots__ = ("brackets", "down", "exit_of", "hot", "last_id", "linked", "oco", "open_qty",
                 "orders", "reducing", "stale", "trails", "up")

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
        self.oco: dict[int, int] = {}
        self.brackets: dict[int, _Bracket] = {}
        self.exit_of: dict[int, int] = {}
        self.trails: dict[int, Trail] = {}
        self.linked = False
        self.reducing = 0  # at least the reduce-only orders resting (recounted when looked at)

    def add(self, order: Order) -> None:
        """Count a newly resting order in the bounds (or as hot)."""
        if (order.triggered or order.type is _MARKET or order.tif is _IOC
                or order.order_id in self.trails):
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
        self.linked = bool(self.oco or self.brackets or self.exit_of or self.trails)
        for order in self.orders.values():
            self.add(order)


class _Bracket:
    """An entry's exits: templates (the entry's quantity, not yet resting) until the entry's
    first fill rests them for what it filled; later fills of the entry grow them."""

    __slots__ = ("exits", "rested")

    def __init__(self, exits: list[Order]) -> None:
        self.exits = exits
        self.rested = False


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
        if order.reduce_only:
            book.reducing += 1
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

    def accept_oco(self, first: Order, second: Order) -> None:
        """Rest two orders of one side as one-cancels-other: a fill of either takes the same
        quantity from the other (which is cancelled, ``reason = oco``, when nothing is left)."""
        book = self._books[first.symbol]
        self.accept(first)
        self.accept(second)
        book.oco[first.order_id] = second.order_id
        book.oco[second.order_id] = first.order_id
        book.linked = True

    def accept_bracket(self, entry: Order, exits: list[Order], trail: Trail | None) -> None:
        """Rest ``entry``; ``exits`` (a take-profit limit and/or a stop-loss stop, opposite
        side, the entry's quantity) rest once it fills, for what it filled, as
        one-cancels-other. ``trail`` makes the stop-loss a trailing stop (a stop-loss without a
        stop price then starts at the trail's level from the entry's fill price)."""
        book = self._books[entry.symbol]
        self.accept(entry)
        book.brackets[entry.order_id] = _Bracket(list(exits))
        if trail is not None:
            for order in exits:
                if order.type is _STOP:
                    book.trails[order.order_id] = trail
        book.linked = True

    def accept_trailing(self, order: Order, trail: Trail) -> None:
        """Rest a stop whose stop follows the price by ``trail``, only in the trade's favour."""
        book = self._books[order.symbol]
        book.trails[order.order_id] = trail
        book.linked = True
        self.accept(order)
        book.reset()  # counted as hot from now on

    def reduce_to(self, symbol: str, position: int, ts_ns: int) -> None:
        """After a fill left ``symbol``'s position at ``position`` (qty ticks, signed): a
        resting reduce-only order never opens or grows a position. One on the position's side,
        or with the position flat, is cancelled (``reason = reduce_only``); one larger than the
        position is cut to it."""
        book = self._books[symbol]
        if not book.reducing:
            return
        orders = book.orders
        found = 0
        size = abs(position)
        for order_id, order in list(orders.items()):
            if not order.reduce_only:
                continue
            if position == 0 or (order.side > 0) == (position > 0):
                self.cancel(order_id, symbol, ts_ns, "reduce_only")
                continue
            found += 1
            if order.remaining > size:
                book.open_qty[order.side] -= order.remaining - size
                orders[order_id] = order._replace(qty=order.filled + size)
        book.reducing = found
        book.reset()  # hot orders may have left

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
        if book.linked:
            self._unlink(book, order, _CANCELLED, ts_ns, "entry_cancelled")
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
        # One-cancels-other legs both reached in this bar: only the one earlier on the path
        # may fill in it (the other gives up what that one fills).
        passed = self._oco_passed(state, ts_ns, bar_open, bar_high, bar_low) if state.oco else None
        # Orders submitted during this bar (from on_fill) are not in this snapshot: they become
        # eligible from the next bar. Orders cancelled from on_fill are skipped. An order's
        # record is read again before it is matched: a linked fill may have changed it.
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
            current = book.get(order_id)
            if current is None or current.active_from_ns > ts_ns:
                continue
            if passed is not None and order_id in passed:
                continue
            order = current
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
                done, stop_loss = self._book_fill(state, order, instrument, ts_ns, price, qty,
                                                  liquidity)
                if stop_loss is not None:
                    available = self._stop_loss_in_entry_bar(
                        state, stop_loss, instrument, ts_ns, price, bar_high, bar_low, available)
                if done or order_id not in book:
                    continue  # filled, or cancelled from on_fill
                order = book[order_id]
            if order.tif is _IOC:
                del book[order_id]
                self._close(order, _CANCELLED, ts_ns, "ioc_remainder")
        if state.trails:
            self._trail(state, ts_ns, bar_high, bar_low)
        state.reset()
        return changed

    def _book_fill(self, state: _Book, order: Order, instrument: Instrument, ts_ns: int,
                   price: int, qty: int, liquidity: Liquidity) -> tuple[bool, int | None]:
        """Fill ``qty`` of a resting order at ``price`` and tell ``on_fill``: whether the order
        is done, and the id of a bracket's stop-loss that rested with this fill."""
        fill, order = self._fill(order, instrument, ts_ns, price, qty, liquidity)
        # Book the order's new state before anyone hears of the fill: on_fill sees a filled
        # order as closed and a partly filled one with its true remainder (and its links').
        order_id = order.order_id
        done = order.remaining == 0
        if done:
            del state.orders[order_id]
            self._close(order, _FILLED, ts_ns, "")
        else:
            state.orders[order_id] = order
        stop_loss = self._linked_fill(state, order, fill, done, ts_ns) if state.linked else None
        self.on_fill(fill)
        return done, stop_loss

    # -- linked orders ---------------------------------------------------------------------
    def _oco_passed(self, state: _Book, ts_ns: int, bar_open: int, bar_high: int,
                    bar_low: int) -> set[int] | None:
        """The legs that must wait this bar: each pair's leg later on the bar's path (the
        higher id on a tie) when both would fill in it."""
        passed: set[int] | None = None
        book = state.orders
        for first_id, second_id in state.oco.items():
            if first_id > second_id:
                continue
            first = book.get(first_id)
            second = book.get(second_id)
            if (first is None or second is None or first.active_from_ns > ts_ns
                    or second.active_from_ns > ts_ns):
                continue
            stage_first = path_stage(first.type, first.side, first.limit, first.stop,
                                     first.triggered, bar_open, bar_high, bar_low)
            stage_second = path_stage(second.type, second.side, second.limit, second.stop,
                                      second.triggered, bar_open, bar_high, bar_low)
            if stage_first is None or stage_second is None:
                continue
            if passed is None:
                passed = set()
            passed.add(second_id if stage_first <= stage_second else first_id)
        return passed

    def _linked_fill(self, state: _Book, order: Order, fill: Fill, done: bool,
                     ts_ns: int) -> int | None:
        """What a fill of a linked order sets off; the id of a stop-loss that rested with this
        fill (it may still fill in this bar), else None."""
        order_id = order.order_id
        sibling = state.oco.get(order_id)
        if sibling is not None:
            self._take_from(state, sibling, fill.qty, ts_ns)
            if done:
                state.oco.pop(order_id, None)
        entry_id = state.exit_of.get(order_id)
        if entry_id is not None:
            if done:
                del state.exit_of[order_id]
            # An exit filled: the trade is closing, the entry's unfilled rest is not wanted.
            entry = state.orders.pop(entry_id, None)
            if entry is not None:
                self._close(entry, _CANCELLED, ts_ns, "bracket_exit")
                state.brackets.pop(entry_id, None)
        bracket = state.brackets.get(order_id)
        stop_loss = None
        if bracket is not None:
            stop_loss = self._rest_exits(state, order_id, bracket, fill, ts_ns)
            if done:
                del state.brackets[order_id]
        if done:
            state.trails.pop(order_id, None)
        return stop_loss

    def _take_from(self, state: _Book, order_id: int, qty: int, ts_ns: int) -> None:
        """A one-cancels-other leg gives up ``qty`` its sibling filled; cancelled (``oco``)
        when nothing is left."""
        order = state.orders.get(order_id)
        if order is None:
            return
        if order.remaining <= qty:
            del state.orders[order_id]
            self._close(order, _CANCELLED, ts_ns, "oco")  # unlinks it
            return
        state.orders[order_id] = order._replace(qty=order.qty - qty)
        state.open_qty[order.side] -= qty

    def _rest_exits(self, state: _Book, entry_id: int, bracket: _Bracket, fill: Fill,
                    ts_ns: int) -> int | None:
        """Rest (first fill) or grow (later fills) the exits of a bracket for ``fill.qty``;
        the stop-loss's id when it rested now."""
        book = state.orders
        if bracket.rested:
            for template in bracket.exits:
                order = book.get(template.order_id)
                if order is not None:
                    book[template.order_id] = order._replace(qty=order.qty + fill.qty)
                    state.open_qty[order.side] += fill.qty
            return None
        bracket.rested = True
        stop_loss = None
        for template in bracket.exits:
            exit_id = template.order_id
            stop = template.stop
            trail = state.trails.get(exit_id)
            if template.type is _STOP and stop is None:
                assert trail is not None
                stop = max(1, trail.level(template.side, fill.price))
            # Eligible from the next bar, as any order placed while a bar is matched; the
            # stop-loss alone may still fill in this one (_stop_loss_in_entry_bar).
            order = template._replace(qty=fill.qty, stop=stop, active_from_ns=max(
                template.active_from_ns, ts_ns + 1))
            self.accept(order)
            state.exit_of[exit_id] = entry_id
            if template.type is _STOP:
                stop_loss = exit_id
        if len(bracket.exits) == 2:
            first, second = (o.order_id for o in bracket.exits)
            state.oco[first] = second
            state.oco[second] = first
        return stop_loss  # the bar's matching recounts the bounds (trailing stops are hot)

    def _stop_loss_in_entry_bar(self, state: _Book, order_id: int, instrument: Instrument,
                                ts_ns: int, entry_price: int, bar_high: int, bar_low: int,
                                available: int | None) -> int | None:
        """The bar's path goes on after the entry filled at ``entry_price``: a stop-loss it
        reaches fills in this bar (pessimistic); a take-profit waits for the next bar."""
        order = state.orders.get(order_id)
        if order is None or (available is not None and available <= 0):
            return available
        price, liquidity, _ = fill_point(order.type, order.side, None, order.stop, False,
                                         entry_price, bar_high, bar_low)
        if price is None:
            return available
        qty = order.remaining if available is None else min(order.remaining, available)
        if available is not None:
            available -= qty
        self._book_fill(state, order.with_trigger(), instrument, ts_ns, price, qty, liquidity)
        return available

    def _trail(self, state: _Book, ts_ns: int, bar_high: int, bar_low: int) -> None:
        """Move each active trailing stop after the bar: a sell stop up toward the bar's high
        less the trail, a buy stop down toward its low plus the trail, never back."""
        book = state.orders
        for order_id, trail in state.trails.items():
            order = book.get(order_id)
            if order is None or order.triggered or order.active_from_ns > ts_ns:
                continue
            stop = order.stop
            assert stop is not None
            if order.side < 0:
                level = trail.level(-1, bar_high)
                if level > stop:
                    book[order_id] = order._replace(stop=level)
            else:
                level = trail.level(1, bar_low)
                if level < stop:
                    book[order_id] = order._replace(stop=level)

    def _unlink(self, state: _Book, order: Order, status: OrderStatus, ts_ns: int,
                reason: str) -> None:
        """An order closed without filling (cancelled, IOC remainder, expired): a bracket
        entry that never filled takes its exits with it; any other link is dropped."""
        order_id = order.order_id
        bracket = state.brackets.pop(order_id, None)
        if bracket is not None and not bracket.rested:
            for template in bracket.exits:
                self.closed.append(template.closed(status, ts_ns, reason))
                state.trails.pop(template.order_id, None)
        self._forget(state, order_id)

    def _forget(self, state: _Book, order_id: int) -> None:
        sibling = state.oco.pop(order_id, None)
        if sibling is not None:
            state.oco.pop(sibling, None)
        state.exit_of.pop(order_id, None)
        state.trails.pop(order_id, None)

    def _fill(self, order: Order, instrument: Instrument, ts_ns: int, price: int, qty: int,
              liquidity: Liquidity) -> tuple[Fill, Order]:
        side = order.side
        if liquidity is _TAKER:
            slipped = self.slippage.apply(price, side)
            if order.limit is not None and (order.type is _LIMIT or order.triggered):
                # Slippage never pushes a limit order past its limit.
                slipped = min(slipped, order.limit) if side > 0 else max(slipped, order.limit)
            price = slipped
        # Instrument.notional, inlined (its denominator is positive): one fill per order in
        # order-heavy runs.
        den = instrument.value_den
        notional, r = divmod(qty * price * instrument.value_num, den)
        twice = 2 * r
        if twice > den or (twice == den and notional & 1):
            notional += 1
        notional *= instrument.money.step
        fill = _new(Fill, (self._next_fill_id, order.order_id, ts_ns, order.symbol, side, price,
                           qty, self.fees.fee(notional, liquidity), notional, liquidity))
        self._next_fill_id += 1
        self._books[order.symbol].open_qty[side] -= qty
        return fill, order.with_fill(qty)

    def _close(self, order: Order, status: OrderStatus, ts_ns: int, reason: str) -> None:
        # Only from matching (whose end recounts the bounds) and expiry (which empties all).
        self.open_count -= 1
        state = self._books[order.symbol]
        state.open_qty[order.side] -= order.qty - order.filled
        self.closed.append(order.closed(status, ts_ns, reason))
        if state.linked and status is not _FILLED:
            self._unlink(state, order, status, ts_ns,
                         "entry_cancelled" if status is _CANCELLED else reason)

    def book_state(self) -> dict[str, Any]:
        """The resting orders (in id order, per symbol), the fill counter and the links, as
        records; the engine state record stores them as plain data."""
        books = [self._books[symbol] for symbol in sorted(self._books)]
        return {
            "orders": [order for book in books for order in book.orders.values()],
            "next_fill_id": self._next_fill_id,
            "links": {
                "oco": sorted([a, b] for book in books for a, b in book.oco.items() if a < b),
                "brackets": [[entry_id, bracket.rested, bracket.exits]
                             for book in books for entry_id, bracket in
                             sorted(book.brackets.items())],
                "exit_of": sorted([e, p] for book in books for e, p in book.exit_of.items()),
                "trails": sorted([order_id, trail] for book in books
                                 for order_id, trail in book.trails.items()),
            },
        }

    def load_book(self, orders: list[Order], next_fill_id: int,
                  links: dict[str, Any] | None = None) -> None:
        """Rest ``orders`` again (a resumed run), restore their ``links`` (as ``book_state``
        gives them) and continue fill ids at ``next_fill_id``."""
        if self.open_count:
            raise ValueError("the venue already holds orders")
        by_id = {order.order_id: order.symbol for order in orders}
        links = links or {}
        for entry_id, rested, exits in links.get("brackets", []):
            book = self._books[exits[0].symbol]
            bracket = _Bracket(list(exits))
            bracket.rested = rested
            book.brackets[entry_id] = bracket
            for template in exits:
                by_id.setdefault(template.order_id, template.symbol)
        for first, second in links.get("oco", []):
            book = self._books[by_id[first]]
            book.oco[first] = second
            book.oco[second] = first
        for exit_id, entry_id in links.get("exit_of", []):
            self._books[by_id[exit_id]].exit_of[exit_id] = entry_id
        for order_id, trail in links.get("trails", []):
            self._books[by_id[order_id]].trails[order_id] = trail
        for order in sorted(orders, key=lambda o: o.order_id):
            self.accept(order)
        for book in self._books.values():
            book.reset()
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
