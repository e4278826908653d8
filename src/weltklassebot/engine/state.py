"""The engine state record: everything that decides a run's future, as plain JSON data.

``BacktestEngine.save_state()`` returns it between steps and ``BacktestEngine.resume(state)``
continues from it, in this process or another: the continued run's fills, orders, equity curve
and so its equity hash equal an uninterrupted run's. No pickle: every value is a JSON type, money
and prices are exact integers, fractions are ``"n/d"`` text, records are lists in field order.

Layout (``ENGINE_STATE_VERSION`` 1): ``version``, ``strategy``, ``symbols``, ``seed``,
``clock_ns``, ``cursor`` (bars stepped: the feed position to continue from), ``counters``,
``ledger``, ``venue`` (the book in id order, its counters), ``rng`` (each random stream's
position), ``risk`` (the risk engine's snapshot, or null), ``closes`` (close events still due
with several symbols), ``slots`` (per symbol: bars seen, each engine series' value and kernel,
the strategy's saved data or null) and ``pending`` (outputs not yet handed to a sink).
"""

from __future__ import annotations

from typing import Any

from weltklassebot.model.enums import Liquidity, OrderStatus, OrderType, TimeInForce
from weltklassebot.model.records import Denial, Fill, Order

ENGINE_STATE_VERSION = 1


class StateMismatch(ValueError):
    """A saved state does not fit this engine (other version, symbols, strategy or series)."""


def order_data(order: Order) -> list[Any]:
    return [order.order_id, order.symbol, order.side, order.type.value, order.qty, order.limit,
            order.stop, order.tif.value, order.ts_submitted_ns, order.active_from_ns,
            order.filled, order.status.value, order.triggered, order.reason,
            order.ts_closed_ns, order.tag, order.reduce_only]


def order_from(data: list[Any]) -> Order:
    (order_id, symbol, side, kind, qty, limit, stop, tif, submitted, active, filled, status,
     triggered, reason, closed, tag, reduce_only) = data
    return Order(order_id, symbol, side, OrderType(kind), qty, limit, stop, TimeInForce(tif),
                 submitted, active, filled, OrderStatus(status), triggered, reason, closed, tag,
                 reduce_only)


def fill_data(fill: Fill) -> list[Any]:
    return [fill.fill_id, fill.order_id, fill.ts_ns, fill.symbol, fill.side, fill.price,
            fill.qty, fill.fee, fill.notional, fill.liquidity.value]


def fill_from(data: list[Any]) -> Fill:
    fill_id, order_id, ts_ns, symbol, side, price, qty, fee, notional, liquidity = data
    return Fill(fill_id, order_id, ts_ns, symbol, side, price, qty, fee, notional,
                Liquidity(liquidity))


def denial_data(denial: Denial) -> list[Any]:
    return list(denial)


def denial_from(data: list[Any]) -> Denial:
    order_id, ts_ns, symbol, side, qty, reason, detail = data
    return Denial(order_id, ts_ns, symbol, side, qty, reason, detail)
