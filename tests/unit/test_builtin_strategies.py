"""strategy/builtin: sma_cross and donchian_breakout on small hand-made series."""

from __future__ import annotations

from itertools import accumulate

import pytest

from support.bars import flat_bars, timed
from support.engine import run_engine
from weltklassebot.model.enums import BUY, SELL
from weltklassebot.strategy.builtin import DonchianBreakout, SmaCross

# fast=2, slow=3. Signs of f - s from bar 2: 0 - - - + + + - - 0 + + - + +
CLOSES = [10, 10, 10, 9, 8, 9, 11, 12, 11, 9, 8, 10, 12, 12, 5, 20, 21]


def sma(**params: object) -> SmaCross:
    strategy = SmaCross(**{**SmaCross.params, "fast": 2, "slow": 3, **params})
    strategy.validate()
    return strategy


def test_sma_cross_enters_on_cross_up_and_exits_on_cross_down() -> None:
    run = run_engine(timed(flat_bars(CLOSES)), lambda: sma())
    got = [(f.ts_ns, f.side, f.price, f.qty) for f in run.fills]
    bars = timed(flat_bars(CLOSES))
    # Cross up at bar 6 -> buy at bar 7's open; cross down at 9 -> sell at 10; the tie at 11
    # is no crossing, so 12 is none either; cross down at 14 while flat: nothing; up at 15 ->
    # buy at 16.
    assert got == [(bars[7][0], BUY, 1200, 1), (bars[10][0], SELL, 800, 1),
                   (bars[16][0], BUY, 2100, 1)]


def test_sma_cross_signal_on_the_last_bar_expires_and_nothing_is_liquidated() -> None:
    run = run_engine(timed(flat_bars(CLOSES[:16])), lambda: sma())
    assert [f.side for f in run.fills] == [BUY, SELL]
    last = run.orders[-1]
    assert (last.side, last.status.value, last.reason) == (BUY, "expired", "end_of_data")
    held = run_engine(timed(flat_bars(CLOSES[:9])), lambda: sma())
    assert [f.side for f in held.fills] == [BUY]
    assert held.engine.position("TEST") == 1
    assert held.result.final_equity == held.result.final_cash + 1100


def test_sma_cross_quantity_param() -> None:
    run = run_engine(timed(flat_bars(CLOSES)), lambda: sma(qty=3))
    assert [f.qty for f in run.fills] == [3, 3, 3]


@pytest.mark.parametrize("params", [{"fast": 3, "slow": 3}, {"fast": 0}, {"slow": 0}])
def test_sma_cross_refuses_nonsense(params: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"fast|slow"):
        SmaCross(**{"fast": 2, "slow": 3, **params}).validate()


def test_donchian_trades_long_and_short_with_stops() -> None:
    prices = ([100] * 4 + [101, 103, 106, 110, 108, 104, 100, 96, 92, 90, 91, 95, 99, 104, 108]
              + [107, 103, 98])
    bars = [(p, p + 1, p - 1, p, 1000) for p in prices]
    run = run_engine(timed(bars), lambda: _donchian(entry=3, exit=2))
    positions = list(accumulate(f.side * f.qty for f in run.fills))
    assert max(positions) == 1
    assert min(positions) == -1
    first = run.fills[0]
    # Flat after bar 2 (3 bars seen): buy stop one tick above the 3-bar high of 101.
    assert (first.side, first.price) == (BUY, 10101)
    assert {o.type.value for o in run.orders} == {"stop"}
    entries = [o for o in run.orders if o.tag.endswith("_entry") and o.filled]
    assert {o.tag for o in entries} == {"long_entry", "short_entry"}
    # One-cancels-other: never both entries of one pair filled, never a double position.
    assert all(abs(p) <= 1 for p in positions)


def test_donchian_sized_by_fraction_enters_for_that_share_of_equity() -> None:
    prices = [100] * 4 + [101, 103, 106, 110, 108, 104, 100, 96, 92]
    bars = [(p, p + 1, p - 1, p, 1000) for p in prices]
    run = run_engine(timed(bars), lambda: _donchian(entry=3, exit=2, fraction="0.25"))
    entry = next(o for o in run.orders if o.tag == "long_entry" and o.filled)
    # 25 % of 1,000,000 at the stop of 101.01, rounded down to whole units.
    assert entry.qty == 250_000 * 100 // 10101
    exit_order = next(o for o in run.orders if o.tag == "long_exit" and o.filled)
    assert exit_order.qty == entry.qty
    with pytest.raises(ValueError, match="fraction"):
        _donchian(fraction="-1")


def _donchian(**params: int | str) -> DonchianBreakout:
    strategy = DonchianBreakout(**{**DonchianBreakout.params, **params})
    strategy.validate()
    return strategy
