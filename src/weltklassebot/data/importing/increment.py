"""The price increment of an import: given with ``--price-increment``, else inferred from the
prices' decimals.

The inferred increment is ``10**-d`` for the fewest decimals ``d`` that write every open, high,
low and close (trades: every price) exactly: the most decimals any price has, trailing zeros not
counted (``0.0672`` -> 4, ``8051`` -> 0). A float64 read from decimal text holds it to about 16
significant digits, so a price counts as written with ``d`` decimals when it is within float
noise (16 units in the last place) of a multiple of ``10**-d``: ``100.01000000000001`` is
``100.01``. When that needs more decimals than integer ticks of a
float64 price can hold (the rule ``price_ticks`` of validation), no increment is written and
the backtester's default applies, with a warning.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa

from weltklassebot.data.schema import MAX_INCREMENT_PLACES, parse_increment
from weltklassebot.data.ticks import to_ticks
from weltklassebot.errors import UsageError

_RELATIVE_NOISE = 2.0 ** -48


def parse_price_increment(value: str) -> Decimal:
    """A ``--price-increment`` value as an exact decimal, or a usage error saying why not."""
    try:
        return parse_increment(value)
    except ValueError as exc:
        raise UsageError(f"--price-increment {value!r} is not usable: {exc}. Give the step "
                         "prices move in, e.g. 0.01.") from exc


def decimals_needed(prices: np.ndarray) -> int | None:
    """The fewest decimals that write every finite positive price; ``None`` above 18."""
    remaining = prices[np.isfinite(prices) & (prices > 0)]
    for places in range(MAX_INCREMENT_PLACES + 1):
        scale = 10.0 ** places
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = remaining * scale
            close = np.abs(scaled - np.rint(scaled)) <= scaled * _RELATIVE_NOISE
        # A price written with d decimals is written with d + 1 too: only the rest go on.
        remaining = remaining[~close]
        if remaining.size == 0:
            return places
    return None


def infer_increment(columns: list[np.ndarray]) -> tuple[Decimal | None, int | None]:
    """(increment, decimals): ``10**-decimals`` when the prices can be ticks of it, else
    ``(None, decimals)`` (``decimals`` is ``None`` beyond 18 places)."""
    places = 0
    for column in columns:  # one column at a time: no copy of all prices at once
        needed = decimals_needed(np.asarray(column, dtype=np.float64))
        if needed is None:
            return None, None
        places = max(places, needed)
    increment = Decimal(format(Decimal(1).scaleb(-places), "f"))
    for column in columns:
        if to_ticks(np.asarray(column, dtype=np.float64), increment, pa.float64(),
                    with_ticks=False).bad.any():
            return None, places
    return increment, places
