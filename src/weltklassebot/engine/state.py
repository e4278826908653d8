"""The engine state record: everything that decides a run's future, as plain JSON data.

``BacktestEngine.save_state()`` returns it between steps and ``BacktestEngine.resume(state)``
continues from it, in this process or another: the continued run's fills, orders, equity curve
and so its equity hash equal an uninterrupted run's. No pickle: every value is a JSON type, money
and prices are exact integers, fractions are ``"n/d"`` text, records are lists in field order.

Layout (``ENGINE_STATE_VERSION`` 1): ``version``, ``strategy``, ``symbols``, ``seed``,
``clock_ns``, ``cursor`` (bars stepped: the feed position to continue from), ``counters``,
``ledger``, ``venue`` (the book in id order, its counters, the links of one-cancels-other
pairs, brackets and trailing stops), ``rng`` (each random stream's
position), ``risk`` (the risk engine's snapshot, or null), ``closes`` (close events still due
with several symbols), ``slots`` (per symbol: bars seen, each engine series' value and kernel,
the strategy's saved data or null) and ``pending`` (outputs not yet handed to a sink).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from weltklassebot.model.enums import Liquidity, OrderStatus, OrderType, TimeInForce
from weltklassebot.model.records import Denial, Fill, Order, Trail

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


def trail_data(trail: Trail) -> list[Any]:
    return [trail.distance, None if trail.fraction is None else
            f"{trail.fraction.numerator}/{trail.fraction.denominator}"]


def trail_from(data: list[Any]) -> Trail:
    distance, fraction = data
    return Trail(None if distance is None else int(distance),
                 None if fraction is None else Fraction(fraction))


def links_data(links: dict[str, Any]) -> dict[str, Any]:
    """The venue's links (``book_state()["links"]``) as plain data."""
    return {
        "oco": [list(pair) for pair in links["oco"]],
        "brackets": [[entry_id, rested, [order_data(o) for o in exits]]
                     for entry_id, rested, exits in links["brackets"]],
        "exit_of": [list(pair) for pair in links["exit_of"]],
        "trails": [[order_id, trail_data(trail)] for order_id, trail in links["trails"]],
    }


def links_from(data: dict[str, Any] | None) -> dict[str, Any]:
    """``links_data``'s inverse; a record saved before links existed has none."""
    data = data or {}
    return {
        "oco": [(int(a), int(b)) for a, b in data.get("oco", [])],
        "brackets": [(int(entry_id), bool(rested), [order_from(o) for o in exits])
                     for entry_id, rested, exits in data.get("brackets", [])],
        "exit_of": [(int(e), int(p)) for e, p in data.get("exit_of", [])],
        "trails": [(int(order_id), trail_from(t)) for order_id, t in data.get("trails", [])],
    }
