"""Bar-by-bar scenarios for every rule of the default fill model (engine/fill_model.py).

Each case is a list of bars (hourly, starting 2024-01-01T00:00Z), a script of orders submitted at
the close of given bars, the fills expected (bar index, price, quantity, and where it matters the
order's tag, the liquidity and the fee) in fill order, and every order's final status. Prices are
in cents, quantities in whole units, cash in cents; fees are 10 bps maker and taker unless a case
says otherwise. The intra-bar path is open -> adverse extreme -> favourable extreme -> close.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from support.bars import HOUR, OHLCV, T0, timed
from support.engine import run_engine
from support.scripted import Action, Cancel, ScriptedStrategy, Submit
from weltklassebot.core.timeutil import NS_PER_MINUTE
from weltklassebot.model.enums import BUY, SELL


def bar(o: str | int, h: str | int, lo: str | int, c: str | int, v: str | int = 1000) -> OHLCV:
    return (str(o), str(h), str(lo), str(c), str(v))


FLAT = bar(100, 101, 99, 100)


@dataclass(frozen=True)
class F:
    """An expected fill; ``None`` fields are not checked."""

    bar: int
    price: str
    qty: str | int
    tag: str | None = None
    liquidity: str | None = None
    fee: str | None = None


@dataclass(frozen=True)
class O:  # noqa: E742 - short name keeps the table readable
    """An expected final order state, in order-id order."""

    status: str
    filled: str | int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Case:
    id: str
    bars: list[OHLCV]
    script: dict[int, list[Action]]
    fills: list[F]
    orders: list[O]
    settings: dict[str, Any] = field(default_factory=dict)


def buy(qty: str | int, **kw: Any) -> Submit:
    return Submit(BUY, str(qty), **kw)


def sell(qty: str | int, **kw: Any) -> Submit:
    return Submit(SELL, str(qty), **kw)


CASES = [
    # -- market orders -------------------------------------------------------------------------
    Case("market_buy_fills_at_next_open",
         [FLAT, bar(101, 102, 100, "101.5"), bar(102, 103, 101, 102)],
         {0: [buy(10)]},
         [F(1, "101", 10, liquidity="taker", fee="1.01")], [O("filled", 10)]),
    Case("market_sell_from_flat_opens_a_short_at_next_open",
         [FLAT, bar("100.5", 102, 100, 101), bar(102, 103, 101, 102)],
         {0: [sell(10)]},
         [F(1, "100.5", 10, liquidity="taker")], [O("filled", 10)]),
    Case("market_with_latency_skips_bars_that_start_too_early",
         [FLAT, bar(101, 102, 100, 101), bar(102, 103, 101, 102), bar(103, 104, 102, 103)],
         {0: [buy(10)]},
         [F(3, "103", 10)], [O("filled", 10)],
         {"latency_ns": 90 * NS_PER_MINUTE}),
    Case("market_with_latency_fills_in_a_bar_starting_exactly_at_activation",
         [FLAT, bar(101, 102, 100, 101), bar(102, 103, 101, 102), bar(103, 104, 102, 103)],
         {0: [buy(10)]},
         [F(2, "102", 10)], [O("filled", 10)],
         {"latency_ns": HOUR}),
    Case("market_order_on_the_last_bar_expires_unfilled",
         [FLAT, bar(101, 102, 100, 101)],
         {1: [buy(10)]},
         [], [O("expired", 0, "end_of_data")]),
    # -- limit orders --------------------------------------------------------------------------
    Case("buy_limit_touched_exactly_fills_at_limit_as_maker",
         [FLAT, bar(100, 101, 99, 100)],
         {0: [buy(10, limit="99")]},
         [F(1, "99", 10, liquidity="maker", fee="0.99")], [O("filled", 10)]),
    Case("buy_limit_not_touched_rests_and_expires",
         [FLAT, bar(100, 101, 99, 100), bar("99.5", 100, "98.51", 99)],
         {0: [buy(10, limit="98.5")]},
         [], [O("expired", 0, "end_of_data")]),
    Case("buy_limit_gap_down_fills_at_the_better_open_as_taker",
         [FLAT, bar(98, "99.5", "97.5", 99)],
         {0: [buy(10, limit="99")]},
         [F(1, "98", 10, liquidity="taker")], [O("filled", 10)]),
    Case("buy_limit_open_equal_to_limit_fills_at_open_as_taker",
         [FLAT, bar(99, 100, 98, 99)],
         {0: [buy(10, limit="99")]},
         [F(1, "99", 10, liquidity="taker")], [O("filled", 10)]),
    Case("buy_limit_rests_until_a_later_bar_touches_it",
         [FLAT, bar(100, 101, "99.5", 100), bar(100, 100, "98.9", "99.2")],
         {0: [buy(10, limit="99")]},
         [F(2, "99", 10, liquidity="maker")], [O("filled", 10)]),
    Case("sell_limit_touched_exactly_fills_at_limit_as_maker",
         [FLAT, bar(101, 102, 100, 101)],
         {0: [sell(10, limit="102")]},
         [F(1, "102", 10, liquidity="maker")], [O("filled", 10)]),
    Case("sell_limit_gap_up_fills_at_the_better_open_as_taker",
         [FLAT, bar(103, 104, "102.5", "103.5")],
         {0: [sell(10, limit="102")]},
         [F(1, "103", 10, liquidity="taker")], [O("filled", 10)]),
    Case("sell_limit_not_touched",
         [FLAT, bar(101, "101.99", 100, 101)],
         {0: [sell(10, limit="102")]},
         [], [O("expired", 0)]),
    # -- stop orders ---------------------------------------------------------------------------
    Case("buy_stop_not_reached",
         [FLAT, bar(100, "101.99", 99, 101)],
         {0: [buy(10, stop="102")]},
         [], [O("expired", 0, "end_of_data")]),
    Case("buy_stop_hit_intrabar_fills_at_the_stop",
         [FLAT, bar(100, 102, 99, 101)],
         {0: [buy(10, stop="101.5")]},
         [F(1, "101.5", 10, liquidity="taker")], [O("filled", 10)]),
    Case("buy_stop_touched_exactly_by_the_high_fills_at_the_stop",
         [FLAT, bar(100, "101.5", 99, 101)],
         {0: [buy(10, stop="101.5")]},
         [F(1, "101.5", 10)], [O("filled", 10)]),
    Case("buy_stop_gap_through_fills_at_the_open",
         [FLAT, bar(103, 104, 102, 103)],
         {0: [buy(10, stop="101.5")]},
         [F(1, "103", 10, liquidity="taker")], [O("filled", 10)]),
    Case("sell_stop_not_reached",
         [FLAT, bar(100, 101, "98.51", 99)],
         {0: [sell(10, stop="98.5")]},
         [], [O("expired", 0)]),
    Case("sell_stop_hit_intrabar_fills_at_the_stop",
         [FLAT, bar(100, "100.5", 98, 99)],
         {0: [sell(10, stop="98.5")]},
         [F(1, "98.5", 10, liquidity="taker")], [O("filled", 10)]),
    Case("sell_stop_gap_through_fills_at_the_open",
         [FLAT, bar(97, 98, 96, "97.5")],
         {0: [sell(10, stop="98.5")]},
         [F(1, "97", 10)], [O("filled", 10)]),
    # -- stop-limit orders ---------------------------------------------------------------------
    Case("buy_stop_limit_triggers_and_fills_at_the_stop_in_the_same_bar",
         [FLAT, bar("100.5", 102, 100, 101)],
         {0: [buy(10, stop="101", limit="101.5")]},
         [F(1, "101", 10, liquidity="taker")], [O("filled", 10)]),
    Case("buy_stop_limit_triggers_without_fill_then_fills_later_gtc",
         [FLAT, bar("100.8", 102, "100.7", "101.5"), bar("100.9", "100.95", "100.4", "100.6")],
         {0: [buy(10, stop="101", limit="100.5")]},
         [F(2, "100.5", 10, liquidity="maker")], [O("filled", 10)]),
    Case("buy_stop_limit_below_stop_filled_on_the_way_down_in_the_trigger_bar",
         [FLAT, bar("100.8", 102, "100.4", "101.5")],
         {0: [buy(10, stop="101", limit="100.5")]},
         [F(1, "100.5", 10, liquidity="maker")], [O("filled", 10)]),
    Case("buy_stop_limit_not_triggered_never_fills_even_below_its_limit",
         [FLAT, bar(100, "100.9", 97, 98)],
         {0: [buy(10, stop="101", limit="100.5")]},
         [], [O("expired", 0)]),
    Case("buy_stop_limit_gap_within_the_limit_fills_at_the_open",
         [FLAT, bar("101.5", 103, 101, "102.5")],
         {0: [buy(10, stop="101", limit="102")]},
         [F(1, "101.5", 10, liquidity="taker")], [O("filled", 10)]),
    Case("buy_stop_limit_gap_beyond_the_limit_waits_for_the_limit",
         [FLAT, bar(103, 104, "102.5", 103), bar("102.8", 103, "101.9", "102.5")],
         {0: [buy(10, stop="101", limit="102")]},
         [F(2, "102", 10, liquidity="maker")], [O("filled", 10)]),
    Case("sell_stop_limit_triggers_and_fills_at_the_stop_in_the_same_bar",
         [FLAT, bar(100, "100.5", "98.8", "99.2")],
         {0: [sell(10, stop="99", limit="98.5")]},
         [F(1, "99", 10, liquidity="taker")], [O("filled", 10)]),
    Case("sell_stop_limit_triggers_without_fill_then_fills_later_gtc",
         [FLAT, bar("99.3", "99.45", 98, "98.5"), bar("99.1", "99.6", "99.05", "99.2")],
         {0: [sell(10, stop="99", limit="99.5")]},
         [F(2, "99.5", 10, liquidity="maker")], [O("filled", 10)]),
    Case("sell_stop_limit_gap_within_the_limit_fills_at_the_open",
         [FLAT, bar("98.8", 99, 98, "98.6")],
         {0: [sell(10, stop="99", limit="98.5")]},
         [F(1, "98.8", 10, liquidity="taker")], [O("filled", 10)]),
    # -- volume cap, partial fills, time in force ----------------------------------------------
    Case("market_partial_fills_across_bars_with_a_volume_cap_gtc",
         [FLAT, bar(101, 102, 100, 101, 100), bar(102, 103, 101, 102, 50),
          bar(103, 104, 102, 103, 200)],
         {0: [buy(25)]},
         [F(1, "101", 10), F(2, "102", 5), F(3, "103", 10)], [O("filled", 25)],
         {"participation": "0.1"}),
    Case("limit_partial_fill_then_remainder_at_a_better_open",
         [FLAT, bar(100, 101, 99, 100, 20), bar("98.5", 99, 98, "98.8", 100)],
         {0: [buy(30, limit="99")]},
         [F(1, "99", 10, liquidity="maker"), F(2, "98.5", 20, liquidity="taker")],
         [O("filled", 30)],
         {"participation": "0.5"}),
    Case("volume_cap_is_shared_by_orders_in_order_id_order",
         [FLAT, bar(101, 102, 100, 101, 100), bar(102, 103, 101, 102, 100)],
         {0: [buy(8, tag="first"), buy(8, tag="second")]},
         [F(1, "101", 8, "first"), F(1, "101", 2, "second"), F(2, "102", 6, "second")],
         [O("filled", 8), O("filled", 8)],
         {"participation": "0.1"}),
    Case("partial_fill_remainder_expires_at_the_end_of_data",
         [FLAT, bar(101, 102, 100, 101, 100)],
         {0: [buy(25)]},
         [F(1, "101", 10)], [O("expired", 10, "end_of_data")],
         {"participation": "0.1"}),
    Case("ioc_remainder_is_cancelled",
         [FLAT, bar(101, 102, 100, 101, 100), bar(102, 103, 101, 102, 1000)],
         {0: [buy(25, tif="ioc")]},
         [F(1, "101", 10)], [O("cancelled", 10, "ioc_remainder")],
         {"participation": "0.1"}),
    Case("ioc_limit_not_touched_is_cancelled_in_its_first_bar",
         [FLAT, bar(100, 101, 99, 100), bar(98, 98, 97, 98)],
         {0: [buy(10, limit="98", tif="ioc")]},
         [], [O("cancelled", 0, "ioc_remainder")]),
    Case("ioc_waits_for_its_latency_before_its_single_chance",
         [FLAT, bar(101, 102, 100, 101), bar(102, 103, 101, 102), bar(103, 104, 102, 103)],
         {0: [buy(10, tif="ioc")]},
         [F(3, "103", 10)], [O("filled", 10)],
         {"latency_ns": 90 * NS_PER_MINUTE}),
    Case("zero_volume_bar_with_a_cap_fills_nothing",
         [FLAT, bar(101, 101, 101, 101, 0), bar(102, 103, 101, 102, 100)],
         {0: [buy(5)]},
         [F(2, "102", 5)], [O("filled", 5)],
         {"participation": "1"}),
    Case("zero_volume_bar_without_a_cap_fills_whole",
         [FLAT, bar(101, 101, 101, 101, 0)],
         {0: [buy(5)]},
         [F(1, "101", 5)], [O("filled", 5)]),
    Case("ioc_on_a_zero_volume_bar_with_a_cap_is_cancelled_unfilled",
         [FLAT, bar(101, 101, 101, 101, 0), bar(102, 103, 101, 102, 100)],
         {0: [buy(5, tif="ioc")]},
         [], [O("cancelled", 0, "ioc_remainder")],
         {"participation": "1"}),
    Case("triggered_stop_remainder_fills_at_the_next_open_like_a_market_order",
         [FLAT, bar(100, 102, 99, 100, 100), bar(100, "100.5", "99.5", 100, 100)],
         {0: [buy(15, stop="101")]},
         [F(1, "101", 10), F(2, "100", 5)], [O("filled", 15)],
         {"participation": "0.1"}),
    Case("triggered_stop_limit_remainder_keeps_resting_at_its_limit",
         [FLAT, bar(100, 102, 99, 100, 100), bar(100, "100.5", "99.5", 100, 100),
          bar("101.5", 102, "101.2", "101.5", 100)],
         {0: [buy(15, stop="101", limit="101")]},
         [F(1, "101", 10), F(2, "100", 5, liquidity="taker")], [O("filled", 15)],
         {"participation": "0.1"}),
    # -- cancel ----------------------------------------------------------------------------------
    Case("cancel_before_fill",
         [FLAT, bar(100, 101, 99, 100), bar(96, 97, 94, 95)],
         {0: [buy(10, limit="95", tag="x")], 1: [Cancel("x")]},
         [], [O("cancelled", 0, "cancelled_by_strategy")]),
    Case("cancel_in_the_same_close_event_as_submit",
         [FLAT, bar(100, 101, 99, 100)],
         {0: [buy(10, tag="x"), Cancel("x")]},
         [], [O("cancelled", 0, "cancelled_by_strategy")]),
    Case("cancel_of_a_partly_filled_order_keeps_its_fills",
         [FLAT, bar(101, 102, 100, 101, 100), bar(102, 103, 101, 102, 100)],
         {0: [buy(25, tag="x")], 1: [Cancel("x")]},
         [F(1, "101", 10)], [O("cancelled", 10, "cancelled_by_strategy")],
         {"participation": "0.1"}),
    # -- buying power ----------------------------------------------------------------------------
    Case("order_beyond_equity_times_leverage_is_rejected",
         [FLAT, FLAT],
         {0: [buy(101)]},
         [], [O("rejected", 0, "insufficient_buying_power")],
         {"cash": "10000"}),
    Case("order_up_to_equity_is_allowed",
         [FLAT, FLAT],
         {0: [buy(100)]},
         [F(1, "100", 100)], [O("filled", 100)],
         {"cash": "10000", "taker_bps": "0"}),
    Case("leverage_2_allows_the_same_order",
         [FLAT, FLAT],
         {0: [buy(101)]},
         [F(1, "100", 101)], [O("filled", 101)],
         {"cash": "10000", "leverage": "2"}),
    Case("short_beyond_buying_power_is_rejected",
         [FLAT, FLAT],
         {0: [sell(101)]},
         [], [O("rejected", 0, "insufficient_buying_power")],
         {"cash": "10000"}),
    Case("open_orders_of_the_same_side_count_against_buying_power",
         [FLAT, FLAT],
         {0: [buy(60, limit="100"), buy(60, limit="100")]},
         [F(1, "100", 60)], [O("filled", 60), O("rejected", 0, "insufficient_buying_power")],
         {"cash": "10000"}),
    Case("reducing_order_is_allowed_at_any_size_of_equity",
         [FLAT, FLAT, bar(50, 50, 50, 50), bar(50, 50, 50, 50)],
         {0: [buy(100)], 2: [sell(100)]},
         [F(1, "100", 100), F(3, "50", 100)], [O("filled", 100), O("filled", 100)],
         {"cash": "10000", "taker_bps": "0", "leverage": "1"}),
    # -- fees -----------------------------------------------------------------------------------
    Case("taker_fee_rounds_half_even_to_the_cent",
         [FLAT, bar("100.5", 101, 100, 101)],
         {0: [buy(10)]},
         [F(1, "100.5", 10, liquidity="taker", fee="1.00")], [O("filled", 10)]),
    Case("taker_fee_other_side_of_the_tie",
         [FLAT, bar("101.5", 102, 101, 102)],
         {0: [buy(10)]},
         [F(1, "101.5", 10, fee="1.02")], [O("filled", 10)]),
    Case("maker_fee_in_bps",
         [FLAT, bar(100, 101, 99, 100)],
         {0: [buy(10, limit="99")]},
         [F(1, "99", 10, liquidity="maker", fee="0.20")], [O("filled", 10)],
         {"maker_bps": "2", "taker_bps": "50"}),
    Case("minimum_fee_applies_to_small_fees",
         [FLAT, bar(101, 102, 100, 101)],
         {0: [buy(10)]},
         [F(1, "101", 10, fee="5.00")], [O("filled", 10)],
         {"min_fee": "5"}),
    Case("minimum_fee_does_not_lower_larger_fees",
         [FLAT, bar(101, 102, 100, 101)],
         {0: [buy(1000)]},
         [F(1, "101", 1000, fee="101.00")], [O("filled", 1000)],
         {"min_fee": "5"}),
    Case("negative_maker_fee_is_a_rebate_and_no_minimum_applies",
         [FLAT, bar(100, 101, 99, 100)],
         {0: [buy(10, limit="99")]},
         [F(1, "99", 10, liquidity="maker", fee="-0.25")], [O("filled", 10)],
         {"maker_bps": "-2.5", "min_fee": "5"}),
    # -- slippage -------------------------------------------------------------------------------
    Case("fixed_slippage_buy_rounds_up_to_the_tick",
         [FLAT, bar("100.01", 101, 100, 101)],
         {0: [buy(10)]},
         [F(1, "100.12", 10)], [O("filled", 10)],
         {"slippage": "fixed", "slippage_bps": "10"}),
    Case("fixed_slippage_sell_rounds_down_to_the_tick",
         [FLAT, bar("100.01", 101, 99, 100)],
         {0: [sell(10)]},
         [F(1, "99.9", 10)], [O("filled", 10)],
         {"slippage": "fixed", "slippage_bps": "10"}),
    Case("fixed_slippage_on_a_stop_fill",
         [FLAT, bar(100, 102, 99, 101)],
         {0: [buy(10, stop="101.5")]},
         [F(1, "101.61", 10)], [O("filled", 10)],
         {"slippage": "fixed", "slippage_bps": "10"}),
    Case("fixed_slippage_never_pushes_a_limit_fill_past_its_limit",
         [FLAT, bar(100, 101, 99, 100)],
         {0: [buy(10, limit="100.05")]},
         [F(1, "100.05", 10, liquidity="taker")], [O("filled", 10)],
         {"slippage": "fixed", "slippage_bps": "10"}),
    Case("fixed_slippage_never_pushes_a_sell_limit_fill_past_its_limit",
         [FLAT, bar(103, 104, 102, 103)],
         {0: [sell(10, limit="102.95")]},
         [F(1, "102.95", 10, liquidity="taker")], [O("filled", 10)],
         {"slippage": "fixed", "slippage_bps": "10"}),
    Case("fixed_slippage_never_pushes_a_stop_limit_fill_past_its_limit",
         [FLAT, bar("100.5", 102, 100, 101)],
         {0: [buy(10, stop="101", limit="101.05")]},
         [F(1, "101.05", 10, liquidity="taker")], [O("filled", 10)],
         {"slippage": "fixed", "slippage_bps": "10"}),
    Case("maker_fills_are_not_slipped",
         [FLAT, bar(100, 101, 99, 100)],
         {0: [buy(10, limit="99")]},
         [F(1, "99", 10, liquidity="maker")], [O("filled", 10)],
         {"slippage": "fixed", "slippage_bps": "10"}),
    # -- netting --------------------------------------------------------------------------------
    Case("long_flips_to_short_in_one_fill",
         [FLAT, bar(101, 102, 100, 101), bar(102, 103, 101, 102), bar(100, 101, 99, 100)],
         {0: [buy(10)], 1: [sell(25)], 2: [buy(15)]},
         [F(1, "101", 10), F(2, "102", 25), F(3, "100", 15)],
         [O("filled", 10), O("filled", 25), O("filled", 15)]),
]


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _bar_index(ts_ns: int) -> int:
    offset = ts_ns - T0
    assert offset % HOUR == 0, "fills carry the ts of a bar"
    return offset // HOUR


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fill_rule(case: Case) -> None:
    run = run_engine(timed(case.bars), case.script, **case.settings)
    inst = run.engine.instruments["TEST"]
    money = inst.money
    tags = {o.order_id: o.tag for o in run.orders}
    got = [
        F(
            _bar_index(f.ts_ns),
            _plain(inst.price_decimal(f.price)),
            _plain(inst.qty_decimal(f.qty)),
            tags[f.order_id] if exp.tag is not None else None,
            f.liquidity.value if exp.liquidity is not None else None,
            str(money.decimal(f.fee)) if exp.fee is not None else None,
        )
        for f, exp in zip(run.fills, case.fills + [F(0, "", 0)] * len(run.fills), strict=False)
    ]
    want = [
        F(e.bar, _plain(Decimal(e.price)), _plain(Decimal(e.qty)), e.tag,
          e.liquidity, e.fee)
        for e in case.fills
    ]
    assert got == want
    orders = [
        O(o.status.value,
          None if exp.filled is None else o.filled,
          None if exp.reason is None else o.reason)
        # the cases list orders by id; orders.parquet lists them in the order they closed
        for o, exp in zip(sorted(run.orders, key=lambda o: o.order_id),
                          case.orders + [O("")] * len(run.orders), strict=False)
    ]
    assert orders == [O(e.status, None if e.filled is None else int(e.filled), e.reason)
                      for e in case.orders]
    _check_bookkeeping(run)


def _check_bookkeeping(run: Any) -> None:
    """Invariants every scenario must keep: fills within the order, cash and position exact."""
    by_order: dict[int, int] = {}
    for fill in run.fills:
        by_order[fill.order_id] = by_order.get(fill.order_id, 0) + fill.qty
    for order in run.orders:
        assert by_order.get(order.order_id, 0) == order.filled <= order.qty
    inst = run.engine.instruments["TEST"]
    position = sum(f.side * f.qty for f in run.fills)
    cash = run.engine.execution.initial_cash - sum(
        f.side * inst.notional(f.qty, f.price) + f.fee for f in run.fills)
    assert run.engine.position("TEST") == position
    assert run.result.final_cash == cash
    assert run.strategy().fills == run.fills


def test_flip_long_to_short_nets_the_position_and_realises_the_closed_part() -> None:
    bars = [FLAT, bar(101, 102, 100, 101), bar(102, 103, 101, 102), bar(100, 101, 99, 100),
            bar(100, 100, 100, 100)]
    run = run_engine(timed(bars), {0: [buy(10)], 1: [sell(25)], 2: [buy(15)]}, taker_bps="0")
    seen = run.strategy().seen
    assert [s.position for s in seen] == [0, 10, -15, 0, 0]
    # Long 10 @ 101 closed @ 102 (+10), short 15 @ 102 covered @ 100 (+30).
    assert run.result.realised == 40 * 100
    assert run.result.final_cash == 1_000_000 * 100 + 40 * 100
    assert run.result.final_equity == run.result.final_cash
    flip = run.fills[1]
    assert (flip.side, flip.qty, flip.price) == (SELL, 25, 10200)


def test_flip_realises_only_the_closed_part_and_marks_the_rest() -> None:
    bars = [FLAT, bar(101, 102, 100, 101), bar(102, 103, 101, 102), bar(103, 103, 103, 103)]
    run = run_engine(timed(bars), {0: [buy(10)], 1: [sell(25)]}, taker_bps="0")
    ledger = run.engine.ledger
    assert ledger.realised == 10 * 100  # (102 - 101) x 10, in cents
    position = ledger.positions["TEST"]
    assert position.qty == -15
    assert position.cost == -15 * 10200
    # Marked at the last close 103: short 15 from 102 loses 15.
    assert ledger.unrealised() == -15 * 100
    assert run.result.final_equity == 1_000_000 * 100 + 10 * 100 - 15 * 100


def test_cancel_after_fill_returns_false_and_keeps_the_order_filled() -> None:
    run = run_engine(timed([FLAT, FLAT, FLAT]), {0: [buy(1, tag="x")], 1: [Cancel("x")]})
    assert run.strategy().cancel_results == {"x": False}
    assert [o.status.value for o in run.orders] == ["filled"]


def test_rejected_order_is_recorded_with_its_reason_and_detail() -> None:
    run = run_engine(timed([FLAT, FLAT]), {0: [buy(101)]}, cash="10000")
    assert run.strategy().ids == {"order@0": None}
    assert run.result.denial_counts == {"insufficient_buying_power": 1}
    denial = run.result.denials[0]
    assert denial.reason == "insufficient_buying_power"
    assert "10100" in denial.detail
    assert "10000" in denial.detail


def test_rebate_increases_cash() -> None:
    bars = [FLAT, bar(100, 101, 99, 100)]
    rebate = run_engine(timed(bars), {0: [buy(10, limit="99")]}, maker_bps="-2.5")
    free = run_engine(timed(bars), {0: [buy(10, limit="99")]}, maker_bps="0")
    assert rebate.result.final_cash - free.result.final_cash == 25
    assert rebate.result.fees_paid == -25


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stochastic_slippage_is_bounded_and_against_the_trader(seed: int) -> None:
    bars = [FLAT] + [bar(100, 101, 99, 100)] * 40
    script = {i: [buy(1) if i % 2 == 0 else sell(1)] for i in range(40)}
    run = run_engine(timed(bars), script, seed=seed, slippage="stochastic",
                     slippage_max_bps="50")
    for fill in run.fills:
        if fill.side > 0:
            assert 10000 <= fill.price <= 10050
        else:
            assert 9950 <= fill.price <= 10000
    assert len({f.price for f in run.fills}) > 5


def test_stochastic_slippage_same_seed_same_fills_other_seed_different() -> None:
    bars = [FLAT] + [bar("100.37", 101, 99, 100)] * 30
    script = {i: [buy(3)] for i in range(30)}

    def prices(seed: int) -> list[int]:
        run = run_engine(timed(bars), script, seed=seed, slippage="stochastic",
                         slippage_max_bps="25", inst=None)
        return [f.price for f in run.fills]

    assert prices(7) == prices(7)
    assert prices(7) != prices(8)


def test_latency_jitter_is_seeded_and_within_bounds() -> None:
    bars = [FLAT] * 60
    script = {i: [buy(1)] for i in range(0, 50, 5)}

    def activations(seed: int) -> list[int]:
        run = run_engine(timed(bars), script, seed=seed, latency_ns=HOUR,
                         jitter_ns=2 * HOUR)
        return [o.active_from_ns - o.ts_submitted_ns for o in run.orders]

    first = activations(11)
    assert first == activations(11)
    assert first != activations(12)
    assert all(HOUR <= d <= 3 * HOUR for d in first)


class _CancelAllOnFill(ScriptedStrategy):
    """Cancels every open order of its symbol from ``on_fill`` (one-cancels-other style)."""

    def on_fill(self, ctx: Any, fill: Any) -> None:
        super().on_fill(ctx, fill)
        self.open_at_fill = [(o.order_id, o.remaining) for o in ctx.open_orders]
        ctx.cancel_all()


def test_cancelling_from_on_fill_keeps_the_book_consistent() -> None:
    bars = [FLAT, bar(100, 103, 99, 102), bar(102, 103, 101, 102), bar(102, 103, 96, 97),
            bar(97, 98, 96, 97)]
    script = {0: [buy(1, stop="101", tag="long"), sell(1, stop="98", tag="short")],
              2: [sell(1, stop="98", tag="exit")]}
    strategies: list[_CancelAllOnFill] = []

    def make() -> _CancelAllOnFill:
        strategies.append(_CancelAllOnFill(script))
        return strategies[0]

    run = run_engine(timed(bars), make, taker_bps="0")
    strategy = strategies[0]
    # The filled order is no longer open when on_fill runs; the other entry is.
    assert strategy.open_at_fill == [(2, 1)] or strategy.open_at_fill == []
    statuses = {o.tag: o.status.value for o in run.orders}
    assert statuses == {"long": "filled", "short": "cancelled", "exit": "filled"}
    assert len(run.orders) == 3
    assert [(_bar_index(f.ts_ns), f.price) for f in run.fills] == [(1, 10100), (3, 9800)]
    assert run.engine.venue.open_count == 0
