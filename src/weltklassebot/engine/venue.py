"""The simulated venue: holds open orders per symbol and fills them bar by bar.

Orders are processed in order-id order within a bar, so the outcome never depends on dict or
set iteration. Quantities: without a volume cap an order fills whole; with a cap, the bar's
``floor(volume * participation)`` is shared by the orders in id order and the rest waits
(GTC) or is cancelled (IOC). A zero-volume bar fills nothing when a cap is set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from weltklassebot.engine.costs import FeeModel, SlippageModel
from weltklassebot.engine.fill_model import fill_point
from weltklassebot.model.enums import Liquidity, OrderStatus, OrderType, TimeInForce
from weltklassebot.model.instrument import Instrument
from weltklassebot.model.records import Fill, Order


class SimulatedVenue:
    """Matching against bars; emits ``Fill`` records through ``on_fill``."""

    __slots__ = ("_book", "_next_fill_id", "closed", "fees", "instruments", "on_fill",
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
        self._book: dict[str, dict[int, Order]] = {s: {} for s in sorted(instruments)}
        self._next_fill_id = 1
        self.open_count = 0
        self.closed: list[Order] = []

    # -- order entry -----------------------------------------------------------------------
    def accept(self, order: Order) -> None:
        self._book[order.symbol][order.order_id] = order
        self.open_count += 1

    def record_closed(self, order: Order) -> None:
        """Keep a final record of an order that never rested (rejected / denied)."""
        self.closed.append(order)

    def cancel(self, order_id: int, symbol: str, ts_ns: int, reason: str) -> bool:
        book = self._book[symbol]
        order = book.pop(order_id, None)
        if order is None:
            return False
        self._close(order, OrderStatus.CANCELLED, ts_ns, reason)
        return True

    def open_orders(self, symbol: str) -> list[Order]:
        return list(self._book[symbol].values())

    def has_open(self, symbol: str) -> bool:
        return bool(self._book[symbol])

    def open_qty(self, symbol: str, side: int) -> int:
        book = self._book[symbol]
        if not book:
            return 0
        return sum(o.remaining for o in book.values() if o.side == side)

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
    ) -> None:
        """Match every eligible open order of ``symbol`` against this bar.

        ``volume_cap`` is the quantity (ticks) the bar can fill in all, or ``None`` for no cap.
        """
        book = self._book[symbol]
        if not book:
            return
        available = volume_cap
        instrument = self.instruments[symbol]
        # Orders submitted during this bar (from on_fill) are not in this snapshot of ids: they
        # become eligible from the next bar. Orders cancelled from on_fill are skipped.
        for order_id in sorted(book):
            order = book.get(order_id)
            if order is None:
                continue
            if order.active_from_ns > ts_ns:
                continue
            price, liquidity, triggered = fill_point(
                order.type, order.side, order.limit, order.stop, order.triggered,
                bar_open, bar_high, bar_low,
            )
            if triggered and not order.triggered:
                # A triggered stop stays a market order, a stop-limit a limit, for any remainder.
                order = replace(order, triggered=True)
                book[order_id] = order
            if price is not None and (available is None or available > 0):
                qty = order.remaining if available is None else min(order.remaining, available)
                if available is not None:
                    available -= qty
                fill, order = self._fill(order, instrument, ts_ns, price, qty, liquidity)
                # Book the order's new state before anyone hears of the fill: on_fill sees a
                # filled order as closed and a partly filled one with its true remainder.
                if order.remaining == 0:
                    del book[order_id]
                    self._close(order, OrderStatus.FILLED, ts_ns, "")
                    self.on_fill(fill)
                    continue
                book[order_id] = order
                self.on_fill(fill)
                if order_id not in book:
                    continue  # cancelled from on_fill
                order = book[order_id]
            if order.tif is TimeInForce.IOC:
                del book[order_id]
                self._close(order, OrderStatus.CANCELLED, ts_ns, "ioc_remainder")

    def _fill(self, order: Order, instrument: Instrument, ts_ns: int, price: int, qty: int,
              liquidity: Liquidity) -> tuple[Fill, Order]:
        if liquidity is Liquidity.TAKER:
            slipped = self.slippage.apply(price, order.side)
            if order.limit is not None and (order.type is OrderType.LIMIT or order.triggered):
                # Slippage never pushes a limit order past its limit.
                slipped = min(slipped, order.limit) if order.side > 0 else max(slipped,
                                                                                order.limit)
            price = slipped
        notional = instrument.notional(qty, price)
        fill = Fill(
            fill_id=self._next_fill_id,
            order_id=order.order_id,
            ts_ns=ts_ns,
            symbol=order.symbol,
            side=order.side,
            price=price,
            qty=qty,
            fee=self.fees.fee(notional, liquidity),
            notional=notional,
            liquidity=liquidity,
        )
        self._next_fill_id += 1
        return fill, order.with_fill(qty)

    def _close(self, order: Order, status: OrderStatus, ts_ns: int, reason: str) -> None:
        self.open_count -= 1
        self.closed.append(order.closed(status, ts_ns, reason))

    def expire_all(self, ts_ns: int) -> None:
        """End of data: every open order expires unfilled (nothing is liquidated)."""
        for symbol in sorted(self._book):
            book = self._book[symbol]
            for order_id in sorted(book):
                self._close(book[order_id], OrderStatus.EXPIRED, ts_ns, "end_of_data")
            book.clear()
