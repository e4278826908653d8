"""Engine-computed rolling extremes and ``changed``: whatever the chunking (one bar at a time as
a live step, or chunks of any size), and across a saved and restored kernel state, they equal
the plain ``RollingMax`` / ``RollingMin`` indicators fed bar by bar, exactly (int64 and values
beyond it)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weltklassebot.strategy.indicators import RollingMax, RollingMin
from weltklassebot.strategy.series import (
    ChangedSeries,
    RollingMaxSeries,
    RollingMinSeries,
    SeriesSet,
)


def declare(window: int) -> SeriesSet:
    series = SeriesSet()
    high = RollingMaxSeries("high", window)
    low = RollingMinSeries("low", window)
    for item in (high, low, ChangedSeries((high, low))):
        series.add(item)
    return series


def expected(highs: list[int], lows: list[int], window: int) -> list[list[tuple[int, bool]]]:
    hi, lo = RollingMax(window), RollingMin(window)
    top = [(hi.update(h), hi.ready) for h in highs]
    bottom = [(lo.update(v), lo.ready) for v in lows]
    changed, before = [], None
    for now in zip(top, bottom, strict=True):
        changed.append((int(now != before), True))
        before = now
    return [top, bottom, changed]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(-60, 60), st.integers(-60, 60)), max_size=70),
       st.integers(1, 12), st.lists(st.integers(1, 9), min_size=1, max_size=20),
       st.booleans(), st.integers(0, 70))
def test_chunked_and_restored_equal_the_indicators(rows: list[tuple[int, int]], window: int,
                                                   cuts: list[int], huge: bool,
                                                   save_at: int) -> None:
    scale = 10**17 if huge else 1  # beyond int64 once multiplied: the object-array path
    highs = [h * scale for h, _ in rows]
    lows = [v * scale for _, v in rows]
    dtype = object if huge else np.int64
    series = declare(window)
    got: list[list[tuple[int, bool]]] = [[], [], []]
    i = k = 0
    while i < len(rows):
        if 0 <= save_at <= i:
            # Continue in a new set from the kernels' saved plain data.
            saved = json.loads(json.dumps([item.kernel_state() for item in series.items]))
            series = declare(window)
            for item, state in zip(series.items, saved, strict=True):
                item.load_kernel_state(state)
            save_at = -1
        size = cuts[k % len(cuts)]
        k += 1
        cols = {"open": np.array(highs[i:i + size], dtype=dtype),
                "high": np.array(highs[i:i + size], dtype=dtype),
                "low": np.array(lows[i:i + size], dtype=dtype),
                "close": np.array(lows[i:i + size], dtype=dtype)}
        for slot, (_item, values, ready) in enumerate(series.evaluate(cols)):
            got[slot] += [(int(v), bool(r)) for v, r in zip(values.tolist(), ready.tolist(),
                                                            strict=True)]
        i += size
    assert got == expected(highs, lows, window)


def test_a_saved_state_of_another_series_is_refused() -> None:
    state = RollingMaxSeries("high", 5).kernel_state()
    with pytest.raises(ValueError, match=r"rolling_max\(high, 5\) is not rolling_min"):
        RollingMinSeries("high", 5).load_kernel_state(state)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(-60, 60), st.integers(-60, 60)), max_size=50),
       st.integers(1, 12), st.booleans())
def test_one_bar_steps_equal_the_indicators(rows: list[tuple[int, int]], window: int,
                                            huge: bool) -> None:
    """``evaluate_one`` (the engine's path for a one-bar step: plain values, no arrays)."""
    scale = 10**17 if huge else 1
    highs = [h * scale for h, _ in rows]
    lows = [v * scale for _, v in rows]
    series = declare(window)
    got: list[list[tuple[int, bool]]] = [[], [], []]
    for high, low in zip(highs, lows, strict=True):
        row = {"open": high, "high": high, "low": low, "close": low, "volume": 0.0, "ts": 0}
        for slot, (_item, value, ready) in enumerate(series.evaluate_one(row)):
            got[slot].append((value, ready))
    assert got == expected(highs, lows, window)
