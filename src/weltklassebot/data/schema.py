"""Snapshot schema: required columns per data kind and the ``weltklassebot`` metadata record."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

META_KEY = "weltklassebot"
META_SCHEMA_VERSION = 1

BAR_COLUMNS: tuple[str, ...] = ("ts", "open", "high", "low", "close", "volume")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
TRADE_COLUMNS: tuple[str, ...] = ("ts", "price", "size", "side")

KIND_BARS = "bars"
KIND_TRADES = "trades"


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
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("metadata is not a JSON object")
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        values = {k: raw[k] for k in known if k in raw}
        extra = dict(raw.get("extra") or {})
        # Files written by other tools keep their own keys (e.g. instrument, timeframe): keep them.
        for key, value in raw.items():
            if key not in known and key not in ("extra", "schema_version"):
                extra[key] = value
        for key in ("price_increment", "quantity_increment"):
            if values.get(key) is not None:
                values[key] = str(values[key])
        if values.get("bar_interval_ns") is not None:
            values["bar_interval_ns"] = int(values["bar_interval_ns"])
        return cls(**values, extra=extra)


def meta_from_schema_metadata(metadata: dict[bytes, bytes] | None) -> SnapshotMeta | None:
    """Parse our metadata record from Arrow schema metadata; ``None`` when absent or unreadable."""
    if not metadata or META_KEY.encode() not in metadata:
        return None
    try:
        return SnapshotMeta.from_json(metadata[META_KEY.encode()])
    except (ValueError, TypeError):
        return None


def read_meta(path: Path) -> SnapshotMeta | None:
    """Read only the footer of ``path`` and return its metadata record, if any."""
    schema = pq.read_schema(path)
    return meta_from_schema_metadata(schema.metadata)
