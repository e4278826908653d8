"""portfolio/ledger.py: exact cash, netted positions, realised and unrealised PnL."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from weltklassebot.model.enums import BUY, SELL, Liquidity
from weltklassebot.model.instrument import Instrument, MoneySpec
from weltklassebot.model.records import Fill
from weltklassebot.portfolio.ledger import Ledger

USD = MoneySpec("USD", Decimal("0.01"))
INST = Instrument("X", Decimal("0.01"), Decimal("1"), USD)
FINE = Instrument("F", Decimal("0.00000001"), Decimal("0.00000001"),
                  MoneySpec("USD", Decimal("0.00000001")))

_ids = iter(range(1, 10**9))


def fill(side: int, qty: int, price: int, fee: int = 0, inst: Instrument = INST) -> Fill:
    return Fill(next(_ids), 1, 0, inst.symbol, side, price, qty, fee,
                inst.notional(qty, price), Liquidity.TAKER)


def test_buy_then_sell_realises_the_difference_and_books_fees() -> None:
    ledger = Ledger(1_000_000, {"X": INST})
    assert ledger.apply(fill(BUY, 10, 10_000, fee=100)) == 0
    assert ledger.cash == 1_000_000 - 100_000 - 100
    assert ledger.positions["X"].qty == 10
    realised = ledger.apply(fill(SELL, 10, 10_500, fee=105))
    assert realised == 5_000
    assert ledger.cash == 1_000_000 + 5_000 - 205
    assert ledger.fees_paid == 205
    assert ledger.positions["X"].qty == 0
    assert ledger.positions["X"].cost == 0
    assert ledger.equity() == ledger.cash


def test_short_then_cover_realises_the_difference() -> None:
    ledger = Ledger(1_000_000, {"X": INST})
    ledger.apply(fill(SELL, 4, 10_000))
    assert ledger.positions["X"].qty == -4
    assert ledger.cash == 1_040_000
    assert ledger.apply(fill(BUY, 4, 9_000)) == 4_000
    assert ledger.cash == 1_004_000
    assert ledger.realised == 4_000


def test_partial_close_uses_average_cost_exactly() -> None:
    ledger = Ledger(10**9, {"X": INST})
    ledger.apply(fill(BUY, 1, 100))
    ledger.apply(fill(BUY, 2, 201))  # average cost 502 / 3
    realised = ledger.apply(fill(SELL, 1, 200))
    assert realised == Fraction(200) - Fraction(502, 3)
    assert ledger.positions["X"].cost == Fraction(502 * 2, 3)
    realised2 = ledger.apply(fill(SELL, 2, 200))
    assert realised + realised2 == 600 - 502


def test_flip_closes_then_opens_at_the_fill_price() -> None:
    ledger = Ledger(10**9, {"X": INST})
    ledger.apply(fill(BUY, 10, 10_100))
    realised = ledger.apply(fill(SELL, 25, 10_200))
    assert realised == 10 * 100
    pos = ledger.positions["X"]
    assert pos.qty == -15
    assert pos.cost == -15 * 10_200
    pos.last_price = 10_300
    assert pos.mark() == -15 * 10_300
    assert ledger.unrealised() == -15 * 100


def test_mark_rounds_half_even_to_the_cash_increment() -> None:
    inst = Instrument("H", Decimal("0.001"), Decimal("1"), USD)  # price finer than cash
    ledger = Ledger(0, {"H": inst})
    ledger.apply(Fill(1, 1, 0, "H", BUY, 1005, 1, 0, inst.notional(1, 1005), Liquidity.TAKER))
    pos = ledger.positions["H"]
    assert inst.notional(1, 1005) == 100  # 1.005 -> 1.00 (tie to even)
    pos.last_price = 1015
    assert pos.mark() == 102  # 1.015 -> 1.02
    pos.last_price = 1025
    assert pos.mark() == 102  # 1.025 -> 1.02


def test_mark_is_zero_when_flat_or_never_priced() -> None:
    ledger = Ledger(5, {"X": INST})
    assert ledger.positions["X"].mark() == 0
    assert ledger.mark_value() == 0
    assert ledger.equity() == 5
    assert ledger.gross_exposure() == 0


def test_gross_exposure_sums_absolute_marks_across_symbols() -> None:
    other = Instrument("Y", Decimal("0.01"), Decimal("1"), USD)
    ledger = Ledger(10**9, {"X": INST, "Y": other})
    ledger.apply(fill(BUY, 2, 1000))
    ledger.apply(fill(SELL, 3, 1000, inst=other))
    assert ledger.gross_exposure() == 2000 + 3000
    assert ledger.mark_value() == 2000 - 3000


trades = st.lists(
    st.tuples(st.sampled_from([BUY, SELL]), st.integers(1, 10**9), st.integers(1, 10**12),
              st.integers(0, 10**6)),
    min_size=1, max_size=30,
)


@settings(max_examples=200)
@given(trades, st.integers(1, 10**12))
def test_realised_plus_unrealised_equals_equity_change_plus_fees(
        sequence: list[tuple[int, int, int, int]], mark: int) -> None:
    initial = 10**20
    ledger = Ledger(initial, {"F": FINE})
    for side, qty, price, fee in sequence:
        ledger.apply(fill(side, qty, price, fee, inst=FINE))
        pos = ledger.positions["F"]
        assert ledger.realised + ledger.unrealised() == (
            ledger.equity() - initial + ledger.fees_paid)
        pos.last_price = mark
        assert ledger.realised + ledger.unrealised() == (
            ledger.equity() - initial + ledger.fees_paid)
        assert ledger.equity() == ledger.cash + pos.mark()
    net = sum(s * q for s, q, _, _ in sequence)
    assert ledger.positions["F"].qty == net
    if net:
        # Closing everything at the mark realises everything.
        side = SELL if net > 0 else BUY
        ledger.apply(fill(side, abs(net), mark, 0, inst=FINE))
    assert ledger.positions["F"].qty == 0
    assert ledger.unrealised() == 0
    assert ledger.realised == ledger.equity() - initial + ledger.fees_paid
