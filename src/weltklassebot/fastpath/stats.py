"""A fast-path run's statistics, computed by the backtest's own code (``runs.stats``,
``runs.trades``, ``runs.results``) from the run's arrays instead of its record files.

The running return statistics are merged per engine step, so the equity curve is fed to
``EquityStats`` in the same pieces a backtest feeds it (``Bars.steps``, else ``STEP_BARS``
from the first bar): the figures are the backtest's to the last bit, not merely close.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from weltklassebot.model.bars import BarChunk
from weltklassebot.model.instrument import Instrument, MoneySpec
from weltklassebot.runs.backtest import STEP_BARS
from weltklassebot.runs.benchmark import MarketTape
from weltklassebot.runs.results import STATS_KEYS, exposure
from weltklassebot.runs.stats import (
    Annualisation,
    EquityStats,
    infer_periods_per_year,
    number,
    return_stats,
)
from weltklassebot.runs.trades import FillRows, exact_sum, round_trips, trade_stats


class BarArrays(Protocol):
    """One symbol's bars as arrays: ``fastpath.Bars`` or a sweep's snapshot arrays."""

    @property
    def ts(self) -> np.ndarray: ...

    @property
    def codes(self) -> np.ndarray | None: ...

    @property
    def open(self) -> np.ndarray: ...

    @property
    def high(self) -> np.ndarray: ...

    @property
    def low(self) -> np.ndarray: ...

    @property
    def close(self) -> np.ndarray: ...

    @property
    def volume(self) -> np.ndarray: ...

    @property
    def instruments(self) -> dict[str, Instrument]: ...

    @property
    def intervals(self) -> dict[str, int]: ...

    def __len__(self) -> int: ...


def market_tape(bars: BarArrays) -> MarketTape:
    """The closes a backtest collects from its bars (for exposure and buy and hold)."""
    tape = MarketTape(bars.instruments)
    tape.add(BarChunk(bars.ts, bars.codes, bars.open, bars.high, bars.low, bars.close,
                      bars.volume))
    return tape


def equity_stats(initial_cash: int, ts: np.ndarray, equity: np.ndarray,
                 steps: tuple[int, ...]) -> EquityStats:
    """``EquityStats`` fed as a backtest feeds it: one update per engine step."""
    stats = EquityStats(initial_cash)
    sizes = steps or tuple(min(STEP_BARS, ts.size - s) for s in range(0, ts.size, STEP_BARS))
    start = 0
    for size in sizes:
        if size:
            stats.update(ts[start:start + size], equity[start:start + size])
        start += size
    if start != ts.size:
        raise ValueError(f"the steps cover {start} bars, the curve has {ts.size}")
    return stats


def run_stats(*, fill_table: dict[str, np.ndarray], symbol: str, ts: np.ndarray,
              equity: np.ndarray, bars: BarArrays, money: MoneySpec, initial_cash: int,
              fees_paid: int, denials: int, periods_per_year: float | None,
              steps: tuple[int, ...], tape: MarketTape) -> dict[str, Any]:
    """The ``stats`` object of summary.json (``runs.results.analyse_run``'s strategy side)
    for a run without risk limits."""
    instruments = bars.instruments
    n = fill_table["ts"].size
    fills = FillRows(fill_table["ts"], np.full(n, symbol, dtype=object), fill_table["side"],
                     fill_table["price"], fill_table["qty"], fill_table["fee"],
                     fill_table["notional"])
    trips = round_trips(fills, instruments, tape)
    curve = equity_stats(initial_cash, ts, equity, steps)
    annual = (Annualisation(float(periods_per_year), "config", "[data] periods_per_year")
              if periods_per_year is not None
              else infer_periods_per_year(curve, min(bars.intervals.values())))
    ppy = annual.periods_per_year
    mean_equity = curve.mean_equity()
    values = equity.astype(np.float64)
    stats = {
        **return_stats(curve, ppy),
        **trade_stats(trips, money),
        "exposure": number(exposure(fills, instruments, tape, ts, values)),
        "turnover": number(float(exact_sum(fills.notional)) / mean_equity) if mean_equity > 0
        else None,
        "fees": money.text(fees_paid),
        "periods_per_year": ppy,
        "denials": denials,
        "risk_state_changes": 0,
    }
    return {key: stats[key] for key in STATS_KEYS}
