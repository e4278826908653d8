"""Prices to integer ticks: the one conversion every feed applies and validation checks.

A feed reads bars as float columns from wherever they come from (a Parquet snapshot today, in
``data.ingest``; a live source tomorrow) and hands them here: ``bars_to_chunk`` turns them into
the engine's ``BarChunk`` of integer ticks, or raises ``BadPrice`` naming the first row whose
price does not survive the conversion (below one increment, off the increment's grid, too fine
for its number type), which the feed reports in its own terms (a file row, a message). No file
or network I/O here: the rule is the same whatever the source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pyarrow as pa

from weltklassebot.model.bars import BarChunk

INT64_MAX = (1 << 63) - 1
PRICE_FIELDS = ("open", "high", "low", "close")

TICK_TOLERANCE = 0.01
"""How far (in increments) a price may sit from a multiple of the increment, beyond the rounding
of its column's number type: 1% of an increment."""

_UNIT_ROUNDOFF_FLOAT64 = 2.0 ** -53
# Conversion error on top of the stored value's own rounding: the multiply or divide, and the
# float form of a non-power-of-ten increment (a few float64 roundings, bounded generously).
_CONVERSION_ERROR = 2.0 ** -51


def unit_roundoff(column_type: pa.DataType) -> float:
    """Relative rounding of the values of ``column_type`` once read as float64."""
    if pa.types.is_float16(column_type):
        return 2.0 ** -11
    if pa.types.is_float32(column_type):
        return 2.0 ** -24
    return _UNIT_ROUNDOFF_FLOAT64


@dataclass(frozen=True)
class TickConversion:
    """Prices as integer ticks, and the rows whose price does not survive the conversion."""

    ticks: np.ndarray
    """``rint(price / increment)``; 0 where the price is bad or not a finite positive number."""
    bad: np.ndarray
    """Below one increment, off its grid by more than the tolerance, or beyond what the
    column's number type resolves (``problem`` says which)."""
    scaled: np.ndarray
    limit: float
    increment: Decimal

    def problem(self, row: int) -> str:
        """Why the price at ``row`` does not survive conversion to ticks of the increment."""
        scaled = float(self.scaled[row])
        if not scaled < self.limit:
            return (f"too large to be represented exactly in ticks of the price_increment "
                    f"{self.increment} by its column's number type; use a coarser "
                    "price_increment")
        if round(scaled) < 1:
            return f"below one price_increment ({self.increment}) and would become 0 ticks"
        return (f"not a multiple of the price_increment {self.increment} (within "
                f"{TICK_TOLERANCE:g} of an increment)")


def tick_scaler(increment: Decimal) -> tuple[float, bool]:
    """(factor, multiply?): ticks = rint(price * factor) or rint(price / factor)."""
    inverse = 1 / Fraction(increment)
    if inverse.denominator == 1:
        return float(inverse.numerator), True
    return float(increment), False


def to_ticks(values: np.ndarray, increment: Decimal, column_type: pa.DataType,
             *, with_ticks: bool = True) -> TickConversion:
    """Convert prices to ticks of ``increment`` (``rint``, half-even on the float's value) and
    flag every row whose price does not survive: below one increment, off the increment's grid
    by more than the tolerance, or beyond what the column type resolves. Rows that are not
    finite positive numbers are the price rule's business and not flagged.

    ``with_ticks=False`` skips building the int64 ticks (validation needs only the verdict).
    """
    factor, multiply = tick_scaler(increment)
    roundoff = unit_roundoff(column_type) + _CONVERSION_ERROR
    # Beyond this many ticks the type's rounding reaches half a tick (or floats stop being
    # exact integers): neighbouring ticks cannot be told apart.
    limit = min(0.5 / roundoff, 2.0 ** 53)
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = values * factor if multiply else values / factor
        nearest = np.rint(scaled)
        usable = (values > 0) & (values < np.inf)
        # Off the grid: |scaled - nearest| > tolerance + the rounding the type allows.
        off = np.subtract(scaled, nearest)
        np.abs(off, out=off)
        off -= scaled * roundoff
        bad = (off > TICK_TOLERANCE) | (nearest < 1) | ~(scaled < limit)
        bad &= usable
        if with_ticks:
            ticks = np.where(usable & ~bad, nearest, 0.0).astype(np.int64)
        else:
            ticks = np.empty(0, dtype=np.int64)
    return TickConversion(ticks, bad, scaled, limit, increment)


def volume_too_large(values: np.ndarray, quantity_increment: Decimal) -> np.ndarray:
    """Rows whose volume, in quantity ticks, is beyond int64 (the engine's quantity range)."""
    limit = float(Fraction(INT64_MAX) * Fraction(quantity_increment))
    with np.errstate(invalid="ignore"):
        return np.asarray(np.isfinite(values) & (values >= limit), dtype=bool)


class BadPrice(ValueError):
    """A price that does not survive conversion to ticks: ``field`` at ``row`` of the columns
    handed over, its ``value`` and ``problem`` (TickConversion.problem's words)."""

    def __init__(self, field: str, row: int, value: float, problem: str) -> None:
        super().__init__(f"{field} at row {row} is {value!r}, {problem}")
        self.field = field
        self.row = row
        self.value = value
        self.problem = problem


def bars_to_chunk(ts: np.ndarray, prices: Sequence[np.ndarray], volume: np.ndarray,
                  increments: Sequence[Decimal], codes: np.ndarray | None = None,
                  column_types: Sequence[pa.DataType] | None = None) -> BarChunk:
    """Bars in event order, prices as floats (open, high, low, close) -> a ``BarChunk``.

    ``codes`` index ``increments`` (one per symbol, sorted by name); without codes there is one
    symbol. ``column_types`` are the prices' stored number types (float64 when not given), whose
    rounding the grid check allows for. Raises ``BadPrice`` for the first bad price: by field in
    order, then by symbol code, then by row.
    """
    types = list(column_types) if column_types is not None else [pa.float64()] * 4
    columns: list[np.ndarray] = []
    for field, values, column_type in zip(PRICE_FIELDS, prices, types, strict=True):
        if codes is None:
            columns.append(_checked(field, values, increments[0], column_type, None))
            continue
        ticks = np.empty(values.size, dtype=np.int64)
        for code, increment in enumerate(increments):
            mask = codes == code
            ticks[mask] = _checked(field, values[mask], increment, column_type,
                                   np.flatnonzero(mask))
        columns.append(ticks)
    o, h, lo, c = columns
    return BarChunk(ts, codes, o, h, lo, c, volume)


def _checked(field: str, values: np.ndarray, increment: Decimal, column_type: pa.DataType,
             rows: np.ndarray | None) -> np.ndarray:
    conversion = to_ticks(values, increment, column_type)
    bad = conversion.bad
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise BadPrice(field, row if rows is None else int(rows[row]), float(values[row]),
                       conversion.problem(row))
    return conversion.ticks
