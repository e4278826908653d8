"""The live-simulation service: the backtest's engine, paced against wall time, made durable.

One process serves one state directory (``service.lock``). It drives the same engine as
``backtest`` one event at a time (a bar; an instant of several symbols), so ``live --speed max``
gives the backtest's fills and equity hash. Around the engine:

- **Durability.** Each event's fills, closed orders and risk transitions are appended to the
  state store and made durable with one fsync before the next event is taken (a risk transition
  even before it takes effect, through the ``RiskJournal``); the feed cursor is the high-rate
  record and is batched. Every few seconds (``[service] checkpoint_seconds``/``_events``) an
  ``engine_state`` record holds the whole engine state and the spool's offsets.
- **Restart.** The last engine state is restored, the spool (``runs/spool.py``) is cut back to
  its offsets, and the events after it are re-run: what the engine produces again is checked
  against the records the store holds (never appended twice; a difference is a
  ``restart_replay_mismatch``: logged, counted, trading halted) and then the run goes on. A
  strategy without save/load hooks is re-run from the start of the feed instead.
- **Identity.** The state directory records the run's snapshot SHA-256, strategy code hash,
  config and engine-state version. When one of them differs at start, the old run is closed
  (written out as it stands) and a new one starts, with a log line and
  ``runs_started_total{reason}``. A run that reached the end of an unchanged snapshot is not
  traded again: the service says so and idles.
- **Operator commands** (``risk halt|resume``) are polled from the state directory between
  events, at least every 0.1 s of wall time; each is applied at an event cursor, recorded with
  it, and applied again at that cursor by a re-run.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import shutil
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from weltklassebot import __version__
from weltklassebot.config.model import BacktestConfig
from weltklassebot.core.timeutil import ns_to_basic, ns_to_iso
from weltklassebot.engine.backtest import BacktestEngine, EngineBatch
from weltklassebot.engine.probe import TimingProbe
from weltklassebot.engine.risk_gate import RiskGate
from weltklassebot.engine.state import fill_data, order_data
from weltklassebot.logs import get_logger
from weltklassebot.model.bars import BarChunk
from weltklassebot.risk import RiskEngine, RiskTransition
from weltklassebot.runs.backtest import (
    RunRequest,
    batch_events,
    risk_report,
)
from weltklassebot.runs.environment import git_commit
from weltklassebot.runs.live_output import write_run_directory
from weltklassebot.runs.live_record import (
    LiveRequest,
    Prepared,
    Resume,
    prepare,
    read_resume,
    resending_venue,
    restart_reason,
)
from weltklassebot.runs.spool import RunSpool
from weltklassebot.service import shutdown
from weltklassebot.service.operator import (
    OperatorCommand,
    ack,
    acquire_service_lock,
    apply_operator_command,
    failed_result,
    poll_operator_commands,
)
from weltklassebot.service.shutdown import StopLatch
from weltklassebot.service.status import LiveStatus
from weltklassebot.state.codec import Record
from weltklassebot.state.jsonl_store import JsonlStore, StoreConfig, StoreWriteError

LIVE_SCHEMA = 1
CURSOR_EVERY = 256
"""A ``cursor`` record at least every this many events (and after every event with records)."""
COMMAND_POLL_S = 0.1
"""Operator commands and the stop flag are looked at least this often (wall seconds)."""
SERVICE_FILE = "service.json"
SPOOL_DIR = "spool"
APPLIED_BY = "service"


# --- the service ------------------------------------------------------------------------------


class RecordingProbe(TimingProbe):
    """The engine's stage probe, also filling the status' exact latency histograms."""

    def __init__(self, status: LiveStatus) -> None:
        super().__init__()
        self._hist = status.stages

    def event_done(self) -> None:
        super().event_done()
        self._hist.observe_event(self.last)


class LiveService:
    """One service process on one state directory."""

    def __init__(self, request: LiveRequest, status: LiveStatus | None = None) -> None:
        self.request = request
        self.status = status or LiveStatus()
        self.log = get_logger("weltklassebot.live")
        self.stop = StopLatch()
        self.store: JsonlStore | None = None
        self.lock: Any = None
        self.notifier: Any = None
        self.server: Any = None
        self.port: int | None = None
        # the run
        self.prep: Prepared | None = None
        self.engine: BacktestEngine | None = None
        self.spool: RunSpool | None = None
        self.identity: dict[str, Any] | None = None
        self.run_status: str | None = None
        self.closed: dict[str, Any] | None = None
        self.commands: list[dict[str, Any]] = []
        self.started_ns = 0
        self.started_perf = 0.0
        self._expected: deque[tuple[str, dict[str, Any]]] = deque()
        self._silent_until = 0
        """Re-run events below this cursor write nothing to the store (a no-hook restart)."""
        self._schedule: dict[int, list[dict[str, Any]]] = {}
        self._adopt: list[dict[str, Any]] = []
        self._unsaved: list[tuple[str, dict[str, Any], int]] = []
        self._durable_pending = False
        self._events_since_state = 0
        self._last_state_wall = 0.0
        self._last_engine_state: dict[str, Any] | None = None
        self._transitions_seen = 0
        self._replayed = 0
        self._divergence: str | None = None
        self._cursor_recorded = 0
        self.points = 0
        """Equity points spooled by this process (a replay stops at a recorded count)."""
        self.partial = False
        """The loop stopped at ``stop_after_points`` before the end of the feed."""
        self._was_halted = False
        self._engine_stopped = False
        self._bundling: threading.Thread | None = None
        self._store_broken = False
        self._in_step = False
        self.result_dir: Path | None = None
        self.summary: dict[str, Any] | None = None

    # -- life cycle ----------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until the feed ends (``exit_at_end``) or a signal; the exit status."""
        from weltklassebot.service.notify import Notifier

        request = self.request
        status = self.status
        previous = {sig: signal.signal(sig, self.stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        if shutdown.signal_number:  # a signal that came while the service was importing
            self.stop(shutdown.signal_number[-1], None)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop.close()
            return 130 if self.stop.signal == signal.SIGINT else 0
        self.notifier = Notifier()
        status.started_wall_s = time.time()
        status.version = __version__
        status.build = git_commit() or "unknown"
        status.state_dir = str(request.state_dir)
        try:
            self.lock = acquire_service_lock(request.state_dir)
            if request.serve_metrics:
                self._start_http()
            self._open_store()
            self._begin()
            self._halt_if_store_down()
            self._ready()
            if self.run_status == "active":
                self._loop()
            if self.run_status == "closed" and not self.stop.requested:
                if request.exit_at_end:
                    return 0
                self._idle()
            return 130 if self.stop.signal == signal.SIGINT else 0
        finally:
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop.close()

    def _start_http(self) -> None:
        from weltklassebot.service.http import MetricsServer
        from weltklassebot.service.metrics import build_registry

        request = self.request
        registry = build_registry(self.status, request.state_dir)
        self.server = MetricsServer(self.status, registry, request.bind, request.port)
        self.server.start()
        self.port = self.server.port
        self.log.info("metrics_listening", bind=request.bind, port=self.port)

    def _open_store(self) -> None:
        section = self.request.settings.state
        config = StoreConfig(max_segment_bytes=2**62, max_segment_age_ns=None,
                             retain_segments=section.retain_segments)
        self.store = JsonlStore.open(self.request.state_dir, config, self._checkpoint_payload)
        if self.store.open_error is not None:
            self.status.store_write_errors += 1

    def _checkpoint_payload(self) -> dict[str, Any]:
        """The store's checkpoint: risk (for ``risk status``), the run, the engine state."""
        engine = self.engine
        risk = None
        if engine is not None and isinstance(engine.gate, RiskGate):
            risk = engine.gate.risk.snapshot()
        return {"origin": APPLIED_BY, "risk": risk, "run": self.identity,
                "run_status": self.run_status, "closed": self.closed,
                "engine": self._last_engine_state, "commands": list(self.commands)}

    # -- start: new run, resume, or idle -------------------------------------------------------

    def _begin(self) -> None:
        assert self.store is not None
        request = self.request
        recovery = self.store.recovery
        found = read_resume(recovery.records, recovery.checkpoint)
        prep = prepare(request)
        self.prep = prep
        status = self.status
        status.snapshot_sha256 = prep.snapshot_sha
        status.snapshot_path = str(prep.snapshot)
        status.strategy = prep.spec.name
        status.strategy_version = str(prep.spec.version)
        status.seed = request.config.seed
        status.total_bars = prep.report.rows
        if found.identity is None:
            self._new_run("new")
            return
        reason = restart_reason(found.identity, prep.identity)
        if found.status == "closed":
            if found.identity.get("snapshot_sha256") == prep.snapshot_sha:
                self.identity, self.run_status, self.closed = found.identity, "closed", found.closed
                status.run_id = str(found.identity.get("run_id", ""))
                status.run_ended = True
                self.log.info("run_already_ended", run_id=status.run_id,
                              snapshot_sha256=prep.snapshot_sha,
                              run_dir=(found.closed or {}).get("run_dir"),
                              message="the run on this snapshot has ended; not trading the same "
                                      "data twice. Promote a new snapshot and restart to trade "
                                      "it.")
                return
            self._new_run(reason or "new_snapshot")
            return
        if reason is not None:
            self._close_old(found, reason)
            self._new_run(reason)
            return
        self._resume(found)

    def _halt_if_store_down(self) -> None:
        """A service that cannot write its store starts in HALTED (DESIGN 8)."""
        assert self.store is not None
        error = self.store.open_error
        if error is not None and self.engine is not None:
            self._store_failed(error)

    def _identity_for(self, run_id: str, reason: str) -> dict[str, Any]:
        assert self.prep is not None
        return {**self.prep.identity, "run_id": run_id, "reason": reason,
                "started": ns_to_iso(time.time_ns()), "argv": self.request.argv,
                "config_file": self.request.config_file,
                "config": self.request.config.model_dump(mode="json")}

    def _new_run(self, reason: str) -> None:
        assert self.prep is not None
        assert self.store is not None
        prep = self.prep
        wall_ns = time.time_ns()
        run_id = f"{ns_to_basic(wall_ns)}-{prep.identity['config_sha256'][:8]}"
        self.identity = self._identity_for(run_id, reason)
        self.run_status = "active"
        self.closed = None
        self.commands = []
        self.status.run_id = run_id
        self._count_run(reason)
        self.log.info("run_started", run_id=run_id, reason=reason, seed=self.request.config.seed,
                      snapshot=str(prep.snapshot), snapshot_sha256=prep.snapshot_sha,
                      strategy=prep.spec.name, strategy_version=prep.spec.version,
                      code_hash=prep.spec.code_hash, invocation=self.request.argv)
        spool_dir = self.request.state_dir / SPOOL_DIR / run_id
        self.spool = RunSpool(spool_dir, None)
        self.engine = self._build_engine()
        for command in self.request.replay_commands:
            self._schedule.setdefault(int(command["cursor"]), []).append(dict(command))
        first_ts = self._first_ts()
        self.engine.start(first_ts, equity_sink=self._on_equity, batch_sink=self._on_batch)
        self.started_ns = wall_ns
        self.started_perf = time.perf_counter()
        self._append("run_started", self.identity, first_ts or 0, durable=True)
        self._save_engine_state(force_checkpoint=True)

    def _first_ts(self) -> int | None:
        assert self.prep is not None
        for chunk in self.prep.feed.chunks(0):
            if len(chunk):
                return int(chunk.ts[0])
        return None

    def _count_run(self, reason: str) -> None:
        runs = self.status.runs_started
        runs[reason] = runs.get(reason, 0) + 1

    def _build_engine(self) -> BacktestEngine:
        assert self.prep is not None
        prep, request = self.prep, self.request
        risk = RiskEngine(request.config.risk, initial_equity=prep.execution.initial_cash,
                          money_scale=prep.execution.money.scale)
        risk.persist = self._journal
        gate = RiskGate(risk)
        factory = (resending_venue(request.resend_fills, request.config.seed)
                   if request.resend_fills > 0 else None)
        engine = BacktestEngine(prep.instruments, prep.intervals, prep.execution,
                                prep.spec.create, prep.spec.name, request.config.seed, gate=gate,
                                strategy_file=prep.spec.source_file, venue_factory=factory)
        engine.probe = RecordingProbe(self.status)
        return engine

    def _journal(self, transition: RiskTransition) -> None:
        """The risk engine's persist callback: durable before the transition takes effect."""
        # Outside a step (operator commands) a transition that is not on disk is refused, so
        # it never takes effect unrecorded. Inside a step risk is already HALTED by the store
        # failure and rules make no transitions; what there is waits in ``_unsaved``.
        refuse = (not self._in_step and self.status.cursor >= self._silent_until
                  and not self._expected)
        if refuse and self._store_broken:
            raise _store_down(self.request.state_dir)
        payload = transition.to_payload()
        self._emit("risk_transition", payload, transition.ts_ns, durable=True)
        if refuse and self._store_broken:
            self._unsaved = [u for u in self._unsaved
                             if not (u[0] == "risk_transition" and u[1] is payload)]
            raise _store_down(self.request.state_dir)

    def _close_old(self, found: Resume, reason: str) -> None:
        """Write out a run that cannot go on (its spool as it stands) and record its end."""
        assert self.store is not None
        assert found.identity is not None
        old = found.identity
        run_id = str(old.get("run_id", ""))
        spool_dir = self.request.state_dir / SPOOL_DIR / run_id
        run_dir = None
        if spool_dir.is_dir():
            try:
                run_dir = self._write_old_run(old, spool_dir, reason)
            except Exception as exc:  # the old run's outputs must never stop the new run
                self.log.error("old_run_not_written", run_id=run_id, reason=reason,
                               error=f"{type(exc).__name__}: {exc}",
                               spool=str(spool_dir))
        self.log.warning("run_closed", run_id=run_id, reason=reason, run_dir=run_dir,
                         old_snapshot_sha256=old.get("snapshot_sha256"),
                         new_snapshot_sha256=self.prep.snapshot_sha if self.prep else None)
        self._append("run_closed", {"run_id": run_id, "reason": reason, "run_dir": run_dir,
                                    "complete": False}, self._last_ts(found), durable=True)

    def _write_old_run(self, old: dict[str, Any], spool_dir: Path, reason: str) -> str | None:
        """The old run's directory from its spool, with the old run's own settings."""
        config = BacktestConfig.model_validate({**old.get("config", {}), "seed": old["seed"]})
        old_request = LiveRequest(
            config=config, settings=self.request.settings, config_file=old.get("config_file"),
            argv=list(old.get("argv", [])), state_dir=self.request.state_dir,
            runs_dir=self.request.runs_dir, out=None, speed=None, exit_at_end=True,
            bind=self.request.bind, port=self.request.port)
        try:
            prep = prepare(old_request)
        except Exception:
            prep = None
        if prep is None:
            self.log.error("old_run_snapshot_gone", run_id=old.get("run_id"),
                           snapshot=old.get("snapshot_resolved"), spool=str(spool_dir),
                           message="its snapshot cannot be read any more; the spool is kept")
            return None
        spool = RunSpool(spool_dir, _sizes(spool_dir))
        live = {"run_id": old.get("run_id"), "complete": False, "closed_reason": reason}
        path, _summary, _manifest = write_run_directory(
            spool, request=self._run_request(old_request), spec=prep.spec,
            snapshot_path=prep.snapshot, snapshot_sha=prep.snapshot_sha, report=prep.report,
            instruments=prep.instruments, intervals=prep.intervals, execution=prep.execution,
            result=None, risk={"denials": {}, "state": "unknown", "transitions": []},
            live=live, wall_s=0.0, started_ns=time.time_ns(),
            final=self._run_dir_for(str(old.get("run_id")), prep.spec.name, None),
            runs_dir=self.request.runs_dir)
        spool.remove()
        self._prune_runs()
        return str(path)

    def _last_ts(self, found: Resume) -> int:
        for record in reversed(found.after):
            return int(record.ts_ns)
        if found.engine is not None:
            return int(found.engine["engine"]["clock_ns"])
        return 0

    def _resume(self, found: Resume) -> None:
        """Continue the recorded run: restore, cut the spool back, re-run what followed."""
        assert self.prep is not None
        assert found.identity is not None
        prep = self.prep
        self.identity = found.identity
        self.run_status = "active"
        self.commands = list(found.commands)
        run_id = str(found.identity.get("run_id", ""))
        self.status.run_id = run_id
        self._count_run("resumed")
        spool_dir = self.request.state_dir / SPOOL_DIR / run_id
        self.started_ns = time.time_ns()
        self.started_perf = time.perf_counter()
        engine = self._build_engine()
        saved = found.engine
        hooks = saved is not None and all(
            s["strategy"] is not None for s in saved["engine"]["slots"])
        if saved is not None and hooks:
            self.spool = RunSpool(spool_dir, saved["spool"])
            engine.resume(saved["engine"], equity_sink=self._on_equity,
                          batch_sink=self._on_batch)
            self._last_engine_state = saved
        else:
            # No saved state, or a strategy without save/load hooks: the run is re-run from
            # the start of the feed; events up to the saved cursor write nothing to the store.
            self.spool = RunSpool(spool_dir, {})
            engine.start(self._first_ts(), equity_sink=self._on_equity,
                         batch_sink=self._on_batch)
            if saved is not None:
                self._silent_until = int(saved["cursor"])
                self._last_engine_state = saved
            for command in self.commands:  # applied (and listed) again by the re-run
                self._schedule.setdefault(int(command["cursor"]), []).append(command)
            self.commands = []
        self.engine = engine
        self._transitions_seen = len(self._risk().transitions)
        self._expect(found.after)
        self.log.info("run_resumed", run_id=run_id, cursor=engine.save_state()["cursor"],
                      rerun_from_start=not hooks, records_to_verify=len(self._expected),
                      offline_commands=len(self._adopt), seed=self.request.config.seed,
                      snapshot_sha256=prep.snapshot_sha, strategy=prep.spec.name,
                      strategy_version=prep.spec.version, invocation=self.request.argv)

    def _expect(self, records: list[Record]) -> None:
        """Split the records after the saved state: what the re-run must reproduce, operator
        commands to apply at their cursors, and commands an operator wrote offline."""
        def offline(record: Record) -> bool:
            return (record.kind == "operator_command"
                    and record.payload.get("applied_by") != APPLIED_BY)

        for index, record in enumerate(records):
            kind, payload = record.kind, record.payload
            if kind in ("cursor", "quarantined"):
                continue
            if offline(record):
                self._adopt.append(payload)  # written by `risk` with no service running
                continue
            if (kind == "risk_transition" and index + 1 < len(records)
                    and offline(records[index + 1])):
                continue  # that offline command's transition (its audit record follows it)
            if kind == "risk_transition" and payload.get("reason") == "store_write_failed":
                # Caused by the disk, not by events: a re-run takes it again at its cursor.
                self._schedule.setdefault(int(payload.get("cursor") or 0), []).append(
                    {"transition": payload})
                continue
            if kind == "operator_command":
                self._schedule.setdefault(int(payload["cursor"]), []).append(payload)
            self._expected.append((kind, payload))

    # -- the main loop -------------------------------------------------------------------------

    def _ready(self) -> None:
        status = self.status
        self._refresh_status()
        status.ready = True
        self._write_service_file()
        state = "ended" if self.run_status == "closed" else "running"
        self.notifier.ready(f"run {status.run_id} {state}; metrics on "
                            f"{self.request.bind}:{self.port}")
        self.log.info("service_ready", run_id=status.run_id, state=state,
                      state_dir=str(self.request.state_dir), port=self.port,
                      seed=self.request.config.seed, snapshot_sha256=status.snapshot_sha256,
                      strategy=status.strategy, strategy_version=status.strategy_version,
                      invocation=self.request.argv, pid=os.getpid())

    def _write_service_file(self) -> None:
        from weltklassebot.service.operator import _write_atomic

        payload = {"pid": os.getpid(), "bind": self.request.bind, "port": self.port,
                   "run_id": self.status.run_id, "state_dir": str(self.request.state_dir),
                   "started": ns_to_iso(int(self.status.started_wall_s * 1e9))}
        with contextlib.suppress(Exception):
            _write_atomic(self.request.state_dir, SERVICE_FILE, payload)

    def _instants(self) -> Iterator[BarChunk]:
        """The feed from the engine's cursor, one event (a bar, or an instant) at a time."""
        assert self.prep is not None
        assert self.engine is not None
        cursor = self.engine.save_state()["cursor"]
        probe = self.engine.probe
        for chunk in self.prep.feed.chunks(cursor):
            n = len(chunk)
            if not n:
                continue
            ts = chunk.ts
            starts = np.flatnonzero(np.diff(ts)) + 1 if len(self.prep.instruments) > 1 \
                else np.arange(1, n)
            bounds = [0, *starts.tolist(), n]
            for a, b in itertools.pairwise(bounds):
                if probe is not None:
                    probe.enter("ingest")
                    piece = chunk.slice(a, b)
                    probe.exit()
                else:
                    piece = chunk.slice(a, b)
                yield piece

    def _loop(self) -> None:
        assert self.engine is not None
        assert self.prep is not None
        engine, status, stop = self.engine, self.status, self.stop
        speed = self.request.speed
        interval = min(self.prep.intervals.values())
        wall0: float | None = None
        event0 = 0
        last_poll = 0.0
        cursor = engine.save_state()["cursor"]
        status.cursor = cursor
        self._last_state_wall = time.monotonic()
        replay_end = max(self._silent_until, max(self._schedule, default=0))
        for instant in self._instants():
            close_ns = int(instant.ts[0]) + interval
            replaying = cursor < self._silent_until or bool(self._expected)
            if speed is not None and not replaying:
                if wall0 is None:
                    wall0, event0 = time.monotonic(), close_ns
                due = wall0 + (close_ns - event0) / 1e9 / speed
                while not stop.requested:
                    now = time.monotonic()
                    if now - last_poll >= COMMAND_POLL_S:
                        last_poll = now
                        self._between_events(cursor)
                    if now >= due:
                        break
                    stop.wait(min(COMMAND_POLL_S, due - now))
            else:
                now = time.monotonic()
                if now - last_poll >= COMMAND_POLL_S and not replaying:
                    last_poll = now
                    self._between_events(cursor)
            if stop.requested:
                break
            for command in self._schedule.pop(cursor, ()):
                self._reapply(command, cursor)
            if not replaying and self._adopt:
                self._adopt_offline(cursor)
            self._durable_pending = False
            self._in_step = True
            try:
                engine.step(instant)
            finally:
                self._in_step = False
            cursor += len(instant)
            status.cursor = cursor
            if cursor > self._silent_until and (
                    self._unsaved or cursor - self._cursor_recorded >= CURSOR_EVERY):
                self._emit("cursor", {"cursor": cursor}, int(instant.ts[0]), durable=False)
                self._cursor_recorded = cursor
            self._commit_event()
            if replaying:
                self._replayed += 1
                status.restarts_replayed += 1
                self.notifier.keepalive()
                if cursor == self._silent_until and self._last_engine_state is not None:
                    self._check_reached()
            if self._divergence is not None:
                self._diverged(cursor)
            self._events_since_state += 1
            self._after_event(instant, cursor)
            stop_at = self.request.stop_after_points
            if stop_at is not None and self.points >= stop_at:
                self.partial = True
                break
            if replaying and not self._expected and cursor >= replay_end:
                self._rerun_done(cursor)
        else:
            if not stop.requested and not self.partial:
                self._finish(cursor)

    def _between_events(self, cursor: int) -> None:
        """Wall-time chores: watchdog, operator commands, the figures metrics show."""
        self.notifier.keepalive()
        self.status.last_loop_wall_s = time.time()
        self._refresh_status()
        for command in poll_operator_commands(self.request.state_dir):
            self._operator(command, cursor)
        if self._adopt:
            self._adopt_offline(cursor)

    def _after_event(self, instant: BarChunk, cursor: int) -> None:
        status = self.status
        status.events_processed += 1
        status.last_event_ts_ns = int(instant.ts[-1])
        now = time.time()
        status.last_event_wall_s = now
        status.last_loop_wall_s = now
        state = self._risk().state.value
        if state != status.risk_state:
            status.risk_state = state
            self._watch_halt()
        settings = self.request.settings.service
        due = (self._events_since_state >= settings.checkpoint_events
               or time.monotonic() - self._last_state_wall >= settings.checkpoint_seconds)
        if due and cursor >= self._silent_until and not self._expected:
            self._save_engine_state()

    def _refresh_status(self) -> None:
        """Equity, drawdown and duplicates for metrics: at most every 0.1 s of wall time (and
        at the end), not per event: a scrape every few seconds cannot tell the difference."""
        engine, status = self.engine, self.status
        if engine is None or self.prep is None:
            return
        status.duplicate_fills = engine.duplicate_fills
        status.orders_submitted = engine.orders_submitted
        risk = self._risk()
        status.risk_state = risk.state.value
        status.drawdown_ratio = float(risk.drawdown)
        cap = risk.drawdown_cap
        status.drawdown_cap_ratio = 1.0 if cap is None else float(cap)
        # money units are 10**-scale of the quote currency
        status.equity = risk.equity / 10 ** self.prep.execution.money.scale

    def _watch_halt(self) -> None:
        """Entering HALTED writes an incident bundle (in the background: never delays trading
        or undoes the halt)."""
        halted = self.status.risk_state == "HALTED"
        if halted and not self._was_halted and not (
                self.status.cursor < self._silent_until or self._expected):
            self._auto_bundle("halted")
        self._was_halted = halted

    def _auto_bundle(self, reason: str) -> None:
        directory = self.request.bundles_dir
        if directory is None or (self._bundling is not None and self._bundling.is_alive()):
            return
        status, log, state_dir = self.status, self.log, self.request.state_dir
        keep = self.request.keep_bundles

        def work() -> None:
            try:
                from weltklassebot.runs.bundle import write_auto_bundle

                path = write_auto_bundle(state_dir, directory, reason, status.run_id, keep)
            except Exception as exc:  # a bundle must never take the service down
                status.bundle_failures += 1
                log.error("bundle_not_written", reason=reason, directory=str(directory),
                          error=f"{type(exc).__name__}: {exc}")
                return
            status.bundles_written += 1
            log.warning("bundle_written", reason=reason, bundle=str(path))

        self._bundling = threading.Thread(target=work, name="auto-bundle", daemon=True)
        self._bundling.start()

    def _risk(self) -> RiskEngine:
        assert self.engine is not None
        assert isinstance(self.engine.gate, RiskGate)
        risk = self.engine.gate.risk
        if risk.persist is None:
            risk.persist = self._journal  # restored engines come back without the journal
        return risk

    # -- what each event produces --------------------------------------------------------------

    def _on_equity(self, ts: list[int], equity: list[int], cash: list[int]) -> None:
        assert self.spool is not None
        self.spool.add_equity(ts, equity, cash)
        self.points += len(ts)

    def _on_batch(self, batch: EngineBatch) -> None:
        """Spool the event's outputs and hand fills and closed orders to the store."""
        assert self.spool is not None
        assert self.prep is not None
        spool = self.spool
        spool.add_fills(batch.fills)
        spool.add_orders(batch.orders)
        events = self._events(batch)
        spool.add_events(events)
        status = self.status
        for fill in batch.fills:
            self._emit("fill", {"fill": fill_data(fill)}, fill.ts_ns, durable=True)
            status.fills += 1
        orders = status.orders
        for order in batch.orders:
            self._emit("order", {"order": order_data(order)}, order.ts_closed_ns or 0,
                       durable=True)
            key = order.status.name.lower()
            orders[key] = orders.get(key, 0) + 1
        denials = status.denials
        for d in batch.denials:
            denials[d.reason] = denials.get(d.reason, 0) + 1

    def _events(self, batch: EngineBatch) -> list[dict[str, Any]]:
        """``events.jsonl`` lines of this batch, as ``backtest`` writes them."""
        assert self.prep is not None
        transitions = self._risk().transitions
        new = transitions[self._transitions_seen:]
        self._transitions_seen = len(transitions)
        return batch_events(batch, new, self.prep.instruments)

    def _emit(self, kind: str, payload: dict[str, Any], ts_ns: int, *, durable: bool) -> None:
        """One record of the run: checked against the store while re-running, else appended.

        Durable records of an event are appended unsynced and made durable together by
        ``_commit_event`` (one fsync per event), except risk transitions, which are synced at
        once: they must be on disk before they take effect.
        """
        if self.status.cursor < self._silent_until:
            return
        if self._expected:
            if kind == "cursor":
                return
            want_kind, want = self._expected.popleft()
            mine = json.loads(json.dumps(payload))
            if want_kind == kind and want == mine:
                return
            # Not what was recorded: from here on the re-run's records are the run's.
            self._divergence = (f"re-run produced {kind} {_brief(mine)} where the store holds "
                                f"{want_kind} {_brief(want)}")
            self._expected.clear()
        if kind == "risk_transition":
            self._append(kind, payload, ts_ns, durable=True)
            return
        self._append(kind, payload, ts_ns, durable=False)
        if durable:
            self._durable_pending = True

    def _append(self, kind: str, payload: dict[str, Any], ts_ns: int, *, durable: bool) -> None:
        store = self.store
        assert store is not None
        self._unsaved.append((kind, payload, ts_ns))
        if durable:
            self._durable_pending = True
            self._flush_unsaved()

    def _flush_unsaved(self) -> None:
        """Append what is waiting; a store that cannot write halts trading (DESIGN 8)."""
        store = self.store
        assert store is not None
        if not self._unsaved:
            return
        try:
            while self._unsaved:
                kind, payload, ts_ns = self._unsaved[0]
                store.append(kind, payload, ts_ns, durable=False)
                self._unsaved.pop(0)
            if self._durable_pending:
                started = time.perf_counter()
                store.flush()
                self.status.fsync_seconds += time.perf_counter() - started
                self._durable_pending = False
        except StoreWriteError as exc:
            self._store_failed(exc)

    def _store_failed(self, exc: StoreWriteError) -> None:
        """The store cannot write: HALTED at once (DESIGN 8); what waits is retried later."""
        self.status.store_write_errors += 1
        if not self._store_broken:
            self.log.error("state_store_write_failed", error=exc.message,
                           waiting_records=len(self._unsaved), cursor=self.status.cursor,
                           action="trading halted; free space or fix permissions in the state "
                                  "directory; writes are retried at every event")
        self._store_broken = True
        if self.engine is not None:
            self._risk().store_failed(self.engine.clock.now_ns(),
                                      f"state store cannot write: {exc.message}",
                                      cursor=self.status.cursor)

    def _commit_event(self) -> None:
        """The event's records are durable before the next event is taken."""
        if self._unsaved:
            self._flush_unsaved()
        if self.spool is not None:
            try:
                self.spool.flush()
            except OSError as exc:
                self._store_failed(StoreWriteError("write", self.spool.directory, exc,
                                                   seq=None))
                return
        if self._store_broken and not self._unsaved:
            self._store_broken = False
            self.log.warning("state_store_writes_again", cursor=self.status.cursor,
                             message="trading stays HALTED until an operator resumes it")
            if self.engine is not None:
                try:
                    self._risk().retry_persist()  # the halt it caused, on disk at last
                except StoreWriteError as exc:
                    self._store_failed(exc)

    # -- operator commands ---------------------------------------------------------------------

    def _operator(self, command: OperatorCommand, cursor: int) -> None:
        assert self.engine is not None
        risk = self._risk()
        wall_ns = time.time_ns()
        ts_ns = self.engine.clock.now_ns()
        try:
            result = apply_operator_command(risk, command, ts_ns, cursor=cursor, wall_ns=wall_ns)
            record = {**result, "applied_by": APPLIED_BY}
            self.commands.append(record)
            self._emit("operator_command", record, ts_ns, durable=True)
            self._commit_event()
        except StoreWriteError as exc:
            result = failed_result(command, risk, f"state store cannot write: {exc.message}",
                                   wall_ns=wall_ns)
        self.status.operator_commands += 1
        self._refresh_status()
        self._watch_halt()
        self.log.warning("operator_command", command_id=command.command_id,
                         action=command.action, user=command.user, cursor=cursor,
                         result=result.get("message") or result.get("error"))
        with contextlib.suppress(Exception):
            ack(self.request.state_dir, command.command_id, result)

    def _reapply(self, record: dict[str, Any], cursor: int) -> None:
        """A recorded operator command, applied again at its cursor by a re-run."""
        assert self.engine is not None
        if "transition" in record:
            self._risk().replay_transition(RiskTransition.from_payload(record["transition"]),
                                           strict=False)
            return
        command = OperatorCommand.from_payload(record["command"])
        risk = self._risk()
        apply_operator_command(risk, command, int(record["ts_ns"]), cursor=cursor,
                               wall_ns=record.get("applied_wall_ns"))
        self.commands.append(record)
        self._emit("operator_command", record, int(record["ts_ns"]), durable=True)

    def _adopt_offline(self, cursor: int) -> None:
        """Commands an operator wrote while no service ran take effect here, recorded with
        this cursor (so a re-run applies them here too)."""
        adopt, self._adopt = self._adopt, []
        for payload in adopt:
            try:
                command = OperatorCommand.from_payload(payload.get("command") or {})
            except ValueError:
                continue
            self._operator(command, cursor)

    # -- checkpoints ---------------------------------------------------------------------------

    def _save_engine_state(self, *, force_checkpoint: bool = False) -> None:
        assert self.engine is not None
        assert self.spool is not None
        assert self.store is not None
        if self._store_broken and not self._unsaved_flushable():
            return
        state = self.engine.save_state()
        try:
            offsets = self.spool.offsets()
        except OSError as exc:
            self._store_failed(StoreWriteError("write", self.spool.directory, exc, seq=None))
            return
        record = {"engine": state, "spool": offsets, "cursor": state["cursor"],
                  "commands": list(self.commands)}
        self._last_engine_state = record
        ts_ns = int(state["clock_ns"])
        segment_full = self.store.active_bytes >= self.request.settings.state.segment_bytes
        try:
            self._flush_unsaved()
            if force_checkpoint or segment_full:
                self.store.checkpoint(ts_ns)  # a new segment starting with this state
            else:
                self.store.append("engine_state", record, ts_ns, durable=True)
        except StoreWriteError as exc:
            self.status.store_write_errors += 1
            self.log.error("engine_state_not_saved", error=exc.message)
        self._events_since_state = 0
        self._last_state_wall = time.monotonic()

    def _unsaved_flushable(self) -> bool:
        """Whether waiting records and spool lines could all be written now."""
        self._commit_event()
        return not self._unsaved and not self._store_broken

    def _check_reached(self) -> None:
        """A re-run from the start reached the saved cursor: it must be in the saved state."""
        assert self.engine is not None
        assert self._last_engine_state is not None
        reached = self.engine.save_state()
        saved = self._last_engine_state["engine"]
        keys = [k for k in saved if k not in ("pending", "counters", "slots")]
        differing = [k for k in keys if json.loads(json.dumps(reached.get(k))) != saved[k]]
        if differing and self._divergence is None:
            self._divergence = ("re-running the feed to the saved cursor did not reach the "
                                f"saved state (differs in: {', '.join(differing)})")

    def _rerun_done(self, cursor: int) -> None:
        self.log.info("rerun_verified", run_id=self.status.run_id, cursor=cursor,
                      events=self._replayed)

    def _diverged(self, cursor: int) -> None:
        """A restart did not reproduce its record: say so, count it and halt trading."""
        why = self._divergence or "re-run differed from the record"
        self._divergence = None
        self.status.replay_mismatches += 1
        self._expected.clear()
        self._silent_until = 0
        self.log.error("restart_replay_mismatch", run_id=self.status.run_id, cursor=cursor,
                       detail=why, action="trading halted; escalate (runbook: incident "
                                          "response) and replay the run from its records")
        if self.engine is not None:
            self._risk().halt(f"restart re-run diverged from the record: {why}"[:500],
                              self.engine.clock.now_ns(), APPLIED_BY, cursor=cursor)
            self._commit_event()
            self._was_halted = True
        self._auto_bundle("restart_diverged")

    # -- the end of the feed -------------------------------------------------------------------

    def _finish(self, cursor: int) -> None:
        """Expire what is open (as a backtest does), write the run directory, record the end."""
        assert self.engine is not None
        assert self.prep is not None
        assert self.spool is not None
        engine, prep = self.engine, self.prep
        if self._store_broken:
            # The run's end must be on disk before it is announced: wait for the state
            # directory (metrics and the watchdog go on meanwhile).
            self.log.warning("run_end_waits_for_the_state_directory", cursor=cursor)
            while self._store_broken and not self.stop.requested:
                self.notifier.keepalive()
                self.status.last_loop_wall_s = time.time()
                self.stop.wait(COMMAND_POLL_S * 5)
                self._commit_event()
            if self.stop.requested:
                return
        self._durable_pending = False
        result = engine.stop(expire_open_orders=True)
        self._engine_stopped = True
        self._refresh_status()
        self._commit_event()
        if self._expected and self._divergence is None:
            self._divergence = (f"the feed ended with {len(self._expected)} recorded records not "
                                "reproduced")
        if self._divergence is not None:
            self._diverged(cursor)
        risk = risk_report(engine, prep.execution.money)
        live = {"run_id": self.status.run_id, "complete": True,
                "duplicate_fills": engine.duplicate_fills,
                "operator_commands": self.commands, "state_dir": str(self.request.state_dir),
                "restarts": self.status.runs_started}
        path, summary, _manifest = write_run_directory(
            self.spool, request=self._run_request(self.request), spec=prep.spec,
            snapshot_path=prep.snapshot, snapshot_sha=prep.snapshot_sha, report=prep.report,
            instruments=prep.instruments, intervals=prep.intervals, execution=prep.execution,
            result=result, risk=risk, live=live, wall_s=time.perf_counter() - self.started_perf,
            started_ns=self.started_ns,
            final=self._run_dir_for(self.status.run_id, prep.spec.name, self.request.out),
            runs_dir=self.request.runs_dir)
        self.run_status = "closed"
        self.closed = {"run_id": self.status.run_id, "reason": "end_of_feed",
                       "run_dir": str(path), "equity_hash": summary["equity_hash"],
                       "cursor": cursor, "complete": True}
        self._append("run_closed", self.closed, engine.clock.now_ns(), durable=True)
        self._last_engine_state = None
        with contextlib.suppress(StoreWriteError):
            assert self.store is not None
            self.store.checkpoint(engine.clock.now_ns())
        self.spool.remove()
        self.spool = None
        self.status.run_ended = True
        self.log.info("run_ended", run_id=self.status.run_id, run_dir=str(path),
                      equity_hash=summary["equity_hash"], fills=summary["fills"],
                      orders=summary["orders"], final_equity=summary["final_equity"],
                      duplicate_fills=engine.duplicate_fills)
        self.result_dir = path
        self.summary = summary
        if self.request.out is None:
            self._prune_runs()
        self.notifier.status(f"run {self.status.run_id} ended; equity hash "
                             f"{summary['equity_hash'][:16]}")

    def _run_dir_for(self, run_id: str, strategy: str, out: Path | None) -> Path:
        """``--out``, else ``<runs dir>/<run id>-<strategy>`` (one name per run, so a run
        killed while writing its directory writes the same one again)."""
        return out if out is not None else self.request.runs_dir / f"{run_id}-{strategy}"

    def _run_request(self, request: LiveRequest) -> RunRequest:
        return RunRequest(config=request.config, config_file=request.config_file,
                          argv=request.argv, out=request.out, runs_dir=request.runs_dir)

    def _prune_runs(self) -> None:
        """Keep the newest ``[service] keep_runs`` run directories under the runs directory."""
        keep = self.request.settings.service.keep_runs
        runs_dir = self.request.runs_dir
        try:
            entries = sorted(p for p in runs_dir.iterdir()
                             if p.is_dir() and (p / "manifest.json").is_file())
        except OSError:
            return
        for old in entries[:max(0, len(entries) - keep)]:
            shutil.rmtree(old, ignore_errors=True)
            self.log.info("run_dir_pruned", run_dir=str(old), keep_runs=keep)

    def _idle(self) -> None:
        """The run has ended: serve metrics (and the watchdog) until stopped."""
        self.notifier.status(f"run {self.status.run_id} ended; idle, serving metrics")
        while not self.stop.requested:
            self.notifier.keepalive()
            self.status.last_loop_wall_s = time.time()
            for command in poll_operator_commands(self.request.state_dir):
                with contextlib.suppress(Exception):
                    ack(self.request.state_dir, command.command_id,
                        {"ok": False, "error": "the service's run has ended; there is nothing "
                                               "to halt or resume until a new run starts"})
            self.stop.wait(COMMAND_POLL_S * 5)

    def _shutdown(self) -> None:
        """Persist and release: engine state, store flushed and closed, lock, HTTP."""
        status = self.status
        status.stopping = True
        if self._bundling is not None:
            self._bundling.join(timeout=3.0)
        if self.notifier is not None:
            self.notifier.stopping(f"stopping run {status.run_id}")
        try:
            if (self.store is not None and self.engine is not None and self.run_status == "active"
                    and not self._engine_stopped and self.spool is not None
                    and not self._expected
                    and status.cursor >= self._silent_until):
                self._save_engine_state()
            if self.spool is not None:
                self.spool.close()
            if self.store is not None:
                try:
                    self.store.close()
                except StoreWriteError as exc:
                    self.log.error("state_store_close_failed", error=exc.message)
        finally:
            if self.server is not None:
                self.server.stop()
            if self.lock is not None:
                with contextlib.suppress(OSError):
                    (self.request.state_dir / SERVICE_FILE).unlink()
                self.lock.release()
            if self.notifier is not None:
                self.notifier.close()
            self.log.info("service_stopped", run_id=status.run_id, cursor=status.cursor,
                          events=status.events_processed,
                          signal=None if self.stop.signal is None
                          else signal.Signals(self.stop.signal).name)


def _store_down(directory: Path) -> StoreWriteError:
    return StoreWriteError("append", directory, OSError(errno.EIO, "the state store cannot "
                                                        "write (an earlier write failed)"),
                           seq=None)


def _sizes(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in directory.iterdir() if p.is_file()}


def _brief(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return text if len(text) <= 300 else text[:297] + "..."


def run_live(request: LiveRequest) -> int:
    """Run the service; map a divergence found while re-running to a halt and go on."""
    service = LiveService(request)
    return service.run()


__all__ = ["LiveRequest", "LiveService", "RecordingProbe", "run_live"]
