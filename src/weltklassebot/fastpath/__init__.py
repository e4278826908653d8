"""The compiled fast path: the built-in strategies' backtests in one numba loop over int64
arrays, with the engine's fill model, costs, random streams and exact accounting, giving the
engine's fills, orders and equity hash bit for bit (docs/fastpath.md).

For sweeps: ``prepare`` reads a snapshot once per worker (a sweep's own snapshot arrays of one
symbol do as well), ``available`` says whether a strategy and config can run here at all,
``run`` runs one cell (fills, orders, equity curve, equity hash, statistics) and raises
``FallBack`` when the engine must run it instead.
"""

from weltklassebot.fastpath.bars import Bars, FallBack, prepare
from weltklassebot.fastpath.compiled import warm
from weltklassebot.fastpath.runner import (
    FastResult,
    available,
    equity_hash,
    records,
    run,
    why_not,
)
from weltklassebot.fastpath.stats import BarArrays

__all__ = ["BarArrays", "Bars", "FallBack", "FastResult", "available", "equity_hash", "prepare",
           "records", "run", "warm", "why_not"]
