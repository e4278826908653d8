"""A live run's identity and record: the request, what follows from the snapshot, the run a state
directory records and why it cannot be continued, and the venue's resend fault.

Read by the service at start (``runs/live.py``) and by incident bundles (``runs/bundle.py``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weltklassebot.config.model import BacktestConfig
from weltklassebot.config.service import LiveSettings
from weltklassebot.data.catalog.integrity import check_catalog_file
from weltklassebot.data.feed import ParquetFeed
from weltklassebot.data.reader import open_snapshot
from weltklassebot.data.validate import ValidationReport, require_valid
from weltklassebot.engine.backtest import ExecutionSettings
from weltklassebot.engine.costs import FeeModel, SlippageModel
from weltklassebot.engine.state import ENGINE_STATE_VERSION
from weltklassebot.engine.venue import SimulatedVenue
from weltklassebot.engine.venue_api import Venue, VenueFactory
from weltklassebot.fsutil import sha256_file
from weltklassebot.model.instrument import Instrument
from weltklassebot.model.records import Fill
from weltklassebot.runs.backtest import execution_settings, resolve_instruments, snapshot_path
from weltklassebot.state.codec import Record
from weltklassebot.strategy.loader import StrategySpec, resolve_strategy

LIVE_SCHEMA = 1


@dataclass(frozen=True)
class LiveRequest:
    """A resolved ``live`` invocation."""

    config: BacktestConfig
    settings: LiveSettings
    config_file: str | None
    argv: list[str]
    state_dir: Path
    runs_dir: Path
    out: Path | None
    speed: float | None
    """Event seconds per wall second; ``None``: as fast as possible."""
    exit_at_end: bool
    bind: str
    port: int
    resend_fills: float = 0.0
    serve_metrics: bool = True
    replay_commands: tuple[dict[str, Any], ...] = ()
    """Operator commands of a recorded run, applied at their cursors (``replay``)."""
    stop_after_points: int | None = None
    """Stop (without ending the run) once this many equity points are spooled: a replay of a
    run recorded part-way."""
    bundles_dir: Path | None = None
    """Where the service writes a bundle by itself on HALTED or a restart divergence (``None``:
    never)."""
    keep_bundles: int = 20


@dataclass
class Prepared:
    """Everything a run needs that follows from the request and the snapshot."""

    snapshot: Path
    snapshot_sha: str
    report: ValidationReport
    instruments: dict[str, Instrument]
    intervals: dict[str, int]
    spec: StrategySpec
    execution: ExecutionSettings
    feed: ParquetFeed
    identity: dict[str, Any]


@dataclass
class Resume:
    """What the store says about the run in this state directory."""

    identity: dict[str, Any] | None = None
    status: str | None = None
    closed: dict[str, Any] | None = None
    engine: dict[str, Any] | None = None
    after: list[Record] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)


def prepare(request: LiveRequest) -> Prepared:
    """Validate the snapshot and resolve instruments, strategy and costs (as ``backtest``)."""
    config = request.config
    path = snapshot_path(config)
    catalog_sha = check_catalog_file(path)
    report = require_valid(path, data=config.data)
    resolved = path.resolve()
    snapshot_sha = catalog_sha or sha256_file(resolved)
    snapshot = open_snapshot(resolved)
    instruments, intervals = resolve_instruments(config, snapshot, report)
    spec = resolve_strategy(config.strategy.name, dict(config.strategy.params))
    execution = execution_settings(config)
    feed = ParquetFeed(snapshot, instruments,
                       None if snapshot.has_symbol else next(iter(instruments)),
                       time_ordered=bool(report.facts.get("time_ordered")))
    config_json = json.dumps(config.model_dump(mode="json"), sort_keys=True,
                             separators=(",", ":"))
    identity = {
        "schema": LIVE_SCHEMA,
        "snapshot_path": str(path),
        "snapshot_resolved": str(resolved),
        "snapshot_sha256": snapshot_sha,
        "strategy": spec.name,
        "strategy_version": spec.version,
        "code_hash": spec.code_hash,
        "config_sha256": hashlib.sha256(config_json.encode()).hexdigest(),
        "engine_state_version": ENGINE_STATE_VERSION,
        "seed": config.seed,
        "rows": report.rows,
    }
    return Prepared(path, snapshot_sha, report, instruments, intervals, spec, execution, feed,
                     identity)


def restart_reason(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """Why a recorded run cannot be continued by this process; ``None`` when it can."""
    if old.get("snapshot_sha256") != new["snapshot_sha256"]:
        return "new_snapshot"
    if old.get("engine_state_version") != new["engine_state_version"]:
        return "engine_version_changed"
    if old.get("code_hash") != new["code_hash"] or old.get("strategy") != new["strategy"]:
        return "code_changed"
    if old.get("config_sha256") != new["config_sha256"] or old.get("seed") != new["seed"]:
        return "config_changed"
    return None


def read_resume(records: list[Record], checkpoint: dict[str, Any] | None) -> Resume:
    """The run, its last engine state and the records after it, from a recovered store."""
    found = Resume()
    cp = checkpoint or {}
    found.identity = cp.get("run")
    found.status = cp.get("run_status")
    found.closed = cp.get("closed")
    engine = cp.get("engine")
    found.engine = engine if isinstance(engine, dict) else None
    found.commands = list(cp.get("commands") or [])
    for record in records:
        kind = record.kind
        if kind == "run_started":
            found.identity, found.status, found.closed = record.payload, "active", None
            found.engine, found.after, found.commands = None, [], []
        elif kind == "run_closed":
            found.status, found.closed, found.after = "closed", record.payload, []
        elif kind == "engine_state":
            found.engine, found.after = record.payload, []
            found.commands = list(record.payload.get("commands") or [])
        else:
            found.after.append(record)
    return found


def resending_venue(probability: float, seed: int) -> VenueFactory:
    """A ``VenueFactory`` for the simulated venue that sends some fills twice (a test fault).

    Which fills are resent depends only on the seed and the fill id (a digest, no random
    stream), so a restarted run resends the same ones and the engine's own streams are
    untouched.
    """
    threshold = int(probability * 2**64)

    def factory(instruments: dict[str, Instrument], fees: FeeModel, slippage: SlippageModel,
                on_fill: Callable[[Fill], None]) -> Venue:
        def deliver(fill: Fill) -> None:
            on_fill(fill)
            digest = hashlib.sha256(f"resend|{seed}|{fill.fill_id}".encode()).digest()
            if int.from_bytes(digest[:8], "big") < threshold:
                on_fill(fill)  # the same fill again, as a venue does after a reconnect

        return SimulatedVenue(instruments, fees, slippage, deliver)

    return factory
