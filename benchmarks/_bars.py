"""Seeded synthetic bars for benchmarks: a bounded random walk, written in row groups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

MINUTE_NS = 60_000_000_000


def write_bars(path: Path, n: int, seed: int = 7, row_group: int = 1 << 18) -> Path:
    rng = np.random.Generator(np.random.PCG64(seed))
    schema = pa.schema([("ts", pa.timestamp("ns", tz="UTC")), ("open", pa.float64()),
                        ("high", pa.float64()), ("low", pa.float64()), ("close", pa.float64()),
                        ("volume", pa.float64())])
    start_ts = 1_500_000_000 * 1_000_000_000
    price = 100.0
    walk_start = 0.0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        done = 0
        while done < n:
            m = min(row_group, n - done)
            steps = rng.normal(0.0, 0.002, m)
            # A random walk folded through sin() stays within 60..165 for any length.
            walk = walk_start + np.cumsum(steps)
            closes = 100.0 * np.exp(0.5 * np.sin(walk))
            walk_start = float(walk[-1])
            opens = np.concatenate(([price], closes[:-1]))
            spread = np.abs(rng.normal(0.0, 0.001, m)) * closes
            highs = np.maximum(opens, closes) + spread
            lows = np.minimum(opens, closes) - spread
            ts = start_ts + (np.arange(done, done + m, dtype=np.int64) * MINUTE_NS)
            table = pa.table({
                "ts": pa.array(ts, type=pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
                "open": np.round(opens, 2), "high": np.round(highs, 2),
                "low": np.round(lows, 2), "close": np.round(closes, 2),
                "volume": np.round(rng.uniform(1, 100, m), 4),
            }, schema=schema)
            writer.write_table(table)
            price = float(closes[-1])
            done += m
    return path
