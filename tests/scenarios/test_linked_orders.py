"""Bar-by-bar scenarios for linked orders and target orders (docs/fill-model.md: One-cancels-
other, Brackets, Trailing stops; docs/strategy-api.md: Target orders), in the table form of
test_fill_rules: bars, a script, the fills expected in order and every order's final state
in id order. Bracket ids: the entry, then the take-profit, then the stop-loss."""

from __future__ import annotations

import pytest

from scenarios import test_fill_rules as rules
from scenarios.test_fill_rules import FLAT, Case, F, O, bar, buy, sell
from support.bars import timed
from support.engine import run_engine
from support.scripted import Bracket, Cancel, Oco, Target, Trailing
from weltklassebot.model.enums import BUY, SELL
from weltklassebot.strategy.base import Submitted

UP_TO_TP = bar(101, 106, "100.5", 105)  # reaches a take-profit at 105, not a stop at 95
DOWN_TO_SL = bar(99, 100, 94, 96)  # reaches a stop at 95, not a take-profit at 105
BOTH = bar(100, 106, 94, 100)  # reaches both

CASES = [
    # -- brackets ---------------------------------------------------------------------------
    Case("bracket_take_profit_fills_and_cancels_the_stop_loss",
         [FLAT, bar(100, 101, 99, 100), UP_TO_TP],
         {0: [Bracket(BUY, 10, take_profit=105, stop_loss=95)]},
         [F(1, "100", 10, tag="entry"),
          F(2, "105", 10, tag="entry:take_profit", liquidity="maker")],
         [O("filled", 10), O("filled", 10), O("cancelled", 0, "oco")]),
    Case("bracket_stop_loss_fills_and_cancels_the_take_profit",
         [FLAT, bar(100, 101, 99, 100), DOWN_TO_SL],
         {0: [Bracket(BUY, 10, take_profit=105, stop_loss=95)]},
         [F(1, "100", 10), F(2, "95", 10, tag="entry:stop_loss", liquidity="taker")],
         [O("filled", 10), O("cancelled", 0, "oco"), O("filled", 10)]),
    Case("bracket_long_both_exits_touched_in_one_bar_takes_the_stop_loss",
         [FLAT, bar(100, 101, 99, 100), BOTH],
         {0: [Bracket(BUY, 10, take_profit=105, stop_loss=95)]},
         [F(1, "100", 10), F(2, "95", 10, tag="entry:stop_loss")],
         [O("filled", 10), O("cancelled", 0, "oco"), O("filled", 10)]),
    Case("bracket_short_both_exits_touched_in_one_bar_takes_the_stop_loss",
         [FLAT, bar(100, 101, 99, 100), BOTH],
         {0: [Bracket(SELL, 10, take_profit=95, stop_loss=105)]},
         [F(1, "100", 10), F(2, "105", 10, tag="entry:stop_loss")],
         [O("filled", 10), O("cancelled", 0, "oco"), O("filled", 10)]),
    Case("bracket_gap_through_the_stop_loss_fills_at_the_open",
         [FLAT, bar(100, 101, 99, 100), bar(93, 94, 90, 92)],
         {0: [Bracket(BUY, 10, take_profit=105, stop_loss=95)]},
         [F(1, "100", 10), F(2, "93", 10, tag="entry:stop_loss")],
         [O("filled", 10), O("cancelled", 0, "oco"), O("filled", 10)]),
    Case("bracket_take_profit_gapped_at_the_open_comes_before_a_stop_loss_later_in_the_bar",
         [FLAT, bar(100, 101, 99, 100), bar(107, 108, 90, 95)],
         {0: [Bracket(BUY, 10, take_profit=105, stop_loss=95)]},
         [F(1, "100", 10), F(2, "107", 10, tag="entry:take_profit", liquidity="taker")],
         [O("filled", 10), O("filled", 10), O("cancelled", 0, "oco")]),
    Case("bracket_stop_loss_can_fill_in_the_bar_its_entry_fills",
         [FLAT, bar(100, 101, 94, 96), bar(96, 97, 95, 96)],
         {0: [Bracket(BUY, 10, take_profit=105, stop_loss=95)]},
         [F(1, "100", 10), F(1, "95", 10, tag="entry:stop_loss")],
         [O("filled", 10), O("cancelled", 0, "oco"), O("filled", 10)]),
    Case("bracket_stop_loss_in_the_entry_bar_after_a_limit_entry",
         [FLAT, bar(101, 102, 94, 96)],
         {0: [Bracket(BUY, 10, limit=98, take_profit=105, stop_loss=95)]},
         [F(1, "98", 10, liquidity="maker"), F(1, "95", 10, tag="entry:stop_loss")],
         [O("filled", 10), O("cancelled", 0, "oco"), O("filled", 10)]),
    Case("bracket_take_profit_never_fills_in_the_entry_bar",
         [FLAT, bar(100, 106, 99, 105), bar(105, 106, 104, 105)],
         {0: [Bracket(BUY, 10, take_profit=105, stop_loss=95)]},
         [F(1, "100", 10), F(2, "105", 10, tag="entry:take_profit", liquidity="taker")],
         [O("filled", 10), O("filled", 10), O("cancelled", 0, "oco")]),
    Case("bracket_whose_entry_never_fills_expires_with_its_exits",
         [FLAT, bar(100, 101, 99, 100), bar(100, 101, 99, 100)],
         {0: [Bracket(BUY, 10, limit=90, take_profit=105, stop_loss=85)]},
         [],
         [O("expired", 0, "end_of_data"), O("expired", 0, "end_of_data"),
          O("expired", 0, "end_of_data")]),
    Case("bracket_entry_cancelled_before_it_fills_cancels_its_exits",
         [FLAT, bar(100, 101, 99, 100), bar(100, 101, 99, 100)],
         {0: [Bracket(BUY, 10, limit=90, take_profit=105, stop_loss=85)],
          1: [Cancel("entry")]},
         [],
         [O("cancelled", 0, "cancelled_by_strategy"), O("cancelled", 0, "entry_cancelled"),
          O("cancelled", 0, "entry_cancelled")]),
    Case("bracket_exits_grow_with_partial_entry_fills_and_share_fills_one_for_one",
         [FLAT, bar(100, 101, 99, 100), bar(100, 101, 99, 100), UP_TO_TP,
          bar(105, 106, 104, 105)],
         {0: [Bracket(BUY, 15, take_profit=105, stop_loss=95)]},
         [F(1, "100", 10), F(2, "100", 5), F(3, "105", 10, tag="entry:take_profit"),
          F(4, "105", 5, tag="entry:take_profit")],
         [O("filled", 15), O("filled", 15), O("cancelled", 0, "oco")],
         {"participation": "0.01"}),
    Case("bracket_exit_filling_cancels_what_the_entry_has_not_filled",
         [FLAT, bar(100, 101, 99, 100), bar(103, 106, 102, 105)],
         {0: [Bracket(BUY, 20, limit=100, take_profit=105, stop_loss=95)]},
         [F(1, "100", 10), F(2, "105", 10, tag="entry:take_profit")],
         [O("cancelled", 10, "bracket_exit"), O("filled", 10), O("cancelled", 0, "oco")],
         {"participation": "0.01"}),
    Case("bracket_with_only_a_stop_loss",
         [FLAT, bar(100, 101, 99, 100), DOWN_TO_SL],
         {0: [Bracket(BUY, 10, stop_loss=95)]},
         [F(1, "100", 10), F(2, "95", 10, tag="entry:stop_loss")],
         [O("filled", 10), O("filled", 10)]),
    Case("bracket_trailing_stop_loss_starts_below_the_fill_and_follows_the_high",
         [FLAT, bar(100, 101, 99, 100), bar(100, 105, 100, 104), bar(103, 104, 101, 101)],
         {0: [Bracket(BUY, 10, trail_distance=3)]},
         [F(1, "100", 10), F(3, "102", 10, tag="entry:stop_loss")],
         [O("filled", 10), O("filled", 10)]),
    Case("bracket_exits_are_cancelled_when_the_position_is_closed_another_way",
         [FLAT, bar(100, 101, 99, 100), FLAT, FLAT, bar(100, 111, 89, 100)],
         {0: [Bracket(BUY, 10, take_profit=110, stop_loss=90)], 2: [sell(10, tag="manual")]},
         [F(1, "100", 10), F(3, "100", 10, tag="manual")],
         [O("filled", 10), O("cancelled", 0, "reduce_only"), O("cancelled", 0, "reduce_only"),
          O("filled", 10)]),
    Case("bracket_exits_are_cut_to_a_position_partly_closed_another_way",
         [FLAT, bar(100, 101, 99, 100), FLAT, FLAT, bar(100, 111, 99, 105)],
         {0: [Bracket(BUY, 10, take_profit=110, stop_loss=90)], 2: [sell(4, tag="manual")]},
         [F(1, "100", 10), F(3, "100", 4, tag="manual"),
          F(4, "110", 6, tag="entry:take_profit")],
         [O("filled", 10), O("filled", 6), O("cancelled", 0, "oco"), O("filled", 4)]),
    Case("a_reduce_only_order_never_opens_a_position",
         [FLAT, bar(100, 101, 99, 100), FLAT, bar(100, 101, 89, 95)],
         {0: [buy(10), sell(10, stop=90, reduce_only=True)], 1: [sell(10, tag="manual")]},
         [F(1, "100", 10), F(2, "100", 10, tag="manual")],
         [O("filled", 10), O("cancelled", 0, "reduce_only"), O("filled", 10)]),
    # -- one-cancels-other ------------------------------------------------------------------
    Case("oco_limit_fills_and_cancels_the_stop",
         [FLAT, bar(100, 101, 99, 100), bar(100, 101, 99, 100), UP_TO_TP],
         {0: [buy(10)], 1: [Oco(SELL, 10, limit=105, stop=95)]},
         [F(1, "100", 10), F(3, "105", 10, tag="oco", liquidity="maker")],
         [O("filled", 10), O("filled", 10), O("cancelled", 0, "oco")]),
    Case("oco_both_touched_takes_the_leg_earlier_on_the_path",
         [FLAT, bar(100, 101, 99, 100), bar(100, 101, 99, 100), BOTH],
         {0: [buy(10)], 1: [Oco(SELL, 10, limit=105, stop=95)]},
         [F(1, "100", 10), F(3, "95", 10, tag="oco", liquidity="taker")],
         [O("filled", 10), O("cancelled", 0, "oco"), O("filled", 10)]),
    Case("oco_buy_entry_breakout_or_pullback",
         [FLAT, bar(100, 103, 99, 102)],
         {0: [Oco(BUY, 10, limit=98, stop=102)]},
         [F(1, "102", 10, liquidity="taker")],
         [O("cancelled", 0, "oco"), O("filled", 10)]),
    Case("oco_leg_cancelled_by_the_strategy_leaves_the_other",
         [FLAT, bar(100, 101, 99, 100), bar(100, 101, 99, 100), UP_TO_TP],
         {0: [Oco(SELL, 10, limit=105, stop=95)], 1: [Cancel("oco:stop")]},
         [F(3, "105", 10)],
         [O("filled", 10), O("cancelled", 0, "cancelled_by_strategy")]),
    # -- trailing stops ---------------------------------------------------------------------
    Case("trailing_sell_stop_follows_the_high_and_never_moves_down",
         [FLAT, bar(100, 101, 99, 100), bar(100, 104, 99, 103), bar(103, "103.5", "102.5", 103),
          bar("102.5", 103, 101, "101.5")],
         {0: [buy(10)], 1: [Trailing(SELL, 10, distance=2)]},
         [F(1, "100", 10), F(4, "102", 10, tag="trail")],
         [O("filled", 10), O("filled", 10)]),
    Case("trailing_sell_stop_by_fraction_rounds_away_from_the_price",
         [FLAT, bar(100, 101, 99, 100), bar(100, 104, 99, 103), bar(103, 103, 101, 101)],
         {0: [buy(10)], 1: [Trailing(SELL, 10, fraction="0.02")]},
         [F(1, "100", 10), F(3, "101.92", 10, tag="trail")],
         [O("filled", 10), O("filled", 10)]),
    Case("trailing_buy_stop_follows_the_low_of_a_short",
         [FLAT, bar(100, 101, 99, 100), bar(100, 101, 96, 97), bar(97, 99, 96, 98)],
         {0: [sell(10)], 1: [Trailing(BUY, 10, distance=2)]},
         [F(1, "100", 10), F(3, "98", 10, tag="trail")],
         [O("filled", 10), O("filled", 10)]),
    Case("trailing_stop_from_a_given_start",
         [FLAT, bar(100, 101, 99, 100), bar(100, 101, "97.5", 100)],
         {0: [buy(10)], 1: [Trailing(SELL, 10, distance=5, stop=98)]},
         [F(1, "100", 10), F(2, "98", 10)],
         [O("filled", 10), O("filled", 10)]),
    # -- target orders ----------------------------------------------------------------------
    Case("target_quantity_buys_reduces_and_reverses",
         [FLAT] * 6,
         {0: [Target("qty", 10)], 2: [Target("qty", 4)], 4: [Target("qty", -3)]},
         [F(1, "100", 10), F(3, "100", 6), F(5, "100", 7)],
         [O("filled", 10), O("filled", 6), O("filled", 7)]),
    Case("target_counts_open_orders_under_way",
         [FLAT, FLAT],
         {0: [buy(5, limit=90), Target("qty", 10)]},
         [F(1, "100", 5, tag="target")],
         [O("expired", 0), O("filled", 5)]),
    Case("target_does_not_count_stops",
         [FLAT, FLAT, FLAT],
         {0: [buy(10)], 1: [sell(10, stop=90), Target("qty", 10)]},
         [F(1, "100", 10)],
         [O("filled", 10), O("expired", 0)]),
    Case("target_value_rounds_toward_zero",
         [FLAT, FLAT],
         {0: [Target("value", "1050")]},
         [F(1, "100", 10)],
         [O("filled", 10)]),
    Case("target_negative_value_goes_short",
         [FLAT, FLAT],
         {0: [Target("value", "-1000")]},
         [F(1, "100", 10)],
         [O("filled", 10)]),
    Case("target_fraction_of_equity",
         [FLAT, FLAT],
         {0: [Target("fraction", "0.001")]},
         [F(1, "100", 10)],
         [O("filled", 10)]),
    Case("target_fraction_is_cut_to_buying_power",
         [FLAT, FLAT],
         {0: [Target("fraction", "2")]},
         [F(1, "100", 10000)],
         [O("filled", 10000)]),
    Case("target_with_a_limit",
         [FLAT, bar(100, 101, 98, 99)],
         {0: [Target("qty", 10, limit=99)]},
         [F(1, "99", 10, liquidity="maker")],
         [O("filled", 10)]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_linked_order_rule(case: Case) -> None:
    rules.test_fill_rule(case)


def test_target_returns_what_it_submitted_and_none_at_the_target() -> None:
    script = {0: [Target("qty", 10)], 1: [Target("qty", 10)], 2: [Target("qty", "10.4")]}
    run = run_engine(timed([FLAT] * 4), script)
    submitted = run.strategy().targets
    assert submitted[0] == Submitted(1, BUY, 10)
    assert submitted[1:] == [None, None]  # at the target; 0.4 is less than one increment


def test_target_is_cut_to_buying_power_and_none_without_any() -> None:
    script = {0: [Target("qty", 10)]}
    run = run_engine(timed([FLAT] * 2), script, cash="500")
    assert run.strategy().targets == [Submitted(1, BUY, 5)]
    assert [f.qty for f in run.fills] == [5]
    broke = run_engine(timed([FLAT] * 2), script, cash="50")
    assert broke.strategy().targets == [None]
    assert (broke.fills, broke.orders) == ([], [])


def test_bracket_refused_for_buying_power_places_nothing() -> None:
    run = run_engine(timed([FLAT] * 3), {0: [Bracket(BUY, 100_000, take_profit=105,
                                                     stop_loss=95)]})
    assert [o.status.value for o in run.orders] == ["rejected"]
    assert run.fills == []

