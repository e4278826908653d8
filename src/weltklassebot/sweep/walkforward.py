"""Walk-forward: rolling in-sample optimisation, out-of-sample evaluation, the stitched curve.

Windows start at a snapshot's first bar and move by ``--step`` (default: ``--test``): window k
trains on ``[t_k, t_k + train)`` and tests on ``[t_k + train, t_k + train + test)``, for as long
as a test segment has a bar. Periods are calendar periods in UTC (``2y``, ``6m`` months, ``3w``,
``10d``, ``12h``), so a month is a month. Each train and test cell is an ordinary backtest of its
range with ``--warmup`` bars before it fed without trading: ``backtest --start --end --warmup``
reproduces it alone.

In each window the parameter set with the best mean of the chosen statistic over the seeds wins
(higher is better, lower for drawdown, volatility, durations, fees, denials, risk changes and
turnover; an undefined value never wins; a tie goes to the set given first); its test cells run
next. Every test segment starts flat with the initial cash, so the segments are chained by their
returns into one stitched out-of-sample curve per seed: each segment's equity is scaled by the
stitched value the segment before it ended at.
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from weltklassebot.core.timeutil import NS_PER_SECOND, ns_to_iso
from weltklassebot.errors import UsageError
from weltklassebot.runs.results import STATS_KEYS
from weltklassebot.runs.stats import EquityStats, return_stats

LOWER_IS_BETTER = frozenset({"max_drawdown", "max_drawdown_duration_s", "volatility_ann", "fees",
                             "denials", "risk_state_changes", "turnover"})
OPTIMISABLE = tuple(k for k in STATS_KEYS if k != "periods_per_year")
_UNITS = {"y": "years", "m": "months", "mo": "months", "w": "weeks", "d": "days", "h": "hours"}


@dataclass(frozen=True)
class Period:
    """A calendar period: ``count`` of ``unit`` (years, months, weeks, days, hours)."""

    count: int
    unit: str
    text: str

    def add(self, ts_ns: int) -> int:
        seconds, rest = divmod(ts_ns, NS_PER_SECOND)
        moment = datetime.fromtimestamp(seconds, tz=UTC)
        if self.unit in ("years", "months"):
            months = self.count * (12 if self.unit == "years" else 1)
            index = moment.month - 1 + months
            year, month = moment.year + index // 12, index % 12 + 1
            day = min(moment.day, calendar.monthrange(year, month)[1])
            moment = moment.replace(year=year, month=month, day=day)
        else:
            moment = moment + timedelta(**{self.unit: self.count})
        return int(calendar.timegm(moment.timetuple())) * NS_PER_SECOND + rest


def parse_period(text: str, option: str) -> Period:
    value = text.strip().lower()
    for suffix in sorted(_UNITS, key=len, reverse=True):
        number = value[: -len(suffix)]
        if value.endswith(suffix) and number.isdigit() and int(number) > 0:
            return Period(int(number), _UNITS[suffix], text.strip())
    raise UsageError(f"{option} {text!r} is not a period; use a count and a unit: y (years), "
                     "m (months), w (weeks), d (days) or h (hours), e.g. 2y, 6m, 10d.")


@dataclass(frozen=True)
class WalkForwardSpec:
    train: Period
    test: Period
    step: Period
    optimise: str
    warmup: int

    def describe(self) -> dict[str, Any]:
        return {"train": self.train.text, "test": self.test.text, "step": self.step.text,
                "optimise": self.optimise, "warmup": self.warmup}


def make_spec(train: str, test: str, step: str | None, optimise: str,
              warmup: int) -> WalkForwardSpec:
    if optimise not in OPTIMISABLE:
        raise UsageError(f"--optimise {optimise!r} is not a statistic; choose one of "
                         f"{', '.join(OPTIMISABLE)} (docs/statistics.md).")
    spec = WalkForwardSpec(parse_period(train, "--train"), parse_period(test, "--test"),
                           parse_period(step or test, "--step"), optimise, warmup)
    probe = 0  # a test segment longer than the step would overlap the next one
    if spec.step.add(probe) < spec.test.add(probe):
        raise UsageError(f"--step {spec.step.text} is shorter than --test {spec.test.text}: "
                         "out-of-sample segments would overlap and could not be chained. Use "
                         "a step at least as long as the test period.")
    return spec


@dataclass(frozen=True)
class Window:
    number: int  # 1, 2, ...
    train_start: int
    train_end: int
    test_start: int
    test_end: int

    def describe(self) -> dict[str, Any]:
        return {"window": self.number, "train_start": ns_to_iso(self.train_start),
                "train_end": ns_to_iso(self.train_end), "test_start": ns_to_iso(self.test_start),
                "test_end": ns_to_iso(self.test_end)}


def windows(spec: WalkForwardSpec, times: np.ndarray, source: str) -> list[Window]:
    """The windows over bar times ``times`` (sorted): every one whose test segment has a bar."""
    if not times.size:
        raise UsageError(f"{source} has no bars to walk forward over.")
    first, last = int(times[0]), int(times[-1])
    found: list[Window] = []
    start = first
    while True:
        train_end = spec.train.add(start)
        test_end = spec.test.add(train_end)
        if train_end > last:
            break
        has_train = np.searchsorted(times, train_end) > np.searchsorted(times, start)
        if has_train:
            found.append(Window(len(found) + 1, start, train_end, train_end, test_end))
        start = spec.step.add(start)
    if not found:
        raise UsageError(
            f"{source} runs from {ns_to_iso(first)} to {ns_to_iso(last)}: too short for one "
            f"window of --train {spec.train.text} followed by a test segment. Use shorter "
            "periods or more data.")
    return found


def score(stats: dict[str, Any] | None, key: str) -> float | None:
    """A statistic as a number to rank by (higher is better), None when undefined."""
    if stats is None:
        return None
    value = stats.get(key)
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    return -number if key in LOWER_IS_BETTER else number


def choose(candidates: list[tuple[tuple[tuple[str, str], ...], list[dict[str, Any] | None]]],
           key: str) -> tuple[tuple[tuple[str, str], ...], float | None]:
    """The winning parameter set: the best mean score over its seeds (a set whose every seed
    is undefined cannot win; a tie keeps the earlier set). Returns it and its mean value of the
    statistic (in the statistic's own sign)."""
    best: tuple[tuple[str, str], ...] | None = None
    best_score = -math.inf
    for params, stats_list in candidates:
        scores = [s for s in (score(st, key) for st in stats_list) if s is not None]
        if not scores:
            continue
        mean = sum(scores) / len(scores)
        if best is None or mean > best_score:
            best, best_score = params, mean
    if best is None:
        return candidates[0][0], None
    value = -best_score if key in LOWER_IS_BETTER else best_score
    return best, value


def mean_value(stats_list: list[dict[str, Any] | None], key: str) -> float | None:
    values = [float(s[key]) for s in stats_list if s is not None and s.get(key) is not None]
    values = [v for v in values if math.isfinite(v)]
    return sum(values) / len(values) if values else None


def stitch(segments: list[tuple[np.ndarray, np.ndarray]],
           initial: float) -> tuple[np.ndarray, np.ndarray]:
    """Chain out-of-sample segments (each starting at ``initial``) by their returns."""
    ts_parts, value_parts = [], []
    level = 1.0
    for ts, equity in segments:
        if not ts.size:
            continue
        scaled = equity / initial * level
        ts_parts.append(ts)
        value_parts.append(scaled * initial)
        level = float(scaled[-1])
    if not ts_parts:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    return np.concatenate(ts_parts), np.concatenate(value_parts)


def curve_stats(ts: np.ndarray, equity: np.ndarray, initial: float,
                periods_per_year: float) -> dict[str, Any]:
    """The return statistics of a curve (the stitched one), as summary.json defines them."""
    stats = EquityStats(initial)
    stats.update(ts, equity)
    return return_stats(stats, periods_per_year)
