"""Snapshot schema: required columns per data kind and the ``weltklassebot`` metadata record.

The metadata record is checked like data (``check_metadata``): every key the product reads has a
type and a range, and a value outside them is a problem named by key; keys it does not read are
kept (other tools write provenance there) and named, so a misspelt key does not pass unseen.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from difflib import get_close_matches
from pathlib import Path
from typing import Any

META_KEY = "weltklassebot"
META_SCHEMA_VERSION = 1

BAR_COLUMNS: tuple[str, ...] = ("ts", "open", "high", "low", "close", "volume")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
TRADE_COLUMNS: tuple[str, ...] = ("ts", "price", "size", "side")

KIND_BARS = "bars"
KIND_TRADES = "trades"
# DESIGN section 5 calls the second kind "trade ticks"; files written by other tools say so.
KIND_NAMES: dict[str, str] = {KIND_BARS: KIND_BARS, KIND_TRADES: KIND_TRADES,
                              "trade ticks": KIND_TRADES}
TS_CONVENTIONS: tuple[str, ...] = ("bar_start", "trade_time")

# Increments are exact decimals the engine turns into integer ticks through floats: at most
# 18 decimal places and at most 10**18 keep every factor finite and every tick count exact.
MAX_INCREMENT_PLACES = 18
MAX_INCREMENT = Decimal(10) ** 18
INT64_MAX = (1 << 63) - 1

# Keys another tool may write that the product reads when its own key is absent.
FALLBACK_KEYS: tuple[str, ...] = ("instrument", "timeframe")


def parse_increment(value: Any) -> Decimal:
    """A price or quantity increment as an exact positive ``Decimal``; ``ValueError`` says why not.

    Accepts a decimal string (``"0.01"``) or a JSON number; refuses booleans, zero, negatives,
    NaN, infinities, more than 18 decimal places and values above 10**18.
    """
    shown = f"'{value}'" if isinstance(value, Decimal) else _short(value)
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise ValueError(f"{shown} is not a decimal number (write it as text, e.g. \"0.01\")")
    try:
        number = value if isinstance(value, Decimal) else Decimal(
            repr(value) if isinstance(value, float) else str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValueError(f"{shown} is not a decimal number (e.g. \"0.01\")") from None
    if not number.is_finite():
        raise ValueError(f"{shown} is not a finite number")
    if number <= 0:
        raise ValueError(f"{shown} is not > 0")
    if number > MAX_INCREMENT:
        raise ValueError(f"{shown} is above 10**18")
    exponent = number.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_INCREMENT_PLACES:
        raise ValueError(f"{shown} has more than {MAX_INCREMENT_PLACES} decimal places")
    return number


def parse_interval_ns(value: Any) -> int:
    """A bar interval in nanoseconds: a positive integer in int64 range (JSON integer, an
    integral number, or a string of digits); ``ValueError`` says why not."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an integer number of nanoseconds")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise ValueError(f"{value!r} is not an integer number of nanoseconds")
        value = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text.isdigit() or not text.isascii() or len(text) > 19:
            raise ValueError(f"{value!r} is not an integer number of nanoseconds")
        value = int(text)
    if not isinstance(value, int):
        raise ValueError(f"{value!r} is not an integer number of nanoseconds")
    if not 0 < value <= INT64_MAX:
        raise ValueError(f"{value!r} is not in 1 .. {INT64_MAX} (int64 nanoseconds)")
    return value


def parse_timeframe(value: Any) -> int:
    """Another tool's ``timeframe`` (``"1h"``) as nanoseconds; ``ValueError`` says why not."""
    from weltklassebot.core.timeutil import parse_duration

    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a duration text such as \"1h\"")
    try:
        ns = parse_duration(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a duration such as 1h, 15m, 1d") from None
    return parse_interval_ns(ns)


def _text(value: Any, *, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{_short(value)} is not text")
    if not allow_empty and not value.strip():
        raise ValueError("is empty")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Any) -> str:
    if not isinstance(value, str) or value not in KIND_NAMES:
        raise ValueError(f"{_short(value)} is not one of {', '.join(sorted(KIND_NAMES))}")
    return KIND_NAMES[value]


def _ts_convention(value: Any) -> str:
    if not isinstance(value, str) or value not in TS_CONVENTIONS:
        raise ValueError(
            f"{_short(value)} is not one of {', '.join(TS_CONVENTIONS)} (bars are read as "
            "starting at ts; `python -m cli snapshot import` converts end-of-bar times)")
    return value


def _schema_version(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not (
            1 <= value <= META_SCHEMA_VERSION):
        raise ValueError(f"{_short(value)} is not a schema version this weltklassebot reads "
                         f"(1 .. {META_SCHEMA_VERSION})")
    return value


def _extra(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{_short(value)} is not a JSON object")
    return dict(value)


_PARSERS: dict[str, Any] = {
    "symbol": lambda v: _text(v, allow_empty=False),
    "price_increment": lambda v: str(parse_increment(v)),
    "quantity_increment": lambda v: str(parse_increment(v)),
    "quote_currency": lambda v: _text(v, allow_empty=False),
    "bar_interval_ns": parse_interval_ns,
    "ts_convention": _ts_convention,
    "source": _text,
    "kind": _kind,
    "name": _text,
    "extra": _extra,
    "schema_version": _schema_version,
}
KNOWN_KEYS: tuple[str, ...] = tuple(_PARSERS)


@dataclass(frozen=True)
class SnapshotMeta:
    """Provenance and instrument facts stored as JSON under the Parquet schema-metadata key."""

    symbol: str | None = None
    price_increment: str | None = None
    quantity_increment: str | None = None
    quote_currency: str | None = None
    bar_interval_ns: int | None = None
    ts_convention: str = "bar_start"
    source: str | None = None
    kind: str = KIND_BARS
    name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        record = asdict(self)
        record["schema_version"] = META_SCHEMA_VERSION
        return json.dumps(record, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> SnapshotMeta:
        """Parse a record; ``ValueError`` naming every bad key when any is out of range."""
        check = check_metadata(text)
        if check.problems:
            raise ValueError("; ".join(f"{key}: {why}" for key, why in check.problems))
        assert check.meta is not None
        return check.meta


@dataclass(frozen=True)
class MetaCheck:
    """The metadata record as far as it is valid, what is wrong with it, and keys not read."""

    meta: SnapshotMeta | None
    problems: tuple[tuple[str, str], ...] = ()
    unknown: tuple[str, ...] = ()

    def unknown_text(self) -> str | None:
        """One line naming the keys the product does not read (with a likely intended key)."""
        if not self.unknown:
            return None
        parts = []
        for key in self.unknown:
            near = get_close_matches(key, KNOWN_KEYS, n=1, cutoff=0.8)
            parts.append(f"{key} (did you mean {near[0]}?)" if near else key)
        return (f"metadata keys not read by weltklassebot, kept as provenance: "
                f"{', '.join(parts)}")


def check_metadata(text: str | bytes) -> MetaCheck:
    """Check a ``weltklassebot`` metadata record key by key; never raises."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return MetaCheck(None, ((META_KEY, f"is not valid JSON ({_short(str(exc))})"),))
    if not isinstance(raw, dict):
        return MetaCheck(None, ((META_KEY, f"is {type(raw).__name__} JSON, not an object"),))
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for key, parse in _PARSERS.items():
        if raw.get(key) is None:
            continue
        try:
            values[key] = parse(raw[key])
        except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
            problems.append((key, str(exc)))
    extra = values.pop("extra", {})
    values.pop("schema_version", None)
    unknown = tuple(k for k in raw if k not in _PARSERS)
    # Files written by other tools keep their own keys (e.g. instrument, timeframe): keep them.
    for key in unknown:
        extra[key] = raw[key]
    if "instrument" in raw and raw["instrument"] is not None:
        try:
            _text(raw["instrument"], allow_empty=False)
        except ValueError as exc:
            problems.append(("instrument", str(exc)))
    if raw.get("timeframe") is not None and values.get("bar_interval_ns") is None:
        # Read as the bar interval only when bar_interval_ns is absent.
        try:
            parse_timeframe(raw["timeframe"])
        except ValueError as exc:
            problems.append(("timeframe", str(exc)))
    meta = SnapshotMeta(**values, extra=extra)
    return MetaCheck(meta, tuple(problems),
                     tuple(k for k in unknown if k not in FALLBACK_KEYS))


def check_schema_metadata(metadata: dict[bytes, bytes] | None) -> MetaCheck:
    """``check_metadata`` of our key in Arrow schema metadata; no record when absent."""
    if not metadata or META_KEY.encode() not in metadata:
        return MetaCheck(None)
    return check_metadata(metadata[META_KEY.encode()])


def meta_from_schema_metadata(metadata: dict[bytes, bytes] | None) -> SnapshotMeta | None:
    """Our metadata record from Arrow schema metadata; ``None`` when absent or invalid."""
    check = check_schema_metadata(metadata)
    return None if check.problems else check.meta


def meta_interval_ns(meta: SnapshotMeta | None) -> int | None:
    """The bar interval the metadata states: ``bar_interval_ns``, else another tool's
    ``timeframe``; ``None`` when it states none (or states it wrongly: validation says so)."""
    if meta is None:
        return None
    if meta.bar_interval_ns is not None:
        return meta.bar_interval_ns
    if meta.extra.get("timeframe") is not None:
        try:
            return parse_timeframe(meta.extra["timeframe"])
        except ValueError:
            return None
    return None


def read_meta(path: Path) -> SnapshotMeta | None:
    """Read only the footer of ``path`` and return its metadata record, if any."""
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    return meta_from_schema_metadata(schema.metadata)
