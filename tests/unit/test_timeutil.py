"""core/timeutil.py and core/clock.py: integer nanoseconds, durations, the event clock."""

from __future__ import annotations

import pytest

from weltklassebot.core.clock import SimClock
from weltklassebot.core.timeutil import (
    NS_PER_DAY,
    NS_PER_HOUR,
    format_duration,
    ns_to_basic,
    ns_to_iso,
    parse_duration,
)

T = 1_704_067_200 * 10**9  # 2024-01-01T00:00:00Z


@pytest.mark.parametrize(
    ("ns", "text"),
    [(T, "2024-01-01T00:00:00Z"), (T + 1, "2024-01-01T00:00:00.000000001Z"),
     (T + 500_000_000, "2024-01-01T00:00:00.5Z"), (0, "1970-01-01T00:00:00Z"),
     (-NS_PER_DAY, "1969-12-31T00:00:00Z")],
)
def test_ns_to_iso(ns: int, text: str) -> None:
    assert ns_to_iso(ns) == text


def test_ns_to_basic() -> None:
    assert ns_to_basic(T + 123_456_789) == "20240101T000000.123456Z"


@pytest.mark.parametrize(
    ("text", "ns"),
    [("1h", NS_PER_HOUR), ("15m", 15 * 60 * 10**9), ("30s", 30 * 10**9), ("1d", NS_PER_DAY),
     ("250ms", 250_000_000), ("10us", 10_000), ("5ns", 5), ("42", 42), (" 2H ", 2 * NS_PER_HOUR)],
)
def test_parse_duration(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["", "h", "1.5h", "-1h", "1w", "soon"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("ns", "text"),
    [(NS_PER_DAY, "1d"), (NS_PER_HOUR, "1h"), (90 * 60 * 10**9, "90m"), (1_500_000, "1500us"),
     (7, "7ns"), (0, "0ns")],
)
def test_format_duration(ns: int, text: str) -> None:
    assert format_duration(ns) == text
    if ns:
        assert parse_duration(text) == ns


def test_sim_clock_only_moves_forward() -> None:
    clock = SimClock(10)
    assert clock.now_ns() == 10
    clock.advance_to(10)
    clock.advance_to(20)
    assert clock.now_ns() == 20
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance_to(19)
