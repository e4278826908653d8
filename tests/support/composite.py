"""A multi-symbol snapshot of real prices on one calendar, for strategies that rank symbols.

The bundled real series barely overlap in time, so a rotation across symbols needs a
composite: the MSFT daily bars of ``tests/data`` (7,983 rows, 1986-2017) without their oldest
``rows % parts`` rows (3 for four parts), cut into ``parts`` consecutive segments of equal
length (1,995 bars each), every segment keeping its own OHLCV rows in order but taking the
timestamps of the last segment (2009-12-10 .. 2017-11-10). The symbols are ``MSFT_A`` (the
oldest segment, from 1986) .. ``MSFT_D`` (the newest, on its real dates): four real price paths
(different price levels, trends and volatility) traded side by side on one calendar. Only the
dates are synthetic; no price is changed. tests/data/README.md describes it for readers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from support.bars import DATA_DIR

MSFT = DATA_DIR / "msft_1d_1986-2017.parquet"
DAY_NS = 86_400 * 10**9
COLUMNS = ("open", "high", "low", "close", "volume")


def composite_symbols(parts: int = 4) -> list[str]:
    """``MSFT_A``, ``MSFT_B``, ... one per segment, oldest first."""
    return [f"MSFT_{chr(ord('A') + k)}" for k in range(parts)]


def composite_table(parts: int = 4, source: Path = MSFT) -> pa.Table:
    """The composite as a bars table in snapshot layout, in (ts, symbol) order."""
    if not 2 <= parts <= 26:
        raise ValueError(f"parts must be 2..26, got {parts}")
    table = pq.read_table(source, columns=["ts", *COLUMNS])
    length = table.num_rows // parts
    first = table.num_rows - parts * length  # the oldest rows that do not fill a segment
    calendar = table.column("ts").slice(first + (parts - 1) * length, length)
    pieces = []
    for k, symbol in enumerate(composite_symbols(parts)):
        segment = table.slice(first + k * length, length)
        pieces.append(pa.table({
            "ts": calendar,
            "symbol": pa.array([symbol] * length, type=pa.string()),
            **{name: segment.column(name) for name in COLUMNS},
        }))
    merged = pa.concat_tables(pieces).sort_by([("ts", "ascending"), ("symbol", "ascending")])
    metadata = {
        "name": f"msft-composite-{parts}",
        "kind": "bars",
        "bar_interval_ns": DAY_NS,
        "ts_convention": "bar_start",
        "quote_currency": "USD",
        "source": f"{source.name}: {parts} consecutive equal segments on the last one's dates",
        "extra": {"composite": {
            "symbols": composite_symbols(parts),
            "segment_rows": length,
            "dropped_oldest_rows": first,
            "segments_first_real_ts": [
                str(table.column("ts")[first + k * length]) for k in range(parts)],
        }},
    }
    return merged.replace_schema_metadata({"weltklassebot": json.dumps(metadata)})


def write_composite(path: Path, parts: int = 4, source: Path = MSFT) -> Path:
    """Write the composite snapshot to ``path`` (a Parquet file the CLI reads) and return it."""
    pq.write_table(composite_table(parts, source), path)
    return path


def segment_closes(parts: int = 4, source: Path = MSFT) -> dict[str, list[float]]:
    """Each composite symbol's closes, in order, straight from the source file (for checks)."""
    table = pq.read_table(source, columns=["close"])
    length = table.num_rows // parts
    first = table.num_rows - parts * length
    closes = table.column("close")
    return {symbol: pc.cast(closes.slice(first + k * length, length), pa.float64()).to_pylist()
            for k, symbol in enumerate(composite_symbols(parts))}


def main(argv: list[str]) -> int:
    """``python -m support.composite OUT.parquet`` (from ``tests/``): write the composite."""
    if len(argv) != 1:
        sys.stderr.write("usage: python -m support.composite OUT.parquet (run from tests/)\n")
        return 2
    sys.stdout.write(f"{write_composite(Path(argv[0]))}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
