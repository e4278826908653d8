"""The run record: what a backtest seals into ``manifest.json`` and what ``replay`` checks first.

A run directory holds ``manifest.json`` plus the run files of ``RUN_FILES`` and, unless the run
was told not to write one, ``report.html``. The manifest (schema version 3) records each run
file's size and SHA-256 (the report's too, when there is one), exactly one seed (top level; its
``config`` carries none), the equity hash, and ``manifest_sha256``: the SHA-256 of the manifest
file's own bytes with that checksum's 64 hex digits written as zeros, so every byte of the
record is covered. ``verify_record`` checks all of it and also
recomputes the equity hash from ``fills.parquet`` and ``equity.parquet`` exactly as
``engine.equity_hash`` defines it, so a record is refused (exit 2) before any re-run when any of
its bytes changed. The checksums catch damage and edits; a forger who rewrites files and
checksums together is caught by the re-run itself, which then DIVERGES.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from weltklassebot.core.decimal import format_scaled
from weltklassebot.engine.equity_hash import EquityHasher, equity_text, format_scaled_array
from weltklassebot.errors import UnusableInput
from weltklassebot.fsutil import sha256_file

MANIFEST_SCHEMA_VERSION = 3
MANIFEST = "manifest.json"
RUN_FILES = ("summary.json", "fills.parquet", "orders.parquet", "equity.parquet", "events.jsonl",
             "trades.parquet")
REPORT = "report.html"
OPTIONAL_FILES = (REPORT,)
CHECKSUM_KEY = "manifest_sha256"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_ZEROS = "0" * 64
_BATCH = 1 << 16
_FILL_COLUMNS = ("ts", "symbol", "side", "price", "qty", "fee", "order_id", "fill_id")


class TamperedRecord(UnusableInput):
    """The run directory is not the record its run wrote; ``problems`` names each mismatch."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


def _checksum_field(value: str) -> bytes:
    return f'"{CHECKSUM_KEY}": "{value}"'.encode()


def manifest_checksum(raw: bytes, recorded: str) -> str | None:
    """SHA-256 of the manifest bytes with the recorded checksum zeroed; None when the checksum
    field does not occur exactly once as written (then the bytes are not a sealed manifest)."""
    field = _checksum_field(recorded)
    if raw.count(field) != 1:
        return None
    return hashlib.sha256(raw.replace(field, _checksum_field(_ZEROS))).hexdigest()


def file_digests(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Size and SHA-256 of every run file (and of the report, when written), as the manifest
    records them."""
    names = [*RUN_FILES, *(n for n in OPTIONAL_FILES if (run_dir / n).is_file())]
    return {name: {"bytes": (run_dir / name).stat().st_size,
                   "sha256": sha256_file(run_dir / name)} for name in names}


def seal_manifest(manifest: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """The manifest file's bytes with ``manifest_sha256`` last, and the manifest as read back."""
    body = {k: v for k, v in manifest.items() if k != CHECKSUM_KEY}
    body[CHECKSUM_KEY] = _ZEROS
    raw = (json.dumps(body, indent=2, default=str) + "\n").encode("utf-8")
    digest = hashlib.sha256(raw).hexdigest()
    sealed = raw.replace(_checksum_field(_ZEROS), _checksum_field(digest))
    return sealed, json.loads(sealed)


@dataclass(frozen=True)
class VerifiedRecord:
    """A record that passed every check: its manifest and what replay needs from it."""

    manifest: dict[str, Any]
    seed: int
    equity_hash: str
    checks: list[str]


def verify_record(run_dir: Path, *, skip: tuple[str, ...] = ()) -> VerifiedRecord:
    """Check a run directory against its own manifest; raise ``TamperedRecord`` (exit 2) naming
    every file and field that does not match, or ``UnusableInput`` when there is no record.
    ``skip`` names optional files not to check (``report`` writes the report again)."""
    raw, manifest = _load_manifest(run_dir)
    problems: list[str] = []
    recorded = manifest.get(CHECKSUM_KEY)
    computed = None if not isinstance(recorded, str) else manifest_checksum(raw, recorded)
    if not isinstance(recorded, str) or not _HEX64.fullmatch(recorded) or computed is None:
        problems.append(f"{MANIFEST} has no valid {CHECKSUM_KEY} (the checksum of its bytes)")
    elif computed != recorded:
        problems.append(
            f"{MANIFEST} hashes to {computed}, but its {CHECKSUM_KEY} records {recorded}, so "
            "it was changed after the run")
    version = manifest.get("schema_version")
    if version != MANIFEST_SCHEMA_VERSION:
        problems.append(f"{MANIFEST} schema_version is {version!r}; this build reads version "
                        f"{MANIFEST_SCHEMA_VERSION} (replay a newer build's run with that build)")
    problems.extend(_structure_problems(manifest))
    verified = _file_problems(run_dir, manifest.get("files"), problems, skip)
    equity_hash: Any = manifest.get("equity_hash")
    seed: Any = manifest.get("seed")
    if "fills.parquet" in verified and "equity.parquet" in verified:
        try:
            from_files = equity_hash_of_files(run_dir / "fills.parquet",
                                              run_dir / "equity.parquet")
        except RecordFileError as exc:
            problems.append(str(exc))
        else:
            if from_files != equity_hash:
                problems.append(
                    f"fills.parquet and equity.parquet hash to the equity hash {from_files}, but "
                    f"{MANIFEST} records equity_hash {equity_hash}")
    if "summary.json" in verified:
        problems.extend(_summary_problems(run_dir / "summary.json", seed, equity_hash))
    if problems:
        raise TamperedRecord(
            f"replay refused: the record in {run_dir} does not match itself: "
            + "; ".join(problems)
            + ". A damaged or edited record cannot be replayed (--force does not bypass this "
            "check): restore the run directory from a copy, or run the backtest again to get a "
            "new record.", problems)
    recorded_files = manifest.get("files") or {}
    optional = [n for n in OPTIONAL_FILES if n in recorded_files and n not in skip]
    checks = [f"{MANIFEST} checksum",
              f"{len(RUN_FILES) + len(optional)} run files (size and SHA-256)",
              "equity hash recomputed from fills.parquet and equity.parquet",
              "summary.json seed and equity hash"]
    return VerifiedRecord(manifest, seed, equity_hash, checks)  # types checked above


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"the key {key!r} appears twice")
        seen[key] = value
    return seen


def _load_manifest(run_dir: Path) -> tuple[bytes, dict[str, Any]]:
    if not run_dir.is_dir():
        what = "does not exist" if not run_dir.exists() else "is not a directory"
        raise UnusableInput(f"run directory {run_dir} {what}; pass the directory a backtest "
                            "wrote (it holds manifest.json).")
    path = run_dir / MANIFEST
    if not path.is_file():
        raise TamperedRecord(
            f"replay refused: {run_dir} has no {MANIFEST}, so there is no record to replay: it "
            "is not a complete run directory (an interrupted run leaves none), or the manifest "
            "was deleted. Restore it from a copy, or run the backtest again.",
            [f"{MANIFEST} is missing"])
    try:
        raw = path.read_bytes()
        manifest = json.loads(raw.decode("utf-8"), object_pairs_hook=_reject_duplicates)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise TamperedRecord(
            f"replay refused: {path} cannot be read as JSON ({exc}); the record is damaged. "
            "Restore the run directory from a copy, or run the backtest again.",
            [f"{MANIFEST} is not readable JSON"]) from exc
    if not isinstance(manifest, dict):
        raise TamperedRecord(f"replay refused: {path} is not a JSON object; the record is "
                             "damaged. Restore it from a copy, or run the backtest again.",
                             [f"{MANIFEST} is not a JSON object"])
    if manifest.get("schema_version") == 1 and CHECKSUM_KEY not in manifest:
        raise UnusableInput(
            f"{path} has manifest schema version 1, written by an older build: it records two "
            "seeds and no checksums, so its record cannot be verified and this build does not "
            f"replay it. Run the backtest again with this build (its settings are in {path}) "
            "to get a verifiable record.")
    return raw, manifest


def _structure_problems(manifest: dict[str, Any]) -> list[str]:
    """One seed, an equity hash, and the fields replay relies on, of the right types."""
    problems: list[str] = []
    seed = manifest.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**64:
        problems.append(f"{MANIFEST} seed is {seed!r}, not an integer in [0, 2^64)")
    equity_hash = manifest.get("equity_hash")
    if not isinstance(equity_hash, str) or not _HEX64.fullmatch(equity_hash):
        problems.append(f"{MANIFEST} equity_hash is {equity_hash!r}, not 64 lowercase hex digits")
    if manifest.get("kind") not in ("backtest", "live"):
        problems.append(f"{MANIFEST} kind is {manifest.get('kind')!r}, not 'backtest' or "
                        "'live'")
    config = manifest.get("config")
    if not isinstance(config, dict):
        problems.append(f"{MANIFEST} config is missing or not an object")
    elif "seed" in config:
        problems.append(f"{MANIFEST} records a second seed in config.seed "
                        f"({config['seed']!r}); the one seed is the top-level seed")
    for section, key in (("snapshot", "resolved_path"), ("snapshot", "sha256"),
                         ("strategy", "code_hash")):
        block = manifest.get(section)
        if not isinstance(block, dict) or not isinstance(block.get(key), str):
            problems.append(f"{MANIFEST} {section}.{key} is missing or not a string")
    return problems


def _file_problems(run_dir: Path, files: Any, problems: list[str],
                   skip: tuple[str, ...] = ()) -> set[str]:
    """Compare every run file with its recorded size and SHA-256; return the names that match.
    An optional file (the report) is checked when the manifest records it."""
    verified: set[str] = set()
    if not isinstance(files, dict):
        problems.append(f"{MANIFEST} files (each run file's size and SHA-256) is missing")
        return verified
    extra = [n for n in OPTIONAL_FILES if n in files and n not in skip]
    unknown = sorted(set(files) - set(RUN_FILES) - set(OPTIONAL_FILES))
    if unknown:
        problems.append(f"{MANIFEST} files names unknown file(s) {', '.join(unknown)}")
    for name in (*RUN_FILES, *extra):
        entry = files.get(name)
        if (not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str)
                or not isinstance(entry.get("bytes"), int)):
            problems.append(f"{MANIFEST} files.{name} is missing or malformed")
            continue
        path = run_dir / name
        if not path.exists():
            dangling = " (a dangling symbolic link)" if path.is_symlink() else ""
            problems.append(f"{name} is missing{dangling}")
            continue
        if not path.is_file():  # a link to a file is fine: the bytes are what is checked
            problems.append(f"{name} is not a regular file")
            continue
        try:
            size = path.stat().st_size
            digest = sha256_file(path) if size == entry["bytes"] else ""
        except OSError as exc:
            problems.append(f"{name} cannot be read ({exc.strerror})")
            continue
        if size != entry["bytes"]:
            problems.append(f"{name} has {size} bytes, {MANIFEST} records {entry['bytes']}")
        elif digest != entry["sha256"]:
            problems.append(f"{name} has SHA-256 {digest}, {MANIFEST} records {entry['sha256']}")
        else:
            verified.add(name)
    return verified


def _summary_problems(path: Path, seed: Any, equity_hash: Any) -> list[str]:
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"summary.json cannot be read as JSON ({exc})"]
    if not isinstance(summary, dict):
        return ["summary.json is not a JSON object"]
    problems = []
    if summary.get("seed") != seed:
        problems.append(f"summary.json records seed {summary.get('seed')!r}, {MANIFEST} "
                        f"records seed {seed!r}")
    if summary.get("equity_hash") != equity_hash:
        problems.append(f"summary.json records equity_hash {summary.get('equity_hash')}, "
                        f"{MANIFEST} records {equity_hash}")
    return problems


class RecordFileError(Exception):
    """A run file cannot be read as the run wrote it (schema, nulls, not Parquet)."""


def equity_hash_of_files(fills_path: Path, equity_path: Path) -> str:
    """The equity hash of a run, recomputed from its ``fills.parquet`` and ``equity.parquet``.

    The same canonical text as the engine's (``engine.equity_hash``): the header, one line per
    fill in file order, one line per equity point. Decimal columns hold exact values at the
    file's scale; the canonical decimal text does not depend on that scale. Streams in batches.
    """
    hasher = EquityHasher()
    for batch in _batches(fills_path, _FILL_COLUMNS):
        hasher.add_fills(_fill_lines(batch, fills_path.name))
    for batch in _batches(equity_path, ("ts", "equity")):
        ts = _timestamps(batch.column(0), equity_path.name)
        units, scale = _decimal_units(batch.column(1), equity_path.name, "equity")
        hasher.add_equity_text(equity_text(ts, units, scale))
    return hasher.hexdigest()


def _batches(path: Path, columns: tuple[str, ...]) -> Any:
    try:
        handle = pq.ParquetFile(path)
        names = handle.schema_arrow.names
        missing = [c for c in columns if c not in names]
        if missing:
            raise RecordFileError(f"{path.name} lacks the column(s) {', '.join(missing)}")
        for batch in handle.iter_batches(columns=list(columns), batch_size=_BATCH):
            for i, name in enumerate(columns):
                if batch.column(i).null_count:
                    raise RecordFileError(f"{path.name} has an empty {name} value")
            yield batch
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise RecordFileError(f"{path.name} cannot be read as the run's Parquet file "
                              f"({exc})") from exc


def _timestamps(column: pa.Array, name: str) -> np.ndarray:
    if not pa.types.is_timestamp(column.type) or column.type.unit != "ns":
        raise RecordFileError(f"{name} column ts is {column.type}, not timestamp[ns]")
    return np.asarray(column.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def decimal_units(column: pa.Array, name: str, what: str) -> tuple[np.ndarray, int]:
    """Exact integer units of ``10**-scale`` of a decimal128 column (int64, or Python ints
    when a value does not fit), and the scale."""
    return _decimal_units(column, name, what)


def _decimal_units(column: pa.Array, name: str, what: str) -> tuple[np.ndarray, int]:
    """Exact integer units of ``10**-scale`` of a decimal128 column, and the scale."""
    if not pa.types.is_decimal128(column.type):
        raise RecordFileError(f"{name} column {what} is {column.type}, not decimal128")
    scale = int(column.type.scale)
    limbs = np.frombuffer(column.buffers()[1], dtype=np.int64).reshape(-1, 2)
    limbs = limbs[column.offset:column.offset + len(column)]
    low, high = limbs[:, 0], limbs[:, 1]
    if np.array_equal(high, low >> 63):  # every value fits in int64 (little-endian limbs)
        return low.copy(), scale
    values = [int(v.scaleb(scale)) for v in column.to_pylist()]
    return np.asarray(values, dtype=object), scale


def _decimal_text(column: pa.Array, name: str, what: str) -> pa.Array:
    units, scale = _decimal_units(column, name, what)
    if units.dtype == object:
        return pa.array([format_scaled(int(u), scale) for u in units], type=pa.string())
    return format_scaled_array(units, scale)


def _fill_lines(batch: pa.RecordBatch, name: str) -> bytes:
    ts, symbol, side, price, qty, fee, order_id, fill_id = batch.columns
    for what, column in (("symbol", symbol), ("side", side)):
        if not pa.types.is_string(column.type):
            raise RecordFileError(f"{name} column {what} is {column.type}, not string")
    for what, column in (("order_id", order_id), ("fill_id", fill_id)):
        if not pa.types.is_integer(column.type):
            raise RecordFileError(f"{name} column {what} is {column.type}, not an integer")
    columns = [
        pa.array(_timestamps(ts, name)).cast(pa.string()), symbol, side,
        _decimal_text(price, name, "price"), _decimal_text(qty, name, "qty"),
        _decimal_text(fee, name, "fee"), order_id.cast(pa.string()), fill_id.cast(pa.string()),
    ]
    lines = pc.binary_join_element_wise(*columns, ",")
    return "".join(f"{line}\n" for line in lines.to_pylist()).encode()
