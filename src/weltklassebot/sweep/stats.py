"""A cell's statistics from its fills and equity curve in memory.

The same computation as ``runs.results.analyse_run`` (the same functions of ``runs.stats``,
``runs.trades`` and ``runs.results``, in the same order, on the same exact integers), without
its files: a fast-path cell has its fills and curve in memory already, and writing them to
Parquet and ``trades.parquet`` only to read them back cost more than the run itself.
``tests/sweep/test_sweep_local.py`` checks that a cell's statistics equal its backtest's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from weltklassebot.model.instrument import Instrument, MoneySpec
from weltklassebot.model.records import Fill
from weltklassebot.runs.benchmark import MarketTape
from weltklassebot.runs.results import STATS_KEYS, _exposure
from weltklassebot.runs.stats import (
    Annualisation,
    EquityStats,
    infer_periods_per_year,
    number,
    return_stats,
)
from weltklassebot.runs.trades import FillRows, round_trips, trade_stats


def cell_stats(fills: list[Fill], ts: np.ndarray, equity: np.ndarray, *,
               instruments: dict[str, Instrument], money: MoneySpec, initial_cash: int,
               tape: MarketTape, base_interval: int, periods_per_year: float | None,
               fees_paid: int, denials: dict[str, int]) -> dict[str, Any]:
    """``summary.json``'s ``stats`` of a run without risk limits (a fast-path cell)."""
    stats = EquityStats(initial_cash)
    stats.update(ts, equity)
    rows = FillRows([f.ts_ns for f in fills], [f.symbol for f in fills],
                    [f.side for f in fills], [f.price for f in fills], [f.qty for f in fills],
                    [f.fee for f in fills], [f.notional for f in fills])
    trips = round_trips(rows, instruments, tape)
    annual = (Annualisation(float(periods_per_year), "config", "[data] periods_per_year")
              if periods_per_year is not None else infer_periods_per_year(stats, base_interval))
    ppy = annual.periods_per_year
    values = np.asarray(equity, dtype=np.int64).astype(np.float64)
    mean_equity = stats.mean_equity()
    out = {
        **return_stats(stats, ppy),
        **trade_stats(trips, money),
        "exposure": number(_exposure(rows, instruments, tape, np.asarray(ts, np.int64), values)),
        "turnover": number(float(sum(rows.notional)) / mean_equity) if mean_equity > 0
        else None,
        "fees": money.text(fees_paid),
        "periods_per_year": ppy,
        "denials": sum(denials.values()),
        "risk_state_changes": 0,
    }
    return {k: out[k] for k in STATS_KEYS}
