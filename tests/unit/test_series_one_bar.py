"""Engine series fed one bar at a time (a live step) give exactly what whole chunks give."""

from __future__ import annotations

import numpy as np
import pytest

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
    for k, (_series, values, ready) in enumerate(whole):
        assert got[k] == [(int(v), bool(r)) for v, r in zip(values.tolist(), ready.tolist(),
                                                             strict=True)]
    assert any(v for v, _ in got[2])  # the data crosses
