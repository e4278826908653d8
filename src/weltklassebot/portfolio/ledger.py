"""The ledger: applies fills to cash and positions and marks positions to market."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from weltklassebot.model.instrument import Instrument
from weltklassebot.model.records import Fill


@dataclass(slots=True)
class Position:
    """Netted position of one symbol; ``cost`` is the signed money paid for the open quantity."""

    instrument: Instrument
    qty: int = 0
    cost: Fraction | int = 0
    last_price: int | None = None
    ratio_num: int = 0
    ratio_den: int = 1
    step: int = 1

    def __post_init__(self) -> None:
        self.ratio_num = self.instrument.value_num
        self.ratio_den = self.instrument.value_den
        self.step = self.instrument.money.step

    def mark(self) -> int:
        """Market value at the last price, half-even to the cash increment (0 when flat)."""
        qty = self.qty
        last = self.last_price
        if qty == 0 or last is None:
            return 0
        # div_round_half_even inlined (ratio_den > 0): the engine marks every bar in a position.
        den = self.ratio_den
        q, r = divmod(qty * last * self.ratio_num, den)
        twice = 2 * r
        if twice > den or (twice == den and q & 1):
            q += 1
        return q * self.step


class Ledger:
    """Cash, positions, realised PnL and fees; the single source of truth for accounting."""

    __slots__ = ("cash", "fees_paid", "initial_cash", "positions", "realised")

    def __init__(self, initial_cash: int, instruments: dict[str, Instrument]) -> None:
        self.initial_cash = initial_cash
        self.cash = initial_cash
        self.fees_paid = 0
        self.realised: Fraction | int = 0
        self.positions = {s: Position(i) for s, i in sorted(instruments.items())}

    def apply(self, fill: Fill) -> Fraction | int:
        """Book ``fill``; return the realised PnL (gross of fees) it produced.

        Cost basis is an exact int while it divides evenly and a ``Fraction`` otherwise
        (a partial close of a position bought at several prices).
        """
        pos = self.positions[fill.symbol]
        signed_qty = fill.side * fill.qty
        self.cash -= fill.side * fill.notional + fill.fee
        self.fees_paid += fill.fee
        if pos.last_price is None:
            pos.last_price = fill.price
        if pos.qty == 0 or (pos.qty > 0) == (signed_qty > 0):
            pos.cost += fill.side * fill.notional
            pos.qty += signed_qty
            return 0
        held = abs(pos.qty)
        closing = min(fill.qty, held)
        closed_cost = pos.cost if closing == held else _exact(pos.cost * closing, held)
        # Proceeds of the closing part: its share of this fill's notional, exact.
        proceeds = fill.notional if closing == fill.qty else _exact(fill.notional * closing,
                                                                     fill.qty)
        realised = proceeds - closed_cost if pos.qty > 0 else -closed_cost - proceeds
        pos.cost -= closed_cost
        pos.qty += signed_qty
        opening = fill.qty - closing
        if opening:
            pos.cost = _exact(fill.side * fill.notional * opening, fill.qty)
        if pos.qty == 0:
            pos.cost = 0
        self.realised += realised
        return realised

    def mark_value(self) -> int:
        return sum(p.mark() for p in self.positions.values() if p.qty)

    def equity(self) -> int:
        return self.cash + self.mark_value()

    def unrealised(self) -> Fraction | int:
        return sum((p.mark() - p.cost for p in self.positions.values() if p.qty), 0)

    def gross_exposure(self) -> int:
        return sum(abs(p.mark()) for p in self.positions.values() if p.qty)

    def state(self) -> dict[str, Any]:
        """Cash, fees, realised PnL and every position with its exact cost basis, as plain
        data (fractions as ``"n/d"`` text)."""
        return {
            "cash": self.cash,
            "fees_paid": self.fees_paid,
            "realised": _text(self.realised),
            "positions": {s: {"qty": p.qty, "cost": _text(p.cost), "last_price": p.last_price}
                          for s, p in self.positions.items()},
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (the same instruments)."""
        if sorted(state["positions"]) != sorted(self.positions):
            raise ValueError(f"saved positions for {sorted(state['positions'])}, this ledger "
                             f"holds {sorted(self.positions)}")
        self.cash = int(state["cash"])
        self.fees_paid = int(state["fees_paid"])
        self.realised = _number(state["realised"])
        for symbol, saved in state["positions"].items():
            position = self.positions[symbol]
            position.qty = int(saved["qty"])
            position.cost = _number(saved["cost"])
            last = saved["last_price"]
            position.last_price = None if last is None else int(last)


def _text(value: Fraction | int) -> str | int:
    if isinstance(value, Fraction):
        return value.numerator if value.denominator == 1 else (
            f"{value.numerator}/{value.denominator}")
    return int(value)


def _number(value: str | int) -> Fraction | int:
    if isinstance(value, int):
        return value
    fraction = Fraction(value)
    return fraction.numerator if fraction.denominator == 1 else fraction


def _exact(numerator: Fraction | int, denominator: int) -> Fraction | int:
    """``numerator / denominator`` as an int when it divides evenly, else a ``Fraction``."""
    if isinstance(numerator, int):
        q, r = divmod(numerator, denominator)
        return q if r == 0 else Fraction(numerator, denominator)
    value = numerator / denominator
    return value.numerator if value.denominator == 1 else value
