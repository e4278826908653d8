"""engine/venue.py: the order book per symbol, matching order, caps, IOC, cancel and expiry."""

from __future__ import annotations

from decimal import Decimal

from weltklassebot.engine.costs import FeeModel, SlippageModel
from weltklassebot.engine.venue import SimulatedVenue
from weltklassebot.model.enums import BUY, SELL, OrderStatus, OrderType, TimeInForce
from weltklassebot.model.instrument import Instrument, MoneySpec
from weltklassebot.model.records import Fill, Order

USD = MoneySpec("USD", Decimal("0.01"))
A = Instrument("A", Decimal("0.01"), Decimal("1"), USD)
B = Instrument("B", Decimal("0.01"), Decimal("1"), USD)


def venue() -> tuple[SimulatedVenue, list[Fill]]:
    fills: list[Fill] = []
    v = SimulatedVenue({"A": A, "B": B}, FeeModel(Decimal(10), Decimal(10), 0, 1),
                       SlippageModel(), fills.append)
    return v, fills


def order(order_id: int, side: int = BUY, qty: int = 10, typ: OrderType = OrderType.MARKET,
          limit: int | None = None, stop: int | None = None, tif: TimeInForce = TimeInForce.GTC,
          symbol: str = "A", active_from: int = 0) -> Order:
    return Order(order_id, symbol, side, typ, qty, limit, stop, tif, 0, active_from)


def status(v: SimulatedVenue) -> dict[int, tuple[str, int, str]]:
    return {o.order_id: (o.status.value, o.filled, o.reason) for o in v.closed}


def test_market_fills_whole_at_open_and_closes_filled() -> None:
    v, fills = venue()
    v.accept(order(1))
    assert v.open_count == 1
    v.process_bar("A", 100, 10_000, 10_100, 9_900, None)
    assert [(f.ts_ns, f.price, f.qty, f.fill_id, f.order_id) for f in fills] == [
        (100, 10_000, 10, 1, 1)]
    assert fills[0].notional == 100_000
    assert fills[0].fee == 100
    assert status(v) == {1: ("filled", 10, "")}
    assert v.open_count == 0
    assert not v.has_open("A")


def test_orders_of_other_symbols_are_untouched() -> None:
    v, fills = venue()
    v.accept(order(1, symbol="B"))
    v.process_bar("A", 100, 10_000, 10_100, 9_900, None)
    assert fills == []
    assert v.has_open("B")
    assert [o.order_id for o in v.open_orders("B")] == [1]


def test_orders_not_yet_active_wait() -> None:
    v, fills = venue()
    v.accept(order(1, active_from=200))
    v.process_bar("A", 199, 10_000, 10_100, 9_900, None)
    assert fills == []
    v.process_bar("A", 200, 10_001, 10_100, 9_900, None)
    assert [f.price for f in fills] == [10_001]


def test_matching_is_in_order_id_order_whatever_the_insertion_order() -> None:
    v, fills = venue()
    for oid in (3, 1, 2):
        v.accept(order(oid, qty=4))
    v.process_bar("A", 100, 10_000, 10_100, 9_900, 6)
    assert [(f.order_id, f.qty) for f in fills] == [(1, 4), (2, 2)]
    assert [f.fill_id for f in fills] == [1, 2]
    v.process_bar("A", 200, 10_000, 10_100, 9_900, 100)
    assert [(f.order_id, f.qty) for f in fills[2:]] == [(2, 2), (3, 4)]


def test_zero_cap_fills_nothing_but_ioc_is_still_cancelled() -> None:
    v, fills = venue()
    v.accept(order(1))
    v.accept(order(2, tif=TimeInForce.IOC))
    v.process_bar("A", 100, 10_000, 10_100, 9_900, 0)
    assert fills == []
    assert status(v) == {2: ("cancelled", 0, "ioc_remainder")}
    assert v.open_count == 1


def test_cancel_is_once_only() -> None:
    v, _ = venue()
    v.accept(order(1, typ=OrderType.LIMIT, limit=9_000))
    assert v.cancel(1, "A", 50, "cancelled_by_strategy")
    assert not v.cancel(1, "A", 60, "cancelled_by_strategy")
    assert status(v) == {1: ("cancelled", 0, "cancelled_by_strategy")}
    assert v.closed[0].ts_closed_ns == 50
    assert v.open_count == 0


def test_open_qty_counts_remaining_of_one_side() -> None:
    v, _ = venue()
    v.accept(order(1, qty=10))
    v.accept(order(2, qty=7, side=SELL))
    v.accept(order(3, qty=5, typ=OrderType.LIMIT, limit=1))
    v.process_bar("A", 100, 10_000, 10_100, 9_900, 4)
    assert v.open_qty("A", BUY) == 6 + 5
    assert v.open_qty("A", SELL) == 7


def test_expire_all_closes_every_open_order_in_symbol_and_id_order() -> None:
    v, _ = venue()
    v.accept(order(5, symbol="B", typ=OrderType.LIMIT, limit=1))
    v.accept(order(2, typ=OrderType.LIMIT, limit=1))
    v.accept(order(4, typ=OrderType.LIMIT, limit=1))
    v.expire_all(999)
    assert [(o.order_id, o.status) for o in v.closed] == [
        (2, OrderStatus.EXPIRED), (4, OrderStatus.EXPIRED), (5, OrderStatus.EXPIRED)]
    assert all(o.reason == "end_of_data" and o.ts_closed_ns == 999 for o in v.closed)
    assert v.open_count == 0


def test_stop_limit_trigger_is_remembered_across_bars() -> None:
    v, fills = venue()
    v.accept(order(1, typ=OrderType.STOP_LIMIT, stop=10_100, limit=10_050))
    v.process_bar("A", 100, 10_060, 10_200, 10_060, None)  # triggers, limit not reached
    assert fills == []
    assert v.open_orders("A")[0].triggered
    v.process_bar("A", 200, 10_070, 10_080, 10_040, None)  # below the stop: fills as a limit
    assert [(f.price, f.liquidity.value) for f in fills] == [(10_050, "maker")]


def test_fill_ids_continue_from_a_restored_counter() -> None:
    v, fills = venue()
    v.set_next_fill_id(41)
    v.accept(order(1))
    v.process_bar("A", 100, 10_000, 10_100, 9_900, None)
    assert fills[0].fill_id == 41
    assert v.next_fill_id() == 42


def test_record_closed_keeps_a_rejected_order_without_touching_the_book() -> None:
    v, _ = venue()
    v.record_closed(order(9))
    assert v.open_count == 0
    assert [o.order_id for o in v.closed] == [9]
