"""The cheap order path: the venue's skip of unreachable orders, its running open quantities and
id order, the records' new states, and the column-wise Parquet tables of orders and fills."""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from weltklassebot.engine.costs import FeeModel, FixedSlippage, SlippageModel
from weltklassebot.engine.fill_model import fill_point
from weltklassebot.engine.venue import SimulatedVenue
from weltklassebot.model.enums import BUY, SELL, Liquidity, OrderStatus, OrderType, TimeInForce
from weltklassebot.model.instrument import Instrument, MoneySpec
from weltklassebot.model.records import Fill, Order
from weltklassebot.runs.outputs import write_fills, write_orders

USD = MoneySpec("USD", Decimal("0.01"))
A = Instrument("A", Decimal("0.01"), Decimal("1"), USD)
B = Instrument("B", Decimal("0.5"), Decimal("0.001"), USD)
TYPES = list(OrderType)
CASES = 4000  # seeded, a fraction of a second


def _venue(slippage: SlippageModel | None = None) -> tuple[SimulatedVenue, list[Fill]]:
    fills: list[Fill] = []
    venue = SimulatedVenue({"A": A, "B": B}, FeeModel(Decimal(10), Decimal(5), 0, 1),
                           slippage or SlippageModel(), fills.append)
    return venue, fills


def _random_order(rng: random.Random, order_id: int, symbol: str = "A") -> Order:
    kind = rng.choice(TYPES)
    limit = rng.randint(90, 110) if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None
    stop = rng.randint(90, 110) if kind in (OrderType.STOP, OrderType.STOP_LIMIT) else None
    triggered = kind in (OrderType.STOP, OrderType.STOP_LIMIT) and rng.random() < 0.2
    order = Order(order_id, symbol, rng.choice((BUY, SELL)), kind, rng.randint(1, 9), limit,
                  stop, rng.choice(list(TimeInForce)), 0, rng.choice((0, 0, 0, 50)))
    return order.with_trigger() if triggered else order


def _random_bar(rng: random.Random) -> tuple[int, int, int]:
    low = rng.randint(88, 108)
    high = low + rng.randint(0, 6)
    # Mostly well-formed bars; now and then an open outside [low, high], which the fill model
    # handles too and so must the venue's shortcut.
    bar_open = rng.randint(low, high) if rng.random() < 0.9 else rng.randint(85, 115)
    return bar_open, high, low


@pytest.mark.parametrize("slippage", [None, FixedSlippage(Decimal(30))])
def test_one_order_one_bar_matches_the_fill_model_exactly(slippage: SlippageModel | None) -> None:
    """Whatever the venue decides without calling fill_point is what fill_point would say."""
    rng = random.Random(20261130)
    for _ in range(CASES):
        venue, fills = _venue(slippage)
        order = _random_order(rng, 1)
        bar_open, high, low = _random_bar(rng)
        venue.accept(order)
        venue.process_bar("A", 10, bar_open, high, low, None)
        if order.active_from_ns > 10:
            assert fills == []
            assert venue.open_orders("A") == [order]
            continue
        price, liquidity, triggered = fill_point(order.type, order.side, order.limit, order.stop,
                                                 order.triggered, bar_open, high, low)
        if price is None:
            assert fills == []
            if order.tif is TimeInForce.IOC:
                assert venue.open_orders("A") == []
                [closed] = venue.take_closed()
                assert (closed.status, closed.reason) == (OrderStatus.CANCELLED, "ioc_remainder")
                assert closed.triggered == (order.triggered or triggered)
            else:
                expect = order.with_trigger() if triggered and not order.triggered else order
                assert venue.open_orders("A") == [expect]
        else:
            [fill] = fills
            assert (fill.qty, fill.liquidity) == (order.qty, liquidity)
            if slippage is None:
                assert fill.price == price
            assert venue.open_orders("A") == []


def test_open_quantity_and_id_order_follow_every_change() -> None:
    """accept, cancel, partial and whole fills, IOC remainders, expiry: the running open
    quantity per side always equals the sum over the book, which stays in id order."""
    rng = random.Random(7)
    venue, fills = _venue()

    def on_fill(fill: Fill) -> None:
        fills.append(fill)
        _maybe_cancel(rng, venue)

    venue.on_fill = on_fill
    next_id = 1
    for step in range(3000):
        action = rng.random()
        symbol = rng.choice(("A", "B"))
        if action < 0.45:
            venue.accept(_random_order(rng, next_id, symbol))
            next_id += 1
        elif action < 0.65:
            open_ids = [o.order_id for o in venue.open_orders(symbol)]
            if open_ids:
                assert venue.cancel(rng.choice(open_ids), symbol, step, "test")
        else:
            bar_open, high, low = _random_bar(rng)
            cap = rng.choice((None, 0, 3, 10))
            venue.process_bar(symbol, step, bar_open, high, low, cap)
        for s in ("A", "B"):
            book = venue.open_orders(s)
            assert [o.order_id for o in book] == sorted(o.order_id for o in book)
            for side in (BUY, SELL):
                assert venue.open_qty(s, side) == sum(o.remaining for o in book if o.side == side)
        assert venue.open_count == len(venue.open_orders("A")) + len(venue.open_orders("B"))
    venue.expire_all(10_000)
    assert venue.open_count == 0
    assert venue.open_qty("A", BUY) == venue.open_qty("B", SELL) == 0


def _maybe_cancel(rng: random.Random, venue: SimulatedVenue) -> None:
    """A strategy that cancels another open order from on_fill now and then."""
    if rng.random() < 0.3:
        for symbol in ("A", "B"):
            for order in venue.open_orders(symbol)[:1]:
                venue.cancel(order.order_id, symbol, 0, "from_on_fill")


class _LookingVenue(SimulatedVenue):
    """The venue without its reach bounds: every bar looks at every resting order."""

    __slots__ = ()

    def process_bar(self, symbol: str, ts_ns: int, bar_open: int, bar_high: int,
                    bar_low: int, volume_cap: int | None) -> bool:
        book = self._books[symbol]
        book.up, book.down = -float("inf"), float("inf")
        return super().process_bar(symbol, ts_ns, bar_open, bar_high, bar_low, volume_cap)


def test_a_bar_the_reach_bounds_pass_over_is_one_where_nothing_happens() -> None:
    """Random orders, cancels (between bars and from on_fill), orders placed from on_fill and
    bars far from and near the book: the venue that skips bars by its reach bounds gives the
    fills, closed records and books of one that looks at every order at every bar."""
    rng = random.Random(11)
    fees = FeeModel(Decimal(10), Decimal(5), 0, 1)
    venues: list[SimulatedVenue] = []
    fills: list[list[Fill]] = [[], []]
    ids = [1_000_000, 1_000_000]
    for k, cls in enumerate((SimulatedVenue, _LookingVenue)):
        venue = cls({"A": A, "B": B}, fees, SlippageModel(), fills[k].append)
        venues.append(venue)
    choices = random.Random(12)  # one stream of on_fill decisions for both venues

    def on_fill_for(k: int) -> Callable[[Fill], None]:
        def on_fill(fill: Fill) -> None:
            fills[k].append(fill)
            pick = choices.random() if k == 0 else replay.pop(0)
            if k == 0:
                replay.append(pick)
            venue = venues[k]
            if pick < 0.2:
                for order in venue.open_orders(fill.symbol)[:1]:
                    venue.cancel(order.order_id, fill.symbol, fill.ts_ns, "from_on_fill")
            elif pick < 0.4:
                ids[k] += 1
                venue.accept(Order(ids[k], fill.symbol, -fill.side, OrderType.STOP, 1, None,
                                   fill.price - 5 * fill.side, TimeInForce.GTC, fill.ts_ns,
                                   fill.ts_ns))
        return on_fill

    replay: list[float] = []
    for k in (0, 1):
        venues[k].on_fill = on_fill_for(k)
    next_id = 1
    for step in range(4000):
        action = rng.random()
        symbol = rng.choice(("A", "B"))
        if action < 0.3:
            order = _random_order(rng, next_id, symbol)
            next_id += 1
            for venue in venues:
                venue.accept(order)
        elif action < 0.45:
            open_ids = [o.order_id for o in venues[0].open_orders(symbol)]
            if open_ids:
                order_id = rng.choice(open_ids)
                for venue in venues:
                    assert venue.cancel(order_id, symbol, step, "test")
        else:
            bar_open, high, low = _random_bar(rng)
            shift = rng.choice((0, 0, 30, -30))  # now and then a bar far from every order
            cap = rng.choice((None, None, 0, 3))
            venues[0].process_bar(symbol, step, bar_open + shift, high + shift, low + shift,
                                  cap)
            venues[1].process_bar(symbol, step, bar_open + shift, high + shift, low + shift,
                                  cap)
        assert fills[0] == fills[1]
        assert venues[0].take_closed() == venues[1].take_closed()
        for s in ("A", "B"):
            assert venues[0].open_orders(s) == venues[1].open_orders(s)
    assert fills[0]
    assert not replay


def test_an_order_arriving_out_of_id_order_is_matched_in_id_order() -> None:
    venue, fills = _venue()
    venue.accept(Order(5, "A", BUY, OrderType.MARKET, 1, None, None, TimeInForce.GTC, 0, 0))
    venue.accept(Order(3, "A", BUY, OrderType.MARKET, 1, None, None, TimeInForce.GTC, 0, 0))
    assert [o.order_id for o in venue.open_orders("A")] == [3, 5]
    venue.process_bar("A", 1, 100, 101, 99, None)
    assert [f.order_id for f in fills] == [3, 5]


def test_records_are_immutable_and_change_state_by_new_records() -> None:
    order = Order(1, "A", BUY, OrderType.STOP_LIMIT, 5, 101, 100, TimeInForce.GTC, 3, 4,
                  tag="t", reduce_only=True)
    with pytest.raises(AttributeError):
        order.filled = 2  # type: ignore[misc]
    assert order.with_fill(2) == order._replace(filled=2)
    assert order.with_fill(2).remaining == 3
    assert order.with_trigger() == order._replace(triggered=True)
    closed = order.closed(OrderStatus.CANCELLED, 9, "why")
    assert closed == order._replace(status=OrderStatus.CANCELLED, ts_closed_ns=9, reason="why")
    assert type(closed) is Order
    assert not closed.is_open
    assert order.is_open


def test_order_and_fill_tables_are_exact_across_symbols_nulls_and_huge_values(
        tmp_path: Path) -> None:
    """Two instruments with different increments (per-row factors), missing limit and stop
    prices (nulls), and ticks beyond int64 (the exact route): every cell as Decimal."""
    instruments = {"A": A, "B": B}
    US = 1_000  # timestamps whole microseconds, so the rows read back as datetimes
    huge = 2**70
    orders = [
        Order(1, "A", BUY, OrderType.LIMIT, 3, 10_001, None, TimeInForce.GTC, US, 2 * US,
              status=OrderStatus.FILLED, filled=3, ts_closed_ns=5 * US, tag="x"),
        Order(2, "B", SELL, OrderType.STOP, 1_500, None, 7, TimeInForce.IOC, US, US,
              status=OrderStatus.CANCELLED, reason="ioc_remainder", ts_closed_ns=6 * US),
        Order(3, "B", BUY, OrderType.STOP_LIMIT, huge, 9, 8, TimeInForce.GTC, US, US,
              status=OrderStatus.EXPIRED, reason="end_of_data", ts_closed_ns=7 * US),
    ]
    write_orders(tmp_path / "orders.parquet", orders, instruments)
    rows = pq.read_table(tmp_path / "orders.parquet").to_pylist()
    assert [(r["symbol"], r["side"], r["type"], r["tif"], r["status"]) for r in rows] == [
        ("A", "buy", "limit", "gtc", "filled"), ("B", "sell", "stop", "ioc", "cancelled"),
        ("B", "buy", "stop_limit", "gtc", "expired")]
    assert [r["qty"] for r in rows] == [Decimal(3), Decimal("1.5"), Decimal(huge) / 1000]
    assert [r["limit_price"] for r in rows] == [Decimal("100.01"), None, Decimal("4.5")]
    assert [r["stop_price"] for r in rows] == [None, Decimal("3.5"), Decimal(4)]
    assert [r["filled_qty"] for r in rows] == [Decimal(3), Decimal(0), Decimal(0)]
    assert [r["reason"] for r in rows] == ["", "ioc_remainder", "end_of_data"]
    fills = [Fill(1, 1, 5 * US, "A", BUY, 10_001, 3, 30, 30_003, Liquidity.TAKER),
             Fill(2, 4, 6 * US, "B", SELL, 7, 1_500, -1, huge, Liquidity.MAKER)]
    write_fills(tmp_path / "fills.parquet", fills, instruments, USD)
    rows = pq.read_table(tmp_path / "fills.parquet").to_pylist()
    assert [(r["side"], r["liquidity"]) for r in rows] == [("buy", "taker"), ("sell", "maker")]
    assert [r["price"] for r in rows] == [Decimal("100.01"), Decimal("3.5")]
    assert [r["qty"] for r in rows] == [Decimal(3), Decimal("1.5")]
    assert [r["fee"] for r in rows] == [Decimal("0.30"), Decimal("-0.01")]
    assert [r["notional"] for r in rows] == [Decimal("300.03"), Decimal(huge) / 100]


def test_empty_orders_file_keeps_its_schema(tmp_path: Path) -> None:
    write_orders(tmp_path / "orders.parquet", [], {"A": A})
    table = pq.read_table(tmp_path / "orders.parquet")
    assert table.num_rows == 0
    assert "stop_price" in table.column_names
