"""Replay: verify a recorded backtest, re-run it from its manifest and compare, fill by fill and
point by point (then order by order and event by event), with what was recorded."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
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
from weltklassebot.runs.record import verify_record
from weltklassebot.runs.window import TimeWindow
from weltklassebot.strategy.loader import resolve_strategy


@dataclass(frozen=True)
class ReplayResult:
    verdict: str  # MATCH or DIVERGED
    recorded_hash: str
    replayed_hash: str
    difference: dict[str, Any] | None
    warnings: list[str]
    checks: list[str] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "recorded_equity_hash": self.recorded_hash,
                "replayed_equity_hash": self.replayed_hash, "first_difference": self.difference,
                "record_checks": self.checks, "warnings": self.warnings}


def replay(run_dir: Path, *, force: bool = False, out: Path | None = None,
           snapshot: Path | None = None) -> ReplayResult:
    """Verify the record (never bypassed), check the inputs (``force`` may go on), re-run and
    compare fills, equity points, orders and events with the record. ``snapshot`` replaces the
    recorded path (a bundle's copy); its SHA-256 is checked all the same."""
    record = verify_record(run_dir)
    manifest = record.manifest
    warnings: list[str] = []
    snapshot = snapshot or Path(manifest["snapshot"]["resolved_path"])
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
    raw_config = dict(manifest["config"], seed=record.seed)
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
        # A scratch re-run needs no report; one kept with --out is a full run directory.
        request = RunRequest(config=config, config_file=manifest.get("config_file"),
                             argv=list(manifest.get("argv") or []), out=target,
                             runs_dir=target.parent, write_report=out is not None,
                             window=TimeWindow.from_record(manifest.get("range")))
        if manifest.get("kind") == "live":
            replayed_dir, replayed_hash = _rerun_live(manifest, config, target, Path(tmp))
        else:
            outcome = execute(request)
            replayed_dir, replayed_hash = outcome.run_dir, outcome.summary["equity_hash"]
        if replayed_hash != record.equity_hash:
            difference: dict[str, Any] | None = first_difference(run_dir, replayed_dir)
        else:  # same fills and equity: the orders and events must agree too
            difference = first_other_difference(run_dir, replayed_dir)
    verdict = "MATCH" if difference is None else "DIVERGED"
    return ReplayResult(verdict, record.equity_hash, replayed_hash, difference, warnings,
                        record.checks)


def _rerun_live(manifest: dict[str, Any], config: BacktestConfig, target: Path,
                tmp: Path) -> tuple[Path, str]:
    """A live run again, on the service's own engine path, with the operator commands it
    recorded applied at their recorded cursors; no pacing, no metrics endpoint."""
    from weltklassebot.config.service import LiveSettings
    from weltklassebot.runs.live import LiveService
    from weltklassebot.runs.live_record import LiveRequest

    live = manifest.get("live") or {}
    if live.get("complete") is False:
        raise UnusableInput(
            f"this live run was closed before its end ({live.get('closed_reason')}): its record "
            "stops part-way, so a full re-run cannot match it. Replay a complete run.")
    request = LiveRequest(
        config=config, settings=LiveSettings(), config_file=manifest.get("config_file"),
        argv=list(manifest.get("argv") or []), state_dir=tmp / "replay-state",
        runs_dir=target.parent, out=target, speed=None, exit_at_end=True, bind="127.0.0.1",
        port=0, serve_metrics=False,
        replay_commands=tuple(live.get("operator_commands") or ()))
    service = LiveService(request)
    service.run()
    if service.summary is None or service.result_dir is None:
        raise UnusableInput("the live re-run did not reach the end of its snapshot")
    return service.result_dir, str(service.summary["equity_hash"])


def first_difference(recorded: Path, replayed: Path) -> dict[str, Any]:
    """The first fill, else the first equity point, that differs between two run dirs."""
    for name, kind, columns in (("fills.parquet", "fill", None),
                                ("equity.parquet", "equity point", ["ts", "equity"])):
        found = _first_parquet_difference(recorded / name, replayed / name, kind, columns)
        if found is not None:
            return found
    return {"kind": "unknown", "detail": "the equity hashes differ but no fill or equity "
                                         "point does"}


def first_other_difference(recorded: Path, replayed: Path) -> dict[str, Any] | None:
    """The first order, else the first ``events.jsonl`` line, that differs; None if none."""
    found = _first_parquet_difference(recorded / "orders.parquet", replayed / "orders.parquet",
                                      "order", None)
    if found is not None:
        return found
    with ((recorded / "events.jsonl").open(encoding="utf-8") as a,
          (replayed / "events.jsonl").open(encoding="utf-8") as b):
        for index, (left, right) in enumerate(itertools.zip_longest(a, b)):
            if left != right:
                return {"kind": "event", "index": index,
                        "recorded": None if left is None else left.rstrip("\n"),
                        "replayed": None if right is None else right.rstrip("\n")}
    return None


def _first_parquet_difference(a_path: Path, b_path: Path, kind: str,
                              columns: list[str] | None) -> dict[str, Any] | None:
    """Stream two Parquet files in aligned chunks; the first row that differs, else None."""
    offset = 0
    chunks = itertools.zip_longest(_chunks(pq.ParquetFile(a_path), columns),
                                   _chunks(pq.ParquetFile(b_path), columns))
    for a, b in chunks:
        a = a if a is not None else b.slice(0, 0)
        b = b if b is not None else a.slice(0, 0)
        found = _first_row_difference(a, b, kind, offset)
        if found is not None:
            return found
        offset += a.num_rows
    return None


def _chunks(handle: pq.ParquetFile, columns: list[str] | None,
            size: int = 1 << 16) -> Iterator[pa.Table]:
    """Tables of exactly ``size`` rows (the last one shorter), whatever the row groups are."""
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in handle.iter_batches(columns=columns, batch_size=size):
        pending.append(batch)
        rows += batch.num_rows
        while rows >= size:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, size)
            rest = table.slice(size)
            pending, rows = rest.to_batches(), rest.num_rows
    if rows:
        yield pa.Table.from_batches(pending)


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
        both_null = pc.and_(pc.is_null(left), pc.is_null(right))
        equal = pc.or_(pc.fill_null(pc.equal(left, right), False), both_null)
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

