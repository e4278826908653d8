"""engine/equity_hash.py: the canonical text, byte for byte, and its vectorised rendering."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from weltklassebot.core.decimal import format_scaled
from weltklassebot.engine.equity_hash import (
    FILL_STRUCT,
    HEADER,
    EquityHasher,
    equity_text,
    fill_line,
    fill_lines_text,
    format_scaled_array,
    record_structs,
)
from weltklassebot.model.enums import BUY, SELL, Liquidity
from weltklassebot.model.instrument import DEFAULT_INCREMENT, Instrument, MoneySpec
from weltklassebot.model.records import Fill

BTC = Instrument("BTC/USD", DEFAULT_INCREMENT, DEFAULT_INCREMENT,
                 MoneySpec("USD", DEFAULT_INCREMENT))


def test_worked_example_of_the_docs() -> None:
    fill = Fill(1, 1, 1499284800000000000, "BTC/USD", BUY, 262_379_000_000, 100_000_000,
                262_379_000, 262_379_000_000_000, Liquidity.TAKER)
    line = fill_line(fill, BTC)
    assert line == "1499284800000000000,BTC/USD,buy,2623.79,1,2.62379,1,1\n"
    hasher = EquityHasher()
    hasher.add_fills([line])
    hasher.add_equity(np.array([1499281200000000000, 1499284800000000000], dtype=np.int64),
                      np.array([100_000_000_000_000, 99_999_737_621_000], dtype=np.int64), 8)
    text = (
        "weltklassebot-equity-hash v1\n"
        "1499284800000000000,BTC/USD,buy,2623.79,1,2.62379,1,1\n"
        "1499281200000000000,1000000\n"
        "1499284800000000000,999997.37621\n"
    )
    assert hasher.hexdigest() == hashlib.sha256(text.encode()).hexdigest()
    assert HEADER == "weltklassebot-equity-hash v1\n"


def test_sell_and_negative_and_tiny_values() -> None:
    fill = Fill(7, 3, 5, "X", SELL, 1, 1, -25, 0, Liquidity.MAKER)
    assert fill_line(fill, BTC) == "5,X,sell,0.00000001,0.00000001,-0.00000025,3,7\n"


def test_fills_must_come_before_equity() -> None:
    hasher = EquityHasher()
    hasher.add_equity_text(b"1,1\n")
    with pytest.raises(RuntimeError, match="before equity"):
        hasher.add_fills(["x\n"])


@given(st.lists(st.integers(-(2**63) + 1, 2**63 - 1), max_size=50), st.integers(0, 30))
def test_vectorised_text_equals_the_scalar_format(units: list[int], scale: int) -> None:
    array = np.array(units, dtype=np.int64)
    got = format_scaled_array(array, scale).to_pylist()
    assert got == [format_scaled(u, scale) for u in units]


def test_equity_text_for_big_and_small_integers() -> None:
    ts = np.array([1, 2], dtype=np.int64)
    small = np.array([-150, 100_000_000], dtype=np.int64)
    assert bytes(equity_text(ts, small, 2)) == b"1,-1.5\n2,1000000\n"
    big = np.array([10**30, -(10**25)], dtype=object)
    assert bytes(equity_text(ts, big, 8)) == (
        f"1,{Decimal(10**22)}\n2,-{Decimal(10**17)}\n".encode())
    assert bytes(equity_text(np.array([], dtype=np.int64), small[:0], 8)) == b""


def test_fill_lines_with_a_fee_beyond_int64_equal_the_scalar_lines() -> None:
    inst = Instrument("X", Decimal("0.01"), Decimal("1"), MoneySpec("USD", Decimal("1E-12")))
    fills = [Fill(1, 1, 10, "X", BUY, 12345, 3, 5 * 10**19, 0, Liquidity.TAKER),
             Fill(2, 2, 20, "X", SELL, 12346, 3, 7, 0, Liquidity.MAKER)]
    assert fill_lines_text(fills, {"X": inst}) == "".join(
        fill_line(f, inst) for f in fills).encode()


_INSTRUMENTS = {
    "X": Instrument("X", Decimal("0.25"), Decimal("0.001"), MoneySpec("USD", Decimal("0.01"))),
    "Y": Instrument("Y", Decimal("0.00000001"), Decimal("1"), MoneySpec("USD", Decimal("0.01"))),
}
_TICKS = st.one_of(st.integers(1, 10**6), st.integers(1, 2**63 - 1), st.integers(2**63, 2**70))


@given(st.lists(st.tuples(st.sampled_from(["X", "X", "Y"]), st.booleans(), _TICKS, _TICKS,
                          st.integers(-(2**64), 2**64)), min_size=1, max_size=20))
def test_fill_lines_in_one_pass_equal_the_scalar_lines(
        rows: list[tuple[str, bool, int, int, int]]) -> None:
    """One symbol or several, values within int64 or beyond it, units past 2**62: the
    rendering from the struct array (given or made here) is ``fill_line``'s, byte for byte."""
    fills = [Fill(i + 1, 100 + i, 1_600_000_000_000_000_000 + i, symbol, BUY if buy else SELL,
                  price, qty, fee, 0, Liquidity.TAKER)
             for i, (symbol, buy, price, qty, fee) in enumerate(rows)]
    expected = "".join(fill_line(f, _INSTRUMENTS[f.symbol]) for f in fills).encode()
    assert fill_lines_text(fills, _INSTRUMENTS) == expected
    assert fill_lines_text(fills, _INSTRUMENTS, record_structs(fills, FILL_STRUCT)) == expected


def test_record_structs_refuses_values_beyond_int64() -> None:
    ok = Fill(1, 1, 10, "X", BUY, 5, 3, 1, 0, Liquidity.TAKER)
    structs = record_structs([ok], FILL_STRUCT)
    assert structs is not None
    assert structs.field("liquidity").to_pylist() == ["taker"]
    assert record_structs([ok._replace(notional=2**63)], FILL_STRUCT) is None
