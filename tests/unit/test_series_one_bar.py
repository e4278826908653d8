"""Engine series fed one bar at a time (a live step) give exactly what whole chunks give."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weltklassebot.strategy.series import (
    ChangedSeries,
    CrossSeries,
    RollingMaxSeries,
    RollingMinSeries,
    RollingSumSeries,
    Series,
    SeriesSet,
)


def declare(fast: int, slow: int) -> SeriesSet:
    series = SeriesSet()
    a = RollingSumSeries("close", fast)
    b = RollingSumSeries("close", slow)
    for item in (a, b, CrossSeries(a, b)):
        series.add(item)
    return series


def columns(values: np.ndarray) -> dict[str, np.ndarray]:
    return dict.fromkeys(("open", "high", "low", "close"), values)


@pytest.mark.parametrize("huge", [False, True])
@pytest.mark.parametrize("fast", [1, 2, 5, 30])
def test_one_bar_at_a_time_equals_whole_chunks(fast: int, huge: bool) -> None:
    rng = np.random.default_rng(fast)
    ints = [int(v) * (10**17 if huge else 1) for v in rng.integers(1000, 2000, 300)]
    closes = np.array(ints, dtype=object if huge else np.int64)
    whole = declare(fast, fast + 7).evaluate(columns(closes))
    stepped = declare(fast, fast + 7)
    got: list[list[tuple[int, bool]]] = [[], [], []]
    for i in range(closes.size):
        for k, (_series, values, ready) in enumerate(stepped.evaluate(columns(closes[i:i + 1]))):
            got[k].append((int(values[0]), bool(ready[0])))
    for k, (_series, whole_values, whole_ready) in enumerate(whole):
        assert got[k] == [(int(v), bool(r)) for v, r in zip(
            whole_values.tolist(), whole_ready.tolist(), strict=True)]
    assert any(v for v, _ in got[2])  # the data crosses


@settings(max_examples=60, deadline=None)
@given(window=st.integers(1, 12), sizes=st.lists(st.integers(1, 9), min_size=1, max_size=25),
       huge=st.booleans(), saved_at=st.integers(0, 24))
def test_chunks_and_single_bars_mixed_equal_one_whole_chunk(
        window: int, sizes: list[int], huge: bool, saved_at: int) -> None:
    """A series stepped by any mix of chunks and single bars (the engine switches when a live
    service replays a backlog), and saved and loaded on the way, sums what one chunk sums."""
    total = sum(sizes)
    rng = np.random.default_rng(window + total)
    ints = [int(v) * (10**17 if huge else 1) for v in rng.integers(-50, 2000, total)]
    closes = np.array(ints, dtype=object if huge else np.int64)
    whole = declare(window, window + 3).evaluate(columns(closes))
    stepped = declare(window, window + 3)
    got: list[list[tuple[int, bool]]] = [[], [], []]
    start = 0
    for step, size in enumerate(sizes):
        part = closes[start:start + size]
        start += size
        if size == 1:
            results = [(series, [v], [r]) for series, v, r in
                       stepped.evaluate_one({"close": int(part[0]), "open": 0, "high": 0,
                                             "low": 0, "volume": 0.0, "ts": 0})]
        else:
            results = [(s, v.tolist(), r.tolist()) for s, v, r in stepped.evaluate(columns(part))]
        for k, (_series, values, ready) in enumerate(results):
            got[k].extend((int(v), bool(r)) for v, r in zip(values, ready, strict=True))
        if step == saved_at:  # the kernels' saved state goes on exactly in fresh series
            saved = [item.kernel_state() for item in stepped.items]
            stepped = declare(window, window + 3)
            for item, state in zip(stepped.items, saved, strict=True):
                item.load_kernel_state(state)
    for k, (_series, whole_values, whole_ready) in enumerate(whole):
        assert got[k] == [(int(v), bool(r)) for v, r in zip(
            whole_values.tolist(), whole_ready.tolist(), strict=True)]


class _Range(Series):
    """High minus low, with its own plain one-bar step."""

    def compute(self, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return columns["high"] - columns["low"], np.ones(columns["high"].size, dtype=bool)

    def one(self, row: dict[str, Any]) -> tuple[Any, bool]:
        return row["high"] - row["low"], True


class _Body(Series):
    """Close minus open, ready from the third bar on: a kernel without a plain path."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def compute(self, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        n = columns["close"].size
        ready = self.seen + np.arange(1, n + 1) >= 3
        self.seen += n
        return columns["close"] - columns["open"], ready


def every_kind() -> SeriesSet:
    series = SeriesSet()
    a, b = RollingSumSeries("close", 3), RollingSumSeries("open", 5)
    high, low = RollingMaxSeries("high", 4), RollingMinSeries("low", 6)
    for item in (a, b, CrossSeries(a, b), high, low, ChangedSeries((high, low)), _Range(),
                 _Body()):
        series.add(item)
    return series


def test_every_kind_of_series_one_bar_at_a_time_equals_a_whole_chunk() -> None:
    """Sums, extremes, a cross, changed(), a series with its own one-bar step and one with
    only a kernel: stepped bar by bar, each gives what the whole chunk gives."""
    rng = np.random.default_rng(3)
    n = 200
    close = rng.integers(1000, 1010, n)
    open_ = np.concatenate(([1000], close[:-1]))
    high = np.maximum(open_, close) + rng.integers(0, 3, n)
    low = np.minimum(open_, close) - rng.integers(0, 3, n)
    cols = {"open": open_, "high": high, "low": low, "close": close}
    whole = every_kind().evaluate(cols)
    stepped = every_kind()
    got: list[list[tuple[int, bool]]] = [[] for _ in whole]
    for i in range(n):
        row = {name: int(values[i]) for name, values in cols.items()}
        for k, (_series, value, is_ready) in enumerate(
                stepped.evaluate_one(dict(row, volume=1.5, ts=i))):
            got[k].append((int(value), bool(is_ready)))
    for k, (_series, values, ready) in enumerate(whole):
        assert got[k] == [(int(v), bool(r)) for v, r in zip(values.tolist(), ready.tolist(),
                                                              strict=True)], k
    assert any(v for v, _ in got[2])  # the sums cross
    assert any(v for v, _ in got[5][1:])  # the extremes change


def test_a_series_declared_between_bars_is_stepped_from_then_on() -> None:
    stepped = declare(2, 3)
    bar = {"open": 0, "high": 0, "low": 0, "volume": 0.0, "ts": 0}
    for close in (10, 20):
        stepped.evaluate_one(dict(bar, close=close))
    late = RollingSumSeries("close", 2)
    stepped.add(late)
    got = [stepped.evaluate_one(dict(bar, close=close))[-1] for close in (30, 40, 50)]
    assert got == [(late, 30, False), (late, 70, True), (late, 90, True)]


@pytest.mark.parametrize("kind", [RollingSumSeries, RollingMaxSeries])
@pytest.mark.parametrize(("tail", "seen"), [([1, 2, 3], 3), ([1], 3), ([1, 2], -1)])
def test_a_saved_tail_that_disagrees_with_the_bars_seen_is_refused(
        kind: type[RollingSumSeries] | type[RollingMaxSeries], tail: list[int],
        seen: int) -> None:
    """A window of 3 keeps the last min(seen, 2) values; any other saved tail is damage."""
    series = kind("close", 3)
    state = dict(series.kernel_state(), tail=tail, seen=seen)
    with pytest.raises(ValueError, match="the saved state is damaged"):
        series.load_kernel_state(state)
    series.load_kernel_state(dict(state, tail=[1, 2], seen=5))  # a consistent one loads
    assert series.kernel_state()["seen"] == 5
