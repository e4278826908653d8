"""A live run's spool becomes a run directory: the same files, manifest and hash as a backtest,
with the same trades, statistics, benchmark and report (``runs.results``, ``runs.report``).

Called at the end of the feed (the run is complete: open orders were expired exactly as a
backtest expires them, so ``live --speed max`` and ``backtest`` give the same directory) and when
a restart finds that the run cannot go on (another snapshot, code, config or engine version:
the run is closed where it stopped, and its manifest says so).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from weltklassebot.data.reader import open_snapshot
from weltklassebot.data.validate import ValidationReport
from weltklassebot.engine.backtest import EngineResult, ExecutionSettings
from weltklassebot.engine.equity_hash import EquityHasher, equity_text, fill_lines_text
from weltklassebot.model.instrument import Instrument
from weltklassebot.runs.backtest import (
    RunRequest,
    build_manifest,
    build_summary,
    data_facts,
    write_record,
)
from weltklassebot.runs.benchmark import MarketTape
from weltklassebot.runs.outputs import EquityWriter, fills_writer, orders_writer
from weltklassebot.runs.results import analyse_run
from weltklassebot.runs.rundir import RunDirectory
from weltklassebot.runs.spool import RunSpool
from weltklassebot.runs.stats import EquityStats
from weltklassebot.strategy.loader import StrategySpec


def write_run_directory(
    spool: RunSpool, *, request: RunRequest, spec: StrategySpec, snapshot_path: Path,
    snapshot_sha: str, report: ValidationReport, instruments: dict[str, Instrument],
    intervals: dict[str, int], execution: ExecutionSettings, result: EngineResult | None,
    risk: dict[str, Any], live: dict[str, Any], wall_s: float, started_ns: int,
    final: Path, runs_dir: Path,
) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """Write and commit the run directory ``final``; return its path, summary and manifest.

    ``result`` is the engine's end-of-run result; ``None`` for a run closed before its end
    (counts, fees and final equity then come from the spool itself).
    """
    money = execution.money
    _remove_own(final, str(live.get("run_id")))
    rundir = RunDirectory(final.parent, final, f"live-{spec.name}")
    counts = _Counts()
    try:
        stats = EquityStats(execution.initial_cash)
        hasher = EquityHasher()
        fills = fills_writer(rundir.path("fills.parquet"), instruments, money)
        orders = orders_writer(rundir.path("orders.parquet"), instruments)
        equity = EquityWriter(rundir.path("equity.parquet"), money)
        try:
            for batch in spool.fills():
                fills.write(batch)
                hasher.add_fills(fill_lines_text(batch, instruments))
                counts.fills += len(batch)
                counts.fees += sum(f.fee for f in batch)
            for order_batch in spool.orders():
                orders.write(order_batch)
                counts.orders += len(order_batch)
            with tempfile.TemporaryFile(dir=rundir.tmp) as equity_spool:
                for ts, eq, cash in spool.equity():
                    counts.see(ts, eq, cash)
                    drawdown = stats.update(ts, eq)
                    equity.write(ts, eq, cash, drawdown)
                    equity_spool.write(equity_text(ts, eq, money.scale))
                equity_spool.seek(0)
                while block := equity_spool.read(1 << 20):
                    hasher.add_equity_text(block)
            with rundir.path("events.jsonl").open("w", encoding="utf-8") as events:
                for line in spool.event_lines():
                    events.write(line)
        finally:
            fills.close()
            orders.close()
            equity.close()
        equity_hash = hasher.hexdigest()
        if result is None:
            result = counts.result(execution.initial_cash)
        snapshot = open_snapshot(snapshot_path.resolve())
        tape = MarketTape.from_snapshot(snapshot, instruments,
                                        time_ordered=bool(report.facts.get("time_ordered")))
        analysis = analyse_run(rundir.tmp, instruments=instruments, money=money,
                               initial_cash=execution.initial_cash, equity=stats, tape=tape,
                               base_interval=min(intervals.values()),
                               periods_per_year=request.config.data.periods_per_year,
                               fees_paid=result.fees_paid, risk=risk)
        summary = build_summary(result, analysis, stats, money, equity_hash,
                                request.config.seed, spec, execution.initial_cash,
                                data_facts(snapshot_path, snapshot_sha, report, instruments,
                                           intervals), risk)
        summary["live"] = live
        target = final
        manifest = build_manifest(request, spec, snapshot_path, snapshot_sha, report,
                                  instruments, intervals, summary, result, wall_s, started_ns)
        manifest["kind"] = "live"
        manifest["risk"] = risk
        manifest["live"] = live
        summary["run_dir"] = str(target)
        manifest = write_record(rundir, summary, manifest, tape,
                                write_report=request.write_report)
        committed = rundir.commit(target)
    except BaseException:
        rundir.discard()
        raise
    return committed, summary, manifest


class _Counts:
    """What a closed-early run's summary says, counted from its spool."""

    def __init__(self) -> None:
        self.fills = 0
        self.orders = 0
        self.fees = 0
        self.points = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.equity: int | None = None
        self.cash: int | None = None

    def see(self, ts: Any, equity: Any, cash: Any) -> None:
        if len(ts):
            if self.first_ts is None:
                self.first_ts = int(ts[0])
            self.last_ts = int(ts[-1])
            self.equity, self.cash = int(equity[-1]), int(cash[-1])
            self.points += len(ts)

    def result(self, initial_cash: int) -> EngineResult:
        equity = initial_cash if self.equity is None else self.equity
        return EngineResult(fills=[], orders=[], denials=[], fill_count=self.fills,
                            order_count=self.orders, final_equity=equity,
                            final_cash=initial_cash if self.cash is None else self.cash,
                            fees_paid=self.fees, realised=0, bars=self.points,
                            equity_points=self.points, first_ts_ns=self.first_ts,
                            last_ts_ns=self.last_ts)


def _remove_own(final: Path, run_id: str) -> None:
    """A run directory this run wrote before it was killed (and so before it recorded the end):
    written again, not refused. Anything else in the way is left for ``RunDirectory`` to refuse."""
    manifest = final / "manifest.json"
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(data, dict) and (data.get("live") or {}).get("run_id") == run_id:
        shutil.rmtree(final)
