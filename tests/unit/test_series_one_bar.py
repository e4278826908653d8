"""Engine series fed one bar at a time (a live step) give exactly what whole chunks give."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weltklassebot.strategy.series import CrossSeries, RollingSumSeries, SeriesSet


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
