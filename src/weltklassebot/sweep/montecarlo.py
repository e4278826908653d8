"""Monte Carlo over seeds: the spread of each statistic across the seeds of the stochastic fill
models (slippage, latency jitter), per snapshot and parameter set.

Quantiles are NumPy's default (linear interpolation between order statistics); money
statistics are read as numbers for this; undefined values (a Sharpe ratio of a flat curve) are
left out and counted.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from weltklassebot.config.model import BacktestConfig
from weltklassebot.runs.results import STATS_KEYS

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def spread(stats_list: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per statistic: count, undefined, mean, std, min, the quantiles and max."""
    out: dict[str, dict[str, Any]] = {}
    for key in STATS_KEYS:
        raw = [s.get(key) for s in stats_list]
        values = np.array([float(v) for v in raw if v is not None and math.isfinite(float(v))],
                          dtype=np.float64)
        entry: dict[str, Any] = {"n": int(values.size), "undefined": len(raw) - int(values.size)}
        if values.size:
            entry.update({"mean": _num(values.mean()),
                          "std": _num(values.std(ddof=1)) if values.size > 1 else None,
                          "min": _num(values.min()), "max": _num(values.max())})
            for q, value in zip(QUANTILES, np.quantile(values, QUANTILES), strict=True):
                entry[f"q{round(q * 100):02d}"] = _num(value)
        out[key] = entry
    return out


def _num(value: Any) -> float:
    return float(f"{float(value):.12g}")


def stochastic_sources(config: BacktestConfig) -> list[str]:
    """What the seed changes in this config; empty: every seed gives the same run."""
    sources = []
    if config.execution.slippage.model == "stochastic":
        sources.append("stochastic slippage")
    if config.execution.latency.jitter:
        sources.append("latency jitter")
    return sources
