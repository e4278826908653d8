"""Replay: re-run a recorded backtest from its manifest and compare, fill by fill and point by
point, with what was recorded."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from weltklassebot.config.load import validate_config
from weltklassebot.config.model import BacktestConfig
from weltklassebot.errors import UnusableInput
from weltklassebot.fsutil import sha256_file
from weltklassebot.runs.backtest import RunRequest, execute
from weltklassebot.strategy.loader import resolve_strategy


@dataclass(frozen=True)
class ReplayResult:
    verdict: str  # MATCH or DIVERGED
    recorded_hash: str
    replayed_hash: str
    difference: dict[str, Any] | None
    warnings: list[str]

    def to_json_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "recorded_equity_hash": self.recorded_hash,
                "replayed_equity_hash": self.replayed_hash, "first_difference": self.difference,
                "warnings": self.warnings}


def load_manifest(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "manifest.json"
    if not run_dir.is_dir():
        raise UnusableInput(f"run directory {run_dir} does not exist.")
    if not path.is_file():
        raise UnusableInput(
            f"{run_dir} has no manifest.json: it is not a complete run directory (a run that "
            "failed or was interrupted leaves none)."
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UnusableInput(f"{path} cannot be read as JSON: {exc}.") from exc
    if not isinstance(manifest, dict) or manifest.get("schema_version") != 1:
        raise UnusableInput(f"{path} has an unknown schema version; this build reads version 1.")
    return manifest


def replay(run_dir: Path, *, force: bool = False, out: Path | None = None) -> ReplayResult:
    manifest = load_manifest(run_dir)
    warnings: list[str] = []
    snapshot = Path(manifest["snapshot"]["resolved_path"])
    if not snapshot.is_file():
        raise UnusableInput(
            f"the recorded snapshot {snapshot} no longer exists; restore it (e.g. from the "
            "snapshot directory) to replay this run."
        )
    recorded_sha = manifest["snapshot"]["sha256"]
    actual_sha = sha256_file(snapshot)
    if actual_sha != recorded_sha:
        message = (f"snapshot {snapshot} has SHA-256 {actual_sha}, but the run recorded "
                   f"{recorded_sha}: the data changed, so a replay cannot reproduce the run")
        if not force:
            raise UnusableInput(message + ". Restore the recorded snapshot, or pass --force to "
                                "replay on the changed data anyway.")
        warnings.append(message)
    raw_config = dict(manifest["config"])
    raw_config["data"] = dict(raw_config.get("data") or {}, snapshot=str(snapshot))
    config = validate_config(BacktestConfig, raw_config, f"manifest {run_dir}/manifest.json")
    recorded_strategy = manifest["strategy"]
    spec = resolve_strategy(config.strategy.name, dict(config.strategy.params))
    if spec.code_hash != recorded_strategy["code_hash"]:
        message = (f"strategy {spec.name} code hash is {spec.code_hash}, but the run recorded "
                   f"{recorded_strategy['code_hash']}: the strategy code changed")
        if not force:
            raise UnusableInput(message + ". Check out the recorded code, or pass --force.")
        warnings.append(message)
    with tempfile.TemporaryDirectory(prefix="weltklassebot-replay-") as tmp:
        target = out or Path(tmp) / "replay"
        request = RunRequest(config=config, config_file=manifest.get("config_file"),
                             argv=list(manifest.get("argv") or []), out=target,
                             runs_dir=target.parent)
        outcome = execute(request)
        replayed_hash = outcome.summary["equity_hash"]
        recorded_hash = manifest["equity_hash"]
        difference = None
        if replayed_hash != recorded_hash:
            difference = first_difference(run_dir, outcome.run_dir)
    verdict = "MATCH" if replayed_hash == recorded_hash else "DIVERGED"
    return ReplayResult(verdict, recorded_hash, replayed_hash, difference, warnings)


def first_difference(recorded: Path, replayed: Path) -> dict[str, Any]:
    """The first fill, else the first equity point, that differs between two run dirs."""
    rec_fills = pq.read_table(recorded / "fills.parquet")
    new_fills = pq.read_table(replayed / "fills.parquet")
    diff = _first_row_difference(rec_fills, new_fills, "fill")
    if diff is not None:
        return diff
    rec_eq = pq.ParquetFile(recorded / "equity.parquet")
    new_eq = pq.ParquetFile(replayed / "equity.parquet")
    offset = 0
    columns = ["ts", "equity"]
    for a, b in zip(rec_eq.iter_batches(columns=columns, batch_size=1 << 16),
                    new_eq.iter_batches(columns=columns, batch_size=1 << 16), strict=False):
        table_a = pa.Table.from_batches([a])
        table_b = pa.Table.from_batches([b])
        found = _first_row_difference(table_a, table_b, "equity point", offset)
        if found is not None:
            return found
        offset += a.num_rows
    if rec_eq.metadata.num_rows != new_eq.metadata.num_rows:
        return {"kind": "equity point", "index": min(rec_eq.metadata.num_rows,
                                                     new_eq.metadata.num_rows),
                "recorded": None if rec_eq.metadata.num_rows < new_eq.metadata.num_rows
                else "present", "replayed": "present"
                if rec_eq.metadata.num_rows < new_eq.metadata.num_rows else None}
    return {"kind": "unknown", "detail": "hashes differ but no row differs"}


def _first_row_difference(a: pa.Table, b: pa.Table, kind: str,
                          offset: int = 0) -> dict[str, Any] | None:
    n = min(a.num_rows, b.num_rows)
    common = [c for c in a.column_names if c in b.column_names]
    mismatch = None
    for name in common:
        left = a.column(name).slice(0, n)
        right = b.column(name).slice(0, n)
        if left.type != right.type:
            return {"kind": kind, "index": offset, "column": name,
                    "recorded": str(left.type), "replayed": str(right.type)}
        equal = pc.fill_null(pc.equal(left, right), False)
        if not pc.all(equal).as_py():
            index = int(pc.index(equal, False).as_py())
            mismatch = index if mismatch is None else min(mismatch, index)
    if mismatch is None:
        if a.num_rows == b.num_rows:
            return None
        mismatch = n
    row_a = a.slice(mismatch, 1).to_pylist()
    row_b = b.slice(mismatch, 1).to_pylist()
    return {"kind": kind, "index": offset + mismatch,
            "recorded": _jsonable(row_a[0]) if row_a else None,
            "replayed": _jsonable(row_b[0]) if row_b else None}


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if hasattr(value, "isoformat"):
            out[key] = value.isoformat()
        elif value is None or isinstance(value, int | float | str | bool):
            out[key] = value
        else:
            out[key] = str(value)
    return out

