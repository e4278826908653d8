"""strategy/indicators.py: incremental, exact, never looking ahead."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weltklassebot.strategy.indicators import RollingMax, RollingMin, RollingSum

values = st.lists(st.integers(-10**15, 10**15), min_size=1, max_size=80)
windows = st.integers(1, 12)


@settings(max_examples=150)
@given(values, windows)
def test_rolling_sum_equals_the_sum_of_the_last_window(xs: list[int], window: int) -> None:
    rolling = RollingSum(window)
    for i, x in enumerate(xs):
        assert rolling.update(x) == sum(xs[max(0, i - window + 1):i + 1])
        assert rolling.sum == sum(xs[max(0, i - window + 1):i + 1])
        assert rolling.ready == (i + 1 >= window)


@settings(max_examples=150)
@given(values, windows)
def test_rolling_extremes_equal_brute_force(xs: list[int], window: int) -> None:
    hi, lo = RollingMax(window), RollingMin(window)
    for i, x in enumerate(xs):
        recent = xs[max(0, i - window + 1):i + 1]
        assert hi.update(x) == max(recent) == hi.value
        assert lo.update(x) == min(recent) == lo.value
        assert hi.ready == lo.ready == (i + 1 >= window)


def test_rolling_max_with_ties_keeps_the_latest_until_it_leaves() -> None:
    hi = RollingMax(3)
    assert [hi.update(v) for v in [5, 5, 1, 1, 1, 7]] == [5, 5, 5, 5, 1, 7]


def test_moving_average_comparison_is_exact_for_ties() -> None:
    # fast(2) of [1, 3] = 2 and slow(4) of [1, 3, 1, 3] = 2: a tie, exactly, as integers.
    fast, slow = RollingSum(2), RollingSum(4)
    for v in [1, 3, 1, 3]:
        fast.update(v)
        slow.update(v)
    assert fast.sum * 4 - slow.sum * 2 == 0


@pytest.mark.parametrize("cls", [RollingSum, RollingMax, RollingMin])
def test_window_must_be_positive(cls: type) -> None:
    with pytest.raises(ValueError, match="window"):
        cls(0)
