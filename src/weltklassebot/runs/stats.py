"""Return statistics of an equity curve, accumulated chunk by chunk (bounded memory).

Returns are the simple returns of consecutive equity points, the first one measured from the
initial equity. Annualisation uses ``periods_per_year``, observed in the data's own timestamps
(``infer_periods_per_year``) unless the config sets it. Definitions follow the conventions of
empyrical (the tests compare every value with it on real data to 1e-9 relative):

* ``volatility_ann`` = std(returns, ddof=1) * sqrt(P)
* ``sharpe`` = mean / std(ddof=1) * sqrt(P), risk-free rate 0
* ``sortino`` = mean / sqrt(mean(min(r, 0)^2)) * sqrt(P), target 0
* ``cagr`` = (final / initial) ** (P / n) - 1 (n returns span n / P years)
* ``max_drawdown`` = max over points of (peak - equity) / peak, the peak starting at the initial
  equity; positive (0.25 is a 25 % fall)
* ``calmar`` = cagr / max_drawdown
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from weltklassebot.core.timeutil import NS_PER_DAY, NS_PER_SECOND, NS_PER_YEAR

TRADING_DAYS = 252.0
CALENDAR_DAYS = 365.25
WEEK_NS = 7 * NS_PER_DAY


class EquityStats:
    """Running peak, drawdown (depth and duration) and the moments of the returns.

    The mean and the sum of squared deviations are merged chunk by chunk (Chan et al.), so the
    variance keeps its precision over millions of points; the per-day counts and the spacing
    of the timestamps are kept for ``infer_periods_per_year``.
    """

    def __init__(self, initial_equity: float) -> None:
        self.initial = initial_equity
        self.peak: float = initial_equity
        self.prev: float = initial_equity
        self.last: float = initial_equity
        self.max_drawdown = 0.0
        self.max_drawdown_ts: int | None = None
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.down_sq = 0.0
        self.equity_sum = 0.0
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.peak_ts: int | None = None
        self.underwater = False
        self.max_dd_duration_ns = 0
        self.day_counts: dict[int, int] = {}
        self.spacing: dict[int, int] = {}

    def update(self, ts: np.ndarray, equity: np.ndarray) -> np.ndarray:
        """Feed one chunk; return its drawdown column (float64)."""
        if equity.size == 0:
            return np.zeros(0, dtype=np.float64)
        ts = np.asarray(ts, dtype=np.int64)
        values = equity.astype(np.float64)  # Python ints (object) too: each the nearest double
        if self.first_ts is None:
            self.first_ts = int(ts[0])
            self.peak_ts = int(ts[0])
        running = np.maximum.accumulate(np.concatenate(([float(self.peak)], values)))
        peaks = running[1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            drawdown = np.where(peaks > 0, (peaks - values) / peaks, 0.0)
        worst = int(np.argmax(drawdown))
        if drawdown[worst] > self.max_drawdown:
            self.max_drawdown = float(drawdown[worst])
            self.max_drawdown_ts = int(ts[worst])
        self._durations(ts, values, running[:-1])
        previous = np.concatenate(([float(self.prev)], values[:-1]))
        with np.errstate(divide="ignore", invalid="ignore"):
            returns = np.where(previous != 0, values / previous - 1.0, 0.0)
        self._moments(returns)
        self.down_sq += float(np.square(np.minimum(returns, 0.0)).sum())
        self.equity_sum += float(values.sum())
        self._calendar(ts)
        top = equity.max()
        self.peak = max(self.peak, int(top) if equity.dtype.kind in "iuO" else float(top))
        self.prev = self.last = (int(equity[-1]) if equity.dtype.kind in "iuO"
                                 else float(equity[-1]))
        return np.asarray(drawdown, dtype=np.float64)

    def _moments(self, returns: np.ndarray) -> None:
        k = int(returns.size)
        mean_k = float(returns.mean())
        m2_k = float(np.square(returns - mean_k).sum())
        n = self.count
        total = n + k
        delta = mean_k - self.mean
        self.mean += delta * k / total
        self.m2 += m2_k + delta * delta * n * k / total
        self.count = total

    def _durations(self, ts: np.ndarray, values: np.ndarray, before: np.ndarray) -> None:
        """Longest time from a peak to the next point at or above it (or to the last point
        while a drawdown lasts): ``before`` is each point's running peak before it."""
        regained = values >= before  # a new peak, or back at the old one
        at = np.flatnonzero(regained)
        peak_ts = self.peak_ts if self.peak_ts is not None else int(ts[0])
        if at.size:
            since = np.concatenate(([peak_ts], ts[at][:-1]))  # the peak each one ends
            # A spell counts only when the point before the regaining one was under water.
            was_under = np.concatenate(([self.underwater], ~regained[:-1]))[at]
            spans = (ts[at] - since)[was_under]
            if spans.size:
                self.max_dd_duration_ns = max(self.max_dd_duration_ns, int(spans.max()))
            peak_ts = int(ts[at[-1]])
        self.underwater = not bool(regained[-1])
        if self.underwater:
            self.max_dd_duration_ns = max(self.max_dd_duration_ns, int(ts[-1]) - peak_ts)
        self.peak_ts = peak_ts

    def _calendar(self, ts: np.ndarray) -> None:
        days, counts = _distinct(ts // NS_PER_DAY)
        for day, count in zip(days.tolist(), counts.tolist(), strict=True):
            self.day_counts[day] = self.day_counts.get(day, 0) + count
        edges = np.diff(ts if self.last_ts is None else np.concatenate(([self.last_ts], ts)))
        steps, counts = _distinct(edges[edges > 0])
        for step, count in zip(steps.tolist(), counts.tolist(), strict=True):
            self.spacing[step] = self.spacing.get(step, 0) + count
        self.last_ts = int(ts[-1])

    @property
    def std(self) -> float | None:
        return math.sqrt(self.m2 / (self.count - 1)) if self.count >= 2 else None

    def sharpe(self, periods_per_year: float) -> float | None:
        std = self.std
        if std is None or std <= 0 or not math.isfinite(std):
            return None
        return self.mean / std * math.sqrt(periods_per_year)

    def total_return(self) -> float:
        return float(self.last) / float(self.initial) - 1.0 if self.initial else 0.0

    def mean_equity(self) -> float:
        return self.equity_sum / self.count if self.count else float(self.initial)


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_counts=True)`` without its sort when ``values`` is already
    in order (time-ordered days) or one value repeated (regular spacing)."""
    if values.size and (values[0] == values).all():
        return values[:1], np.asarray([values.size])
    if values.size and (values[1:] >= values[:-1]).all():
        firsts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
        return values[firsts], np.diff(np.concatenate((firsts, [values.size])))
    distinct, counts = np.unique(values, return_counts=True)
    return distinct, counts


@dataclass(frozen=True)
class Annualisation:
    """Bars per year used to annualise, and where the figure came from."""

    periods_per_year: float
    source: str  # "data", "config" or "interval"
    rule: str


def infer_periods_per_year(stats: EquityStats, base_interval_ns: int) -> Annualisation:
    """Equity points per year as the data shows them (docs/statistics.md).

    The year has 365.25 days when the data has bars on both Saturdays and Sundays (UTC) in at
    least half of the weeks it spans (a market that never closes), else 252 trading days.
    Intraday data (median spacing under a day): the median number of points per UTC day that
    has any, times those days. Daily data: the days over the median spacing in days; weekly and
    longer: 365.25 days over the median spacing. Fewer than two points: the bar interval.
    """
    if stats.count < 2 or not stats.spacing:
        value = NS_PER_YEAR / base_interval_ns if base_interval_ns > 0 else TRADING_DAYS
        return Annualisation(value, "interval", "calendar year / bar interval")
    days = np.fromiter(stats.day_counts, dtype=np.int64)
    counts = np.fromiter(stats.day_counts.values(), dtype=np.int64)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    weeks = np.unique((days + 3) // 7).size
    saturdays = int(np.count_nonzero(weekday == 5))
    sundays = int(np.count_nonzero(weekday == 6))
    always_open = saturdays * 2 >= weeks and sundays * 2 >= weeks
    year_days = CALENDAR_DAYS if always_open else TRADING_DAYS
    week = "every day of the week" if always_open else "weekdays"
    spacing = _weighted_median(stats.spacing)
    if spacing < NS_PER_DAY:
        per_day = float(np.median(counts))
        return Annualisation(per_day * year_days, "data",
                             f"median {per_day:g} points per UTC day x {year_days:g} days "
                             f"(bars on {week})")
    spacing_days = spacing / NS_PER_DAY
    if spacing < WEEK_NS:
        return Annualisation(year_days / spacing_days, "data",
                             f"{year_days:g} days / {spacing_days:g} days between points "
                             f"(bars on {week})")
    return Annualisation(CALENDAR_DAYS / spacing_days, "data",
                         f"365.25 days / {spacing_days:g} days between points")


def _weighted_median(counts: dict[int, int]) -> int:
    steps = sorted(counts)
    total = sum(counts.values())
    seen = 0
    for step in steps:
        seen += counts[step]
        if seen * 2 >= total:
            return step
    return steps[-1]


def return_stats(stats: EquityStats, periods_per_year: float) -> dict[str, Any]:
    """The returns-based statistics (module docstring), ``None`` where undefined."""
    n = stats.count
    total = stats.total_return()
    std = stats.std
    vol = None if std is None else std * math.sqrt(periods_per_year)
    sharpe = stats.sharpe(periods_per_year)
    downside = math.sqrt(stats.down_sq / n) if n else 0.0
    sortino = (stats.mean / downside * math.sqrt(periods_per_year)
               if n and downside > 0 else None)
    growth = 1.0 + total
    cagr = _annual_growth(growth, periods_per_year / n) if n and growth > 0 else (
        -1.0 if n else None)
    mdd = stats.max_drawdown
    calmar = cagr / mdd if cagr is not None and mdd > 0 else None
    duration = stats.max_dd_duration_ns
    return {
        "total_return": number(total),
        "cagr": number(cagr),
        "volatility_ann": number(vol),
        "sharpe": number(sharpe),
        "sortino": number(sortino),
        "max_drawdown": number(mdd),
        "max_drawdown_duration_s": (duration // NS_PER_SECOND if duration % NS_PER_SECOND == 0
                                    else duration / NS_PER_SECOND),
        "calmar": number(calmar),
    }


def _annual_growth(growth: float, exponent: float) -> float:
    """``growth ** exponent - 1``; infinite (reported as undefined) beyond the float range: a
    gain over a few seconds of one-second bars compounds past 1e308 in a year."""
    try:
        return float(growth ** exponent) - 1.0
    except OverflowError:
        return math.inf


def number(value: float | None) -> float | None:
    """A JSON number to 12 significant digits (far finer than the inputs' precision), or None
    for an undefined or infinite value (JSON has no infinity)."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.12g}")
