"""Backtest orchestration: settings -> validated snapshot -> engine -> atomic run directory."""

from __future__ import annotations

import bisect
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa

from weltklassebot import __version__
from weltklassebot.config.model import BacktestConfig
from weltklassebot.core.ints import int_array
from weltklassebot.core.timeutil import format_duration, ns_to_basic, ns_to_iso, parse_duration
from weltklassebot.data.catalog.integrity import check_catalog_file
from weltklassebot.data.feed import ParquetFeed
from weltklassebot.data.reader import SnapshotFile, open_snapshot
from weltklassebot.data.validate import ValidationReport, require_valid
from weltklassebot.engine.backtest import (
    BacktestEngine,
    EngineBatch,
    EngineResult,
    ExecutionSettings,
)
from weltklassebot.engine.costs import FeeModel
from weltklassebot.engine.equity_hash import (
    FILL_STRUCT,
    EquityHasher,
    equity_text,
    fill_lines_text,
    record_structs,
)
from weltklassebot.engine.risk_gate import RiskGate
from weltklassebot.errors import UsageError
from weltklassebot.fsutil import sha256_file
from weltklassebot.logs import get_logger
from weltklassebot.model.bars import BarChunk
from weltklassebot.model.enums import OrderStatus, side_label
from weltklassebot.model.instrument import DEFAULT_INCREMENT, Instrument, MoneySpec
from weltklassebot.model.records import Fill, Order
from weltklassebot.risk import RiskConfig, RiskEngine, RiskTransition
from weltklassebot.runs.benchmark import MarketTape
from weltklassebot.runs.collector import spaced_collections
from weltklassebot.runs.environment import dependency_versions, git_commit, platform_facts
from weltklassebot.runs.outputs import (
    ORDER_STRUCT,
    EquityWriter,
    OutputThread,
    RecordsWriter,
    fills_table,
    fills_writer,
    orders_table,
    orders_writer,
    run_now,
)
from weltklassebot.runs.record import (
    MANIFEST_SCHEMA_VERSION,
    REPORT,
    file_digests,
    seal_manifest,
)
from weltklassebot.runs.results import RunAnalysis, analyse_run, remember_equity
from weltklassebot.runs.rundir import RunDirectory, resolve_out, write_json
from weltklassebot.runs.stats import EquityStats
from weltklassebot.runs.window import (
    WARMUP_REASON,
    TimeWindow,
    WarmupGate,
    WindowPlan,
    plan_window,
    snapshot_times,
    window_chunks,
)
from weltklassebot.strategy.loader import StrategySpec, resolve_strategy

SAMPLE_SNAPSHOT = Path(__file__).resolve().parent.parent / "sample" / (
    "coinbase_btcusd_1h_2017-07_2019-10.parquet"
)
DEFAULT_SYMBOL = "default"
# The engine steps through the file this many bars at a time (an instant of several symbols is
# never cut): the progress bar moves several times a second, and the results do not depend on
# the step (docs/architecture.md). Output files are still written in large row groups.
STEP_BARS = 4096
EQUITY_ROW_GROUP = 1 << 17
# Up to this many equity points are also kept in memory for the statistics and the report
# (16 bytes each); a longer curve is read back from equity.parquet after the run.
EQUITY_KEPT = 1 << 23
RECORDS_ROW_GROUP = 1 << 16


@dataclass(frozen=True)
class RunRequest:
    """A fully resolved request: the config plus where it came from and where to write."""

    config: BacktestConfig
    config_file: str | None
    argv: list[str]
    out: Path | None
    runs_dir: Path
    show_progress: bool = False
    write_report: bool = True  # report.html; sweeps and replay's scratch runs go without
    notice: str | None = None  # said in the summary too (e.g. the bundled sample was used)
    window: TimeWindow | None = None  # --start / --end / --warmup (runs/window.py)


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    summary: dict[str, Any]
    manifest: dict[str, Any]


def snapshot_path(config: BacktestConfig) -> Path:
    return Path(config.data.snapshot) if config.data.snapshot else SAMPLE_SNAPSHOT


def resolve_instruments(config: BacktestConfig, snapshot: SnapshotFile,
                        report: ValidationReport) -> tuple[dict[str, Instrument], dict[str, int]]:
    """Instruments and bar intervals: config > snapshot metadata > defaults / inference."""
    data = config.data
    meta = snapshot.meta
    money = MoneySpec(config.execution.quote_currency, config.execution.cash_increment)
    if snapshot.has_symbol:
        symbols = list(report.symbols)
    else:
        name = data.symbol or (meta.symbol if meta else None)
        if not name and meta is not None and isinstance(meta.extra.get("instrument"), str):
            name = str(meta.extra["instrument"])
        symbols = [name or DEFAULT_SYMBOL]
    meta_interval = meta.bar_interval_ns if meta else None
    if meta_interval is None and meta is not None and isinstance(meta.extra.get("timeframe"), str):
        try:
            meta_interval = parse_duration(str(meta.extra["timeframe"]))
        except ValueError:
            meta_interval = None
    instruments: dict[str, Instrument] = {}
    intervals: dict[str, int] = {}
    for symbol in symbols:
        own = data.instruments.get(symbol)
        price_inc = (own.price_increment if own else None) or data.price_increment or (
            Decimal(meta.price_increment) if meta and meta.price_increment else DEFAULT_INCREMENT)
        qty_inc = (own.quantity_increment if own else None) or data.quantity_increment or (
            Decimal(meta.quantity_increment) if meta and meta.quantity_increment
            else DEFAULT_INCREMENT)
        instruments[symbol] = Instrument(symbol, price_inc, qty_inc, money)
        key = symbol if snapshot.has_symbol else "-"
        interval = (own.bar_interval if own else None) or data.bar_interval or meta_interval or (
            report.interval_ns.get(key))
        if interval is None:
            raise UsageError(
                f"snapshot {snapshot.path}: cannot infer the bar interval of {symbol} (it has a "
                "single bar). Set it in the config: [data] bar_interval = \"1h\"."
            )
        intervals[symbol] = interval
    return instruments, intervals


def build_risk_gate(config: BacktestConfig, execution: ExecutionSettings) -> RiskGate | None:
    """A risk gate when any limit is configured; none otherwise (a default run denies nothing)."""
    if config.risk == RiskConfig():
        return None
    risk = RiskEngine(config.risk, initial_equity=execution.initial_cash,
                      money_scale=execution.money.scale)
    return RiskGate(risk)


def risk_gate_of(engine: BacktestEngine) -> RiskGate | None:
    """The run's risk gate, also behind a warm-up gate."""
    gate = engine.gate
    if isinstance(gate, WarmupGate):
        gate = gate.inner
    return gate if isinstance(gate, RiskGate) else None


def risk_report(engine: BacktestEngine, money: MoneySpec) -> dict[str, Any]:
    """Risk state, transitions (time, states, reason) and denials, for summary and manifest.
    Orders refused during a warm-up are no denial: they are left out."""
    gate = risk_gate_of(engine)
    if gate is None:
        counts = {k: v for k, v in engine.denial_counts.items() if k != WARMUP_REASON}
        return {"enabled": False, "state": "ACTIVE", "transitions": [],
                "denials": dict(sorted(counts.items()))}
    risk = gate.risk
    cap = risk.drawdown_cap
    return {
        "enabled": True,
        "state": risk.state.value,
        "drawdown_cap": None if cap is None else str(Decimal(cap.numerator) / cap.denominator),
        "peak_equity": money.text(risk.peak_equity),
        "drawdown": float(risk.drawdown),
        "transitions": [_transition_dict(t) for t in risk.transitions],
        "denials": dict(sorted(risk.denials.items())),
    }


def batch_events(batch: EngineBatch, transitions: list[RiskTransition],
                 instruments: dict[str, Instrument]) -> list[dict[str, Any]]:
    """``events.jsonl`` lines of one batch in event-time order: the risk transitions it saw,
    every denied order (reason and detail), the strategy's ``ctx.log`` lines. Shared by the
    backtest and the live service, so their run directories agree line for line."""
    events: list[tuple[int, int, dict[str, Any]]] = []
    for t in transitions:
        events.append((t.ts_ns, 0, {"event": "risk_transition", **_transition_dict(t)}))
    iso_ns, iso = None, ""
    for d in batch.denials:
        inst = instruments[d.symbol]
        if d.ts_ns != iso_ns:  # a refused order is often one of several in its bar
            iso_ns, iso = d.ts_ns, ns_to_iso(d.ts_ns)
        events.append((d.ts_ns, 1, {"event": "order_denied", "ts": iso,
                                    "ts_ns": d.ts_ns, "order_id": d.order_id,
                                    "symbol": d.symbol, "side": side_label(d.side),
                                    "qty": inst.qty_text(d.qty), "reason": d.reason,
                                    "detail": d.detail}))
    for entry in batch.logs:
        events.append((entry["ts_ns"], 2, {"event": "strategy_log",
                                           "ts": ns_to_iso(entry["ts_ns"]), **entry}))
    events.sort(key=lambda e: (e[0], e[1]))
    return [payload for _ts, _rank, payload in events]


class _BatchSink:
    """Receives the engine's batches: fills and orders to Parquet, fill lines to the hash
    spool, and ``events.jsonl`` (risk transitions, every denial, strategy log lines, in
    event-time order within each batch). Memory stays flat however many orders a run makes.

    Records are written a row group at a time: each group is turned into an Arrow struct
    array here, and the Parquet rows and the hash's fill lines are made from it by ``work``
    (an ``OutputThread``'s submit, or ``run_now``), in order: the fill lines reach the spool
    in fill order, as the hash wants them (they are hashed only after the run)."""

    def __init__(self, directory: Path, instruments: dict[str, Instrument],
                 money: MoneySpec, engine: BacktestEngine, fill_spool: BinaryIO | None,
                 trade_from_ns: int | None = None,
                 work: Callable[..., None] = run_now) -> None:
        self.instruments = instruments
        self.engine = engine
        self.work = work
        self.fills = _Buffered(fills_writer(directory / "fills.parquet", instruments, money),
                               self._write_fills)
        self.orders = _Buffered(orders_writer(directory / "orders.parquet", instruments),
                                self._write_orders)
        self.fill_spool = fill_spool
        self.events = (directory / "events.jsonl").open("w", encoding="utf-8")
        self.transitions_seen = 0
        self.trade_from_ns = trade_from_ns  # a warm-up before it leaves no record
        self.warmup_orders = 0

    def _drop_warmup(self, batch: EngineBatch) -> EngineBatch:
        orders = [o for o in batch.orders
                  if not (o.reason == WARMUP_REASON and o.status is OrderStatus.REJECTED)]
        self.warmup_orders += len(batch.orders) - len(orders)
        start = self.trade_from_ns
        return EngineBatch(batch.fills, orders,
                           [d for d in batch.denials if d.reason != WARMUP_REASON],
                           [e for e in batch.logs if e["ts_ns"] >= start])

    def __call__(self, batch: EngineBatch) -> None:
        if self.trade_from_ns is not None:
            batch = self._drop_warmup(batch)
        self.fills.write(batch.fills)
        self.orders.write(batch.orders)
        gate = risk_gate_of(self.engine)
        transitions: list[RiskTransition] = []
        if gate is not None:
            transitions = gate.risk.transitions[self.transitions_seen:]
            self.transitions_seen = len(gate.risk.transitions)
        events = batch_events(batch, transitions, self.instruments)
        # One encoder for every line (json.dumps with options builds a new one per call).
        self.events.write("".join(_EVENT_JSON.encode(payload) + "\n" for payload in events))

    def _write_fills(self, fills: list[Fill]) -> None:
        self.work(self._fills_out, fills, record_structs(fills, FILL_STRUCT))

    def _fills_out(self, fills: list[Fill], structs: pa.StructArray | None) -> None:
        writer = self.fills.writer
        writer.write_table(fills_table(fills, self.instruments, writer.schema, structs))
        if self.fill_spool is not None:
            self.fill_spool.write(fill_lines_text(fills, self.instruments, structs))

    def _write_orders(self, orders: list[Order]) -> None:
        self.work(self._orders_out, orders, record_structs(orders, ORDER_STRUCT))

    def _orders_out(self, orders: list[Order], structs: pa.StructArray | None) -> None:
        writer = self.orders.writer
        writer.write_table(orders_table(orders, self.instruments, writer.schema, structs))

    def close(self) -> None:
        """Hand over the last row groups and the files' closing (``work`` runs them after
        everything before them)."""
        try:
            self.fills.flush()
            self.orders.flush()
            self.work(self.fills.writer.close)
            self.work(self.orders.writer.close)
        finally:
            self.events.close()


_EVENT_JSON = json.JSONEncoder(sort_keys=True, default=str)


class _Buffered:
    """Collects the records of many small steps into row groups of ``RECORDS_ROW_GROUP``,
    handed to ``write``; ``writer`` is the file they end in."""

    def __init__(self, writer: RecordsWriter, write: Callable[[list[Any]], None]) -> None:
        self.writer = writer
        self.write_group = write
        self.pending: list[Any] = []

    def write(self, records: list[Any]) -> None:
        if records:
            self.pending.extend(records)
            if len(self.pending) >= RECORDS_ROW_GROUP:
                self.flush()

    def flush(self) -> None:
        if self.pending:
            self.write_group(self.pending)
            self.pending = []


def _transition_dict(t: RiskTransition) -> dict[str, Any]:
    return {"ts": ns_to_iso(t.ts_ns), "ts_ns": t.ts_ns, "from": t.from_state.value,
            "to": t.to_state.value, "reason": t.reason, "detail": t.detail}


def log_risk(risk: dict[str, Any]) -> None:
    """Risk transitions (warning) and denial counts (info) on stderr."""
    if not (risk["transitions"] or risk["denials"]):
        return
    log = get_logger("weltklassebot.backtest")
    for t in risk["transitions"]:
        log.warning("risk_transition", ts=t["ts"], from_state=t["from"], to_state=t["to"],
                    reason=t["reason"], detail=t["detail"])
    if risk["denials"]:
        log.info("risk_denials", **risk["denials"])


def execution_settings(config: BacktestConfig) -> ExecutionSettings:
    ex = config.execution
    money = MoneySpec(ex.quote_currency, ex.cash_increment)
    return ExecutionSettings(
        money=money,
        initial_cash=money.units(ex.initial_cash),
        fees=FeeModel(ex.fees.maker_bps, ex.fees.taker_bps, money.units(ex.fees.min_fee),
                      money.step),
        slippage_model=ex.slippage.model,
        slippage_bps=Fraction(ex.slippage.bps),
        slippage_max_bps=Fraction(ex.slippage.max_bps),
        latency_ns=ex.latency.delay,
        jitter_ns=ex.latency.jitter,
        leverage=Fraction(ex.leverage),
        participation=None if ex.volume_participation is None
        else Fraction(ex.volume_participation),
    )


class _EquitySink:
    """Receives equity chunks: Parquet rows (in row groups of ``EQUITY_ROW_GROUP``), hash text
    spool (none when no hash is wanted), running statistics, and the curve as written (up to
    ``EQUITY_KEPT`` points, see ``curve``). Points before ``trade_from_ns`` (a warm-up's) are
    dropped."""

    def __init__(self, writer: EquityWriter, spool: BinaryIO | None, stats: EquityStats,
                 scale: int, trade_from_ns: int | None = None,
                 work: Callable[..., None] = run_now) -> None:
        self.writer = writer
        self.work = work  # runs the Parquet rows and the hash text of each row group
        self.spool = spool
        self.stats = stats
        self.scale = scale
        self.trade_from_ns = trade_from_ns
        self.pending: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.rows = 0
        self.points = 0
        self.kept: list[tuple[np.ndarray, np.ndarray]] | None = []

    def __call__(self, ts: list[int], equity: list[int], cash: list[int]) -> None:
        if self.trade_from_ns is not None and ts and ts[0] < self.trade_from_ns:
            cut = bisect.bisect_left(ts, self.trade_from_ns)
            ts, equity, cash = ts[cut:], equity[cut:], cash[cut:]
        if not ts:
            return
        ts_a, equity_a = np.array(ts, dtype=np.int64), int_array(equity)
        drawdown = self.stats.update(ts_a, equity_a)
        self.pending.append((ts_a, equity_a, int_array(cash), drawdown))
        self.rows += len(ts)
        self.points += len(ts)
        if self.rows >= EQUITY_ROW_GROUP:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        ts, equity, cash, drawdown = (np.concatenate(p) for p in zip(*self.pending, strict=True))
        self.work(self._write, ts, equity, cash, drawdown)
        self.pending, self.rows = [], 0
        if self.kept is not None and self.points <= EQUITY_KEPT:
            self.kept.append((ts, equity))
        else:
            self.kept = None

    def _write(self, ts: np.ndarray, equity: np.ndarray, cash: np.ndarray,
               drawdown: np.ndarray) -> None:
        """One row group: the hash text (the same lines a chunk at a time would give) and the
        Parquet rows."""
        if self.spool is not None:
            self.spool.write(equity_text(ts, equity, self.scale))
        self.writer.write(ts, equity, cash, drawdown)

    def curve(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Every point written (times, equity units), once flushed; None beyond
        ``EQUITY_KEPT`` points."""
        if not self.kept or self.pending:
            return None
        if len(self.kept) == 1:
            return self.kept[0]
        ts, equity = zip(*self.kept, strict=True)
        return np.concatenate(ts), np.concatenate(equity)


def _steps(chunks: Iterable[BarChunk], size: int) -> Iterator[BarChunk]:
    """The feed's chunks cut into steps of about ``size`` bars, never inside an instant."""
    for chunk in chunks:
        n = len(chunk)
        start = 0
        while start < n:
            stop = min(start + size, n)
            if stop < n and chunk.codes is not None:
                stop = int(np.searchsorted(chunk.ts, chunk.ts[stop - 1], side="right"))
            yield chunk if (start, stop) == (0, n) else chunk.slice(start, stop)
            start = stop


@dataclass(frozen=True)
class PreparedData:
    """A validated snapshot and what a config makes of it (instruments, bar intervals): the
    same for every run of one config's data settings over one file, so a sweep prepares it
    once per worker and runs every cell on it."""

    path: Path
    sha256: str
    report: ValidationReport
    snapshot: SnapshotFile
    instruments: dict[str, Instrument]
    intervals: dict[str, int]

    def feed(self) -> ParquetFeed:
        symbol_of_file = None if self.snapshot.has_symbol else next(iter(self.instruments))
        return ParquetFeed(self.snapshot, self.instruments, symbol_of_file,
                           time_ordered=bool(self.report.facts.get("time_ordered")))

    def plan(self, window: TimeWindow | None,
             times: np.ndarray | None = None) -> WindowPlan | None:
        """``window`` applied to this file's bars (``times``: its bar times, if at hand)."""
        if window is None:
            return None
        return plan_window(window, snapshot_times(self.snapshot) if times is None else times,
                           f"snapshot {self.path}")


def prepare_data(config: BacktestConfig) -> PreparedData:
    """Check and validate the configured snapshot (invalid data stops here, exit 1)."""
    path = snapshot_path(config)
    catalog_sha = check_catalog_file(path)  # a catalog file must match its .sha256 sidecar
    report = require_valid(path, data=config.data)
    resolved = path.resolve()
    snapshot_sha = catalog_sha or sha256_file(resolved)
    snapshot = open_snapshot(resolved)
    instruments, intervals = resolve_instruments(config, snapshot, report)
    return PreparedData(path, snapshot_sha, report, snapshot, instruments, intervals)


@dataclass(frozen=True)
class Simulation:
    """One run's engine outcome, written into a directory: fills, orders, equity, events and
    trades files, the equity hash (None when not asked for), statistics and risk."""

    engine: BacktestEngine
    result: EngineResult
    equity_hash: str | None
    analysis: RunAnalysis
    stats: EquityStats
    tape: MarketTape
    risk: dict[str, Any]
    execution: ExecutionSettings


def simulate(directory: Path, config: BacktestConfig, spec: StrategySpec,
             instruments: dict[str, Instrument], intervals: dict[str, int],
             chunks: Iterable[BarChunk], *, rows: int, plan: WindowPlan | None = None,
             progress_factory: Callable[[int], Callable[[int], None]] | None = None,
             engine_hook: Callable[[BacktestEngine], None] | None = None,
             with_hash: bool = True, log: bool = True) -> Simulation:
    """Run the engine over ``chunks`` (a snapshot's ``rows`` bars, in event order, from a feed
    or already in memory) and write the record files into ``directory``: the path of every
    backtest, alone or as a cell of a sweep."""
    execution = execution_settings(config)
    gate: Any = build_risk_gate(config, execution)
    trade_from = None if plan is None else plan.trade_from_ns
    if plan is not None and plan.has_warmup:
        gate = WarmupGate(plan.trade_from_ns, gate)
    engine = BacktestEngine(instruments, intervals, execution, spec.create, spec.name,
                            config.seed, gate=gate, strategy_file=spec.source_file)
    if engine_hook is not None:
        engine_hook(engine)
    money = execution.money
    stats = EquityStats(execution.initial_cash)
    tape = MarketTape(instruments)
    writer = EquityWriter(directory / "equity.parquet", money)
    with (tempfile.TemporaryFile(dir=directory) as spool,
          tempfile.TemporaryFile(dir=directory) as fill_spool):
        outputs = OutputThread()
        sink = _EquitySink(writer, spool if with_hash else None, stats, money.scale, trade_from,
                           work=outputs.submit)
        batches = _BatchSink(directory, instruments, money, engine,
                             fill_spool if with_hash else None, trade_from,
                             work=outputs.submit)
        total = rows if plan is None else plan.warmup_bars + plan.bars
        progress = progress_factory(total) if progress_factory else None
        try:
            with spaced_collections():
                result = engine.run(_steps(_tapped(chunks, tape, plan), STEP_BARS), sink,
                                    progress, batch_sink=batches)
            sink.flush()
        finally:
            try:
                batches.close()
                outputs.submit(writer.close)
            finally:
                outputs.close()  # every file written and closed (or the first error raised)
        curve = sink.curve()
        if curve is not None:  # the analysis and the report take it instead of the file
            remember_equity(directory / "equity.parquet", *curve, money.scale)
        equity_hash = None
        if with_hash:
            hasher = EquityHasher()
            _feed(fill_spool, hasher.add_fills)  # all fill lines first, then every equity line
            _feed(spool, hasher.add_equity_text)
            equity_hash = hasher.hexdigest()
    if plan is not None:
        result = _without_warmup(result, plan, sink.points, batches.warmup_orders)
    risk = risk_report(engine, money)
    if log:
        log_risk(risk)
    analysis = analyse_run(directory, instruments=instruments, money=money,
                           initial_cash=execution.initial_cash, equity=stats, tape=tape,
                           base_interval=min(intervals.values()),
                           periods_per_year=config.data.periods_per_year,
                           fees_paid=result.fees_paid, risk=risk)
    return Simulation(engine, result, equity_hash, analysis, stats, tape, risk, execution)


def _tapped(chunks: Iterable[BarChunk], tape: MarketTape,
            plan: WindowPlan | None) -> Iterator[BarChunk]:
    """The bars the engine steps through; the tape (buy and hold) keeps those in range."""
    if plan is None:
        yield from tape.tap(chunks)
        return
    for chunk, in_range in window_chunks(chunks, plan):
        if in_range:
            tape.add(chunk)
        yield chunk


def _without_warmup(result: EngineResult, plan: WindowPlan, points: int,
                    warmup_orders: int) -> EngineResult:
    """The counts of the range alone: warm-up bars, points and refusals are no part of it."""
    denials = {k: v for k, v in result.denial_counts.items() if k != WARMUP_REASON}
    return replace(result, bars=result.bars - plan.warmup_bars, equity_points=points,
                   order_count=result.order_count - warmup_orders, denial_counts=denials,
                   first_ts_ns=plan.trade_from_ns if result.first_ts_ns is not None else None)


def execute(request: RunRequest,
            progress_factory: Callable[[int], Callable[[int], None]] | None = None,
            engine_hook: Callable[[BacktestEngine], None] | None = None) -> RunOutcome:
    """Run one backtest end to end and commit its run directory; return what was written."""
    started = time.perf_counter()
    started_ns = time.time_ns()
    config = request.config
    # The output is checked, and its temporary directory made, before any work.
    final = None if request.out is None else resolve_out(request.out)
    rundir = RunDirectory(request.runs_dir if final is None else final.parent, final,
                          config.strategy.name)
    try:
        return _prepare_and_run(request, rundir, started, started_ns, progress_factory,
                                engine_hook)
    except BaseException:
        rundir.discard()
        raise


def _prepare_and_run(request: RunRequest, rundir: RunDirectory, started: float, started_ns: int,
                     progress_factory: Callable[[int], Callable[[int], None]] | None,
                     engine_hook: Callable[[BacktestEngine], None] | None) -> RunOutcome:
    config = request.config
    data = prepare_data(config)
    spec = resolve_strategy(config.strategy.name, dict(config.strategy.params))
    plan = data.plan(request.window)
    sim = simulate(rundir.tmp, config, spec, data.instruments, data.intervals,
                   data.feed().chunks(), rows=data.report.rows, plan=plan,
                   progress_factory=progress_factory, engine_hook=engine_hook)
    result, money = sim.result, sim.execution.money
    equity_hash = str(sim.equity_hash)
    summary = build_summary(result, sim.analysis, sim.stats, money, equity_hash, config.seed,
                            spec, sim.execution.initial_cash,
                            data_facts(data.path, data.sha256, data.report, data.instruments,
                                       data.intervals), sim.risk)
    if plan is not None:
        summary["range"] = plan.describe()
    if request.notice:
        summary["notice"] = request.notice
    final = rundir.final or request.runs_dir / (
        f"{ns_to_basic(started_ns)}-{spec.name}-{equity_hash[:8]}"
    )
    wall = time.perf_counter() - started
    manifest = build_manifest(request, spec, data.path, data.sha256, data.report,
                              data.instruments, data.intervals, summary, result, wall,
                              started_ns)
    manifest["risk"] = sim.risk
    if plan is not None:
        manifest["range"] = plan.describe()
    summary["run_dir"] = str(request.out or final)
    manifest = write_record(rundir, summary, manifest,
                            sim.tape if request.write_report else None,
                            write_report=request.write_report)
    committed = rundir.commit(final)
    return RunOutcome(committed, summary, manifest)


def write_record(rundir: RunDirectory, summary: dict[str, Any], manifest: dict[str, Any],
                 tape: MarketTape | None, *, write_report: bool) -> dict[str, Any]:
    """summary.json, report.html (unless told not to), then the sealed manifest over every
    file; returns the manifest as sealed."""
    write_json(rundir.path("summary.json"), summary)
    if write_report:
        from weltklassebot.runs.report import build_report

        rundir.path(REPORT).write_bytes(build_report(rundir.tmp, summary, manifest, tape))
    manifest["files"] = file_digests(rundir.tmp)
    sealed, manifest = seal_manifest(manifest)
    rundir.path("manifest.json").write_bytes(sealed)
    return manifest


def _feed(spool: BinaryIO, add: Callable[[bytes], None]) -> None:
    spool.seek(0)
    while block := spool.read(1 << 20):
        add(block)


def data_facts(path: Path, snapshot_sha: str, report: ValidationReport,
               instruments: dict[str, Instrument], intervals: dict[str, int]) -> dict[str, Any]:
    """Which data ran: the file, its SHA-256, symbols, first and last bar, interval, rows."""
    distinct = sorted(set(intervals.values()))
    return {
        "file": str(path),
        "sha256": snapshot_sha,
        "symbols": list(instruments),
        "first_bar": None if report.ts_min_ns is None else ns_to_iso(report.ts_min_ns),
        "last_bar": None if report.ts_max_ns is None else ns_to_iso(report.ts_max_ns),
        "interval": ", ".join(format_duration(i) for i in distinct),
        "rows": report.rows,
    }


def build_summary(result: EngineResult, analysis: RunAnalysis, stats: EquityStats,
                  money: MoneySpec, equity_hash: str, seed: int, spec: StrategySpec,
                  initial: int, data: dict[str, Any], risk: dict[str, Any]) -> dict[str, Any]:
    """summary.json: what ran, on which data, the statistics beside the buy-and-hold
    benchmark's, counts, risk, and the equity hash."""
    annual = analysis.annualisation
    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "strategy": spec.name,
        "strategy_version": spec.version,
        "params": {k: str(v) if isinstance(v, Decimal) else v for k, v in spec.params.items()},
        "seed": seed,
        "data": data,
        "bars": result.bars,
        "equity_points": result.equity_points,
        "first_ts": None if result.first_ts_ns is None else ns_to_iso(result.first_ts_ns),
        "last_ts": None if result.last_ts_ns is None else ns_to_iso(result.last_ts_ns),
        "initial_equity": money.text(initial),
        "final_equity": money.text(result.final_equity),
        "final_cash": money.text(result.final_cash),
        "stats": analysis.stats,
        "benchmark": analysis.benchmark,
        "annualisation": {"periods_per_year": annual.periods_per_year, "source": annual.source,
                          "rule": annual.rule},
        "max_drawdown_at": None if stats.max_drawdown_ts is None
        else ns_to_iso(stats.max_drawdown_ts),
        "fills": result.fill_count,
        "orders": result.order_count,
        "fees_paid": money.text(result.fees_paid),
        "realised_pnl": money.text(int(result.realised)),
        "denials": risk["denials"],
        "risk_state": risk["state"],
        "risk_transitions": risk["transitions"],
        "equity_hash": equity_hash,
    }


def build_manifest(request: RunRequest, spec: StrategySpec, path: Path, snapshot_sha: str,
                   report: ValidationReport, instruments: dict[str, Instrument],
                   intervals: dict[str, int], summary: dict[str, Any], result: EngineResult,
                   wall: float, started_ns: int) -> dict[str, Any]:
    config = request.config
    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "kind": "backtest",
        "argv": request.argv,
        "cwd": os.getcwd(),
        "seed": config.seed,  # the one seed of the record: the config below carries none
        "config_file": request.config_file,
        "config": config.model_dump(mode="json", exclude={"seed"}),
        "strategy": {"name": spec.name, "version": spec.version, "ref": spec.ref,
                     "params": {k: str(v) if isinstance(v, Decimal) else v
                                for k, v in spec.params.items()},
                     "code_hash": spec.code_hash, "source_file": spec.source_file},
        "snapshot": {"path": str(path), "resolved_path": str(path.resolve()),
                     "sha256": snapshot_sha, "rows": report.rows,
                     "symbols": list(instruments),
                     "ts_min": None if report.ts_min_ns is None else ns_to_iso(report.ts_min_ns),
                     "ts_max": None if report.ts_max_ns is None else ns_to_iso(report.ts_max_ns),
                     "warnings": list(report.warnings)},
        "instruments": {s: {"price_increment": str(i.price_increment),
                            "quantity_increment": str(i.quantity_increment),
                            "bar_interval_ns": intervals[s],
                            "bar_interval": format_duration(intervals[s])}
                        for s, i in instruments.items()},
        "equity_hash": summary["equity_hash"],
        "counts": {"bars": result.bars, "equity_points": result.equity_points,
                   "fills": result.fill_count, "orders": result.order_count,
                   "denials": result.denial_counts},
        "versions": dependency_versions(),
        "package_version": __version__,
        "git_commit": git_commit(),
        "platform": platform_facts(),
        "wall_time_seconds": round(wall, 6),
        "run_started_utc": ns_to_iso(started_ns),
    }
