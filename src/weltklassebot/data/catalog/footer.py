"""Facts about a snapshot read from its Parquet footer: rows, kind, time range, symbols."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from weltklassebot.core.timeutil import NS_PER_SECOND, ns_to_iso


def footer_facts(path: Path) -> dict[str, Any]:
    """Rows, kind, first and last time, symbols and bar interval, mostly from the footer."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from weltklassebot.data.schema import KIND_BARS, KIND_TRADES, meta_from_schema_metadata

    parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow
    meta = meta_from_schema_metadata(schema.metadata)
    names = schema.names
    kind = meta.kind if meta is not None else (
        KIND_TRADES if "open" not in names and "price" in names else KIND_BARS)
    facts: dict[str, Any] = {"rows": parquet.metadata.num_rows, "kind": kind}
    ts_min: int | None = None
    ts_max: int | None = None
    if "ts" in names:
        index = names.index("ts")
        ts_type = schema.field("ts").type
        per_unit = {"s": NS_PER_SECOND, "ms": 1_000_000, "us": 1_000, "ns": 1}
        unit = per_unit.get(getattr(ts_type, "unit", "ns"), 1)
        for group in range(parquet.metadata.num_row_groups):
            column = parquet.metadata.row_group(group).column(index)
            stats = column.statistics
            if stats is None or not stats.has_min_max:
                ts_min = ts_max = None
                break
            lo, hi = int(stats.min_raw) * unit, int(stats.max_raw) * unit
            ts_min = lo if ts_min is None else min(ts_min, lo)
            ts_max = hi if ts_max is None else max(ts_max, hi)
        if ts_min is None and parquet.metadata.num_rows:
            column = parquet.read(columns=["ts"]).column("ts")
            as_int = pc.cast(column, pa.timestamp("ns", tz="UTC")).cast(pa.int64())
            ts_min = int(pc.min(as_int).as_py())
            ts_max = int(pc.max(as_int).as_py())
    facts["ts_min"] = ns_to_iso(ts_min) if ts_min is not None else None
    facts["ts_max"] = ns_to_iso(ts_max) if ts_max is not None else None
    if "symbol" in names:
        symbols = pc.unique(parquet.read(columns=["symbol"]).column("symbol")).to_pylist()
        facts["symbols"] = sorted(str(s) for s in symbols if s is not None)
    else:
        facts["symbols"] = [meta.symbol] if meta is not None and meta.symbol else []
    if meta is not None and meta.bar_interval_ns:
        facts["bar_interval_ns"] = meta.bar_interval_ns
    return facts
