"""The donchian strategy's channel: the extremes and saved states of a RollingMax / RollingMin
pair (so runs saved with those indicators resume), and loading any such state continues
exactly."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from weltklassebot.strategy.builtin.donchian_breakout import _Channel
from weltklassebot.strategy.indicators import RollingMax, RollingMin

bars = st.lists(st.tuples(st.integers(-50, 50), st.integers(-50, 50)), max_size=60)
windows = st.integers(1, 9)


@settings(max_examples=200)
@given(bars, windows)
def test_channel_equals_rolling_max_and_min_and_their_saved_states(
        rows: list[tuple[int, int]], window: int) -> None:
    channel, hi, lo = _Channel(window), RollingMax(window), RollingMin(window)
    for high, low in rows:
        channel.update(high, low)
        assert (channel.high, channel.low) == (hi.update(high), lo.update(low))
        assert (channel.count >= window) == hi.ready
        assert channel.states() == (hi.state(), lo.state())


@settings(max_examples=200)
@given(bars, bars, windows)
def test_loading_a_saved_pair_continues_exactly(
        before: list[tuple[int, int]], after: list[tuple[int, int]], window: int) -> None:
    hi, lo = RollingMax(window), RollingMin(window)
    for high, low in before:
        hi.update(high)
        lo.update(low)
    channel = _Channel(window)
    channel.load_states(hi.state(), lo.state())
    assert channel.states() == (hi.state(), lo.state())
    for high, low in after:
        channel.update(high, low)
        assert (channel.high, channel.low) == (hi.update(high), lo.update(low))
        assert channel.states() == (hi.state(), lo.state())
