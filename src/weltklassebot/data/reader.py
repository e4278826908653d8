"""Open a Parquet snapshot safely and stream it as column batches.

Every way a file can be unusable (missing, empty, truncated, not Parquet, zone-less timestamps,
missing columns) becomes an ``UnusableInput`` naming the file and the fix; a bad row group found
while streaming becomes the same error naming the row group.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from weltklassebot.data.schema import (
    BAR_COLUMNS,
    KIND_BARS,
    KIND_TRADES,
    TRADE_COLUMNS,
    MetaCheck,
    SnapshotMeta,
    check_schema_metadata,
)
from weltklassebot.errors import UnusableInput

DEFAULT_BATCH_ROWS = 1 << 18


@dataclass(frozen=True)
class SnapshotFile:
    """An opened snapshot: its footer facts, kind and metadata; data is read lazily."""

    path: Path
    parquet: pq.ParquetFile
    schema: pa.Schema
    kind: str
    has_symbol: bool
    meta: SnapshotMeta | None
    num_rows: int
    ts_zone: str
    meta_check: MetaCheck = field(default_factory=lambda: MetaCheck(None))
    """The metadata record key by key: validation reports its problems as violations."""

    def iter_batches(
        self, columns: list[str] | None = None, batch_rows: int = DEFAULT_BATCH_ROWS
    ) -> Iterator[pa.RecordBatch]:
        """Yield record batches (row-group streaming; memory stays bounded by ``batch_rows``)."""
        columns = columns or self.schema.names
        try:
            yield from self.parquet.iter_batches(batch_size=batch_rows, columns=columns)
        except (OSError, pa.ArrowException) as exc:
            raise UnusableInput(
                f"snapshot {self.path} could not be read past its footer ({_one_line(exc)}). "
                "The file is damaged or truncated: restore it from the snapshot directory or "
                "re-import it."
            ) from exc


def _one_line(exc: BaseException) -> str:
    """A library's error text as one line (Arrow's messages span several), for one paragraph."""
    return " ".join(str(exc).split())


def open_snapshot(path: Path | str) -> SnapshotFile:
    """Open ``path`` and check what can be checked from the footer: kind, columns, ts type."""
    path = Path(path)
    if not path.exists():
        if path.is_symlink():
            target = os.readlink(path)
            raise UnusableInput(
                f"snapshot {path} is a symbolic link to {target}, which does not exist. Point "
                "it at an existing file, or list snapshots with `python -m cli snapshot list`."
            )
        raise UnusableInput(
            f"snapshot {path} does not exist. Check the path, or list snapshots with "
            "`python -m cli snapshot list`."
        )
    if path.is_dir():
        raise UnusableInput(f"snapshot {path} is a directory; pass a .parquet file.")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UnusableInput(f"snapshot {path} cannot be read: {exc.strerror}.") from exc
    if size == 0:
        raise UnusableInput(
            f"snapshot {path} is empty (0 bytes): the download or copy did not finish. "
            "Fetch it again or re-import it."
        )
    try:
        # pre_buffer=False: read row group by row group, so memory does not grow with the file.
        parquet = pq.ParquetFile(path, pre_buffer=False)
    except PermissionError as exc:
        raise UnusableInput(f"snapshot {path} cannot be read: permission denied.") from exc
    except (OSError, pa.ArrowException) as exc:
        raise UnusableInput(
            f"snapshot {path} is not a readable Parquet file ({_one_line(exc)}). It may be "
            "truncated or in another format: CSV files are turned into snapshots with "
            "`python -m cli snapshot import`."
        ) from exc
    try:
        schema = parquet.schema_arrow
    except (OSError, pa.ArrowException) as exc:
        raise UnusableInput(
            f"snapshot {path} has a Parquet footer whose column types cannot be read "
            f"({_one_line(exc)}). Re-import it with `python -m cli snapshot import`."
        ) from exc
    repeated = sorted(n for n, count in Counter(schema.names).items() if count > 1)
    if repeated:
        raise UnusableInput(
            f"snapshot {path} has more than one column named {', '.join(repeated)}, so which "
            "one holds the data is ambiguous. Rename or drop the extra column(s) and write the "
            "file again."
        )
    meta_check = check_schema_metadata(schema.metadata)
    # The valid part of the record decides the kind; its problems are validation violations.
    meta = meta_check.meta
    names = set(schema.names)
    declared_trades = meta is not None and meta.kind == KIND_TRADES
    looks_like_trades = "open" not in names and {"price", "size"} <= names
    kind = KIND_TRADES if declared_trades or looks_like_trades else KIND_BARS
    required = BAR_COLUMNS if kind == KIND_BARS else TRADE_COLUMNS[:3]
    missing = [c for c in required if c not in names]
    if missing:
        raise UnusableInput(
            f"snapshot {path} has no column(s) {', '.join(missing)}; a {kind} snapshot needs "
            f"{', '.join(required)}{' (+ optional symbol)' if kind == KIND_BARS else ''}. "
            f"Columns found: {', '.join(schema.names)}."
        )
    ts_type = schema.field("ts").type
    if not pa.types.is_timestamp(ts_type):
        raise UnusableInput(
            f"snapshot {path}: column ts has type {ts_type}, not a timestamp. Store ts as a "
            "UTC timestamp (e.g. timestamp[ns, tz=UTC]); `python -m cli snapshot import` "
            "converts epoch numbers and text."
        )
    if ts_type.tz is None:
        raise UnusableInput(
            f"snapshot {path}: column ts is a zone-less timestamp ({ts_type}), so the instant "
            "each bar starts is ambiguous. Re-import it naming the zone, e.g. "
            "`python -m cli snapshot import SRC --name NAME --tz UTC`, or cast ts to "
            "timestamp[ns, tz=UTC] if the times are already UTC."
        )
    for column in (c for c in required if c not in ("ts", "side")):
        col_type = schema.field(column).type
        if not (pa.types.is_floating(col_type) or pa.types.is_integer(col_type)
                or pa.types.is_decimal(col_type)):
            raise UnusableInput(
                f"snapshot {path}: column {column} has type {col_type}; it must be numeric "
                "(float64 recommended)."
            )
    has_symbol = "symbol" in names
    if has_symbol:
        sym_type = schema.field("symbol").type
        if pa.types.is_dictionary(sym_type):
            sym_type = sym_type.value_type
        if not (pa.types.is_string(sym_type) or pa.types.is_large_string(sym_type)):
            raise UnusableInput(
                f"snapshot {path}: column symbol has type {sym_type}; it must be text."
            )
    return SnapshotFile(
        path=path,
        parquet=parquet,
        schema=schema,
        kind=kind,
        has_symbol=has_symbol,
        meta=meta,
        num_rows=parquet.metadata.num_rows,
        ts_zone=str(ts_type.tz),
        meta_check=meta_check,
    )


_NS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def ts_ns_checked(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A timestamp column as int64 ns since the epoch, and a mask of the rows whose instant
    lies outside the int64-nanosecond range (about 1677..2262; their ns are set to 0).

    The stored integers are read in their own unit and scaled here, so a ``timestamp[s]`` in
    the year 9999 is a row to name, not an Arrow overflow error. Nulls read as 0.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    unit = column.type.unit
    raw = pc.fill_null(column.cast(pa.int64()), 0)
    values = np.asarray(raw.to_numpy(zero_copy_only=False), dtype=np.int64)
    scale = _NS_PER_UNIT[unit]
    if scale == 1:
        return values, np.zeros(values.size, dtype=bool)
    outside = (values < INT64_MIN // scale + 1) | (values > INT64_MAX // scale)
    return np.where(outside, 0, values) * scale, outside


def ts_ns_array(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A timestamp column as int64 nanoseconds since the epoch (UTC instants).

    Rows outside the int64-ns range read as 0; validation refuses such files first.
    """
    return ts_ns_checked(column)[0]


def float_array(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numeric column as float64 (nulls become NaN so validation can see them).

    Integers beyond 2**53 and wide decimals become the nearest float64: the tick and range
    rules judge the value, the cast never refuses it.
    """
    as_float = pc.cast(column, pa.float64(), safe=False)
    if isinstance(as_float, pa.ChunkedArray):
        as_float = as_float.combine_chunks()
    return np.asarray(as_float.to_numpy(zero_copy_only=False), dtype=np.float64)


def symbol_list(column: pa.Array | pa.ChunkedArray) -> list[str | None]:
    """Distinct symbols of a column, in first-seen order."""
    return [s for s in pc.unique(column).to_pylist()]
