"""Integer nanoseconds since the Unix epoch, UTC: the only representation of time in the core."""

from __future__ import annotations

from datetime import UTC, datetime

NS_PER_SECOND = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_SECOND
NS_PER_HOUR = 60 * NS_PER_MINUTE
NS_PER_DAY = 24 * NS_PER_HOUR
NS_PER_YEAR = 365 * NS_PER_DAY + NS_PER_DAY // 4  # Julian year, for annualising statistics


def ns_to_iso(ts_ns: int) -> str:
    """ISO 8601 text in UTC with a ``Z``; sub-second digits only when present."""
    seconds, nanos = divmod(int(ts_ns), NS_PER_SECOND)
    base = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        return f"{base}.{nanos:09d}".rstrip("0") + "Z"
    return base + "Z"


def ns_to_basic(ts_ns: int) -> str:
    """ISO 8601 basic form with microseconds, e.g. ``20261124T153000.123456Z`` (snapshot names)."""
    seconds, nanos = divmod(int(ts_ns), NS_PER_SECOND)
    base = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y%m%dT%H%M%S")
    return f"{base}.{nanos // 1000:06d}Z"


def format_duration(ns: int) -> str:
    """Short human text for a duration: ``1h``, ``15m``, ``1d``, ``250ms``."""
    units = (("d", NS_PER_DAY), ("h", NS_PER_HOUR), ("m", NS_PER_MINUTE), ("s", NS_PER_SECOND),
             ("ms", 1_000_000), ("us", 1_000), ("ns", 1))
    for name, size in units:
        if ns >= size and ns % size == 0:
            return f"{ns // size}{name}"
    return f"{ns}ns"


def parse_duration(text: str) -> int:
    """Parse ``1h``, ``15m``, ``30s``, ``1d``, ``250ms``, ``10us``, ``5ns`` (or plain ns) to ns."""
    text = text.strip().lower()
    for suffix, size in (("ms", 1_000_000), ("us", 1_000), ("ns", 1), ("d", NS_PER_DAY),
                         ("h", NS_PER_HOUR), ("m", NS_PER_MINUTE), ("s", NS_PER_SECOND)):
        if text.endswith(suffix):
            number = text[: -len(suffix)]
            if number.isdigit():
                return int(number) * size
            break
    if text.isdigit():
        return int(text)
    raise ValueError(f"not a duration: {text!r} (use e.g. 1h, 15m, 30s, 1d, 250ms)")
