"""Summary statistics accumulated chunk by chunk over the equity curve (bounded memory)."""

from __future__ import annotations

import math

import numpy as np

from weltklassebot.core.timeutil import NS_PER_YEAR


class EquityStats:
    """Running peak, drawdown, and per-period returns of the equity curve.

    Drawdown at a point is ``(peak - equity) / peak`` with the peak starting at initial cash;
    Sharpe is the mean over the standard deviation (ddof 1) of simple per-point returns,
    annualised by ``sqrt(points per year)`` at the snapshot's bar interval, risk-free rate 0.
    """

    def __init__(self, initial_equity: int) -> None:
        self.initial = initial_equity
        self.peak = initial_equity
        self.prev = initial_equity
        self.max_drawdown = 0.0
        self.max_drawdown_ts: int | None = None
        self.count = 0
        self.sum = 0.0
        self.sum_sq = 0.0
        self.last = initial_equity

    def update(self, ts: np.ndarray, equity: np.ndarray) -> np.ndarray:
        """Feed one chunk; return its drawdown column (float64)."""
        if equity.size == 0:
            return np.zeros(0, dtype=np.float64)
        values = equity.astype(np.float64) if equity.dtype != object else np.array(
            [float(v) for v in equity], dtype=np.float64)
        peaks = np.maximum.accumulate(np.concatenate(([float(self.peak)], values)))[1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            drawdown = np.where(peaks > 0, (peaks - values) / peaks, 0.0)
        worst = int(np.argmax(drawdown))
        if drawdown[worst] > self.max_drawdown:
            self.max_drawdown = float(drawdown[worst])
            self.max_drawdown_ts = int(ts[worst])
        exact_peak = max(self.peak, int(equity.max()))
        previous = np.concatenate(([float(self.prev)], values[:-1]))
        with np.errstate(divide="ignore", invalid="ignore"):
            returns = np.where(previous != 0, values / previous - 1.0, 0.0)
        self.sum += float(returns.sum())
        self.sum_sq += float(np.square(returns).sum())
        self.count += int(returns.size)
        self.peak = exact_peak
        self.prev = int(equity[-1])
        self.last = int(equity[-1])
        return np.asarray(drawdown, dtype=np.float64)

    def sharpe(self, interval_ns: int) -> float | None:
        if self.count < 2 or interval_ns <= 0:
            return None
        mean = self.sum / self.count
        variance = (self.sum_sq - self.count * mean * mean) / (self.count - 1)
        if variance <= 1e-30:
            return None
        return mean / math.sqrt(variance) * math.sqrt(NS_PER_YEAR / interval_ns)

    def total_return(self) -> float:
        return self.last / self.initial - 1.0 if self.initial else 0.0
