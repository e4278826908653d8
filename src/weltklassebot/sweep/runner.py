"""The driver of a sweep, a walk-forward or a Monte Carlo run: validate the inputs once, make
the cells, run those not yet journaled on a backend, then write the outputs.

``DIR/results.parquet`` holds one row per cell in the canonical order (``cells.row_order``):
a column per parameter, ``seed``, ``snapshot_sha256``, ``equity_hash``, the statistics of
``summary.json`` under the same names (money as exact decimal text), ``status`` (``ok`` or
``failed``) and ``error``; a walk-forward adds ``window``, ``phase`` (``train`` or ``test``),
``start``, ``end`` and ``warmup``. ``DIR/sweep.json`` has the inputs, the sweep hash over those
rows, counts and timings; ``DIR/report.html`` the sweep report.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from weltklassebot import __version__
from weltklassebot.config.load import deep_merge, validate_config
from weltklassebot.config.model import BacktestConfig
from weltklassebot.core.timeutil import ns_to_iso
from weltklassebot.errors import UsageError
from weltklassebot.runs.backtest import PreparedData, execution_settings, prepare_data
from weltklassebot.runs.results import STATS_KEYS
from weltklassebot.runs.window import TimeWindow, parse_time, snapshot_times
from weltklassebot.strategy.loader import resolve_strategy
from weltklassebot.sweep import montecarlo, walkforward
from weltklassebot.sweep.backends import Backend, make_backend
from weltklassebot.sweep.cells import (
    BASE_COLUMNS,
    FAILED,
    FLOAT_STATS,
    INT_STATS,
    OK,
    WINDOW_COLUMNS,
    Cell,
    CellResult,
    row_order,
    sweep_hash,
)
from weltklassebot.sweep.data import SnapshotRef
from weltklassebot.sweep.grid import FLOAT, INT, Axis, check_names, typed_params
from weltklassebot.sweep.journal import JOURNAL, Journal
from weltklassebot.sweep.progress import Progress, progress_bar
from weltklassebot.sweep.walkforward import WalkForwardSpec, Window
from weltklassebot.sweep.worker import SweepContext

RESULTS, SWEEP_JSON, REPORT, WALKFORWARD = ("results.parquet", "sweep.json", "report.html",
                                            "walkforward.parquet")
SCHEMA_VERSION = 1
KINDS = ("sweep", "walkforward", "montecarlo")


@dataclass(frozen=True)
class SweepRequest:
    kind: str
    strategy: str
    base: dict[str, Any]  # the raw config: file and flags, without snapshot, seed and the axes
    config_file: str | None
    snapshots: tuple[Path, ...]  # empty: the config's snapshot (else the bundled sample)
    axes: tuple[Axis, ...]
    seeds: tuple[int, ...]
    out: Path
    argv: list[str]
    backend: str = "local"
    address: str | None = None
    workers: int | None = None
    resume: bool = False
    with_hash: bool = True
    fast_path: bool = True
    show_progress: bool = False
    write_report: bool = True
    walkforward: WalkForwardSpec | None = None
    report_stat: str = "sharpe"


@dataclass
class SweepOutcome:
    directory: Path
    summary: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    snapshot_reads: int = 0


def run_sweep(request: SweepRequest) -> SweepOutcome:
    """Run (or resume) the sweep and write its outputs; the returned summary is sweep.json."""
    started = time.perf_counter()
    started_ns = time.time_ns()
    if request.kind not in KINDS:
        raise UsageError(f"unknown sweep kind {request.kind!r}")
    reserved = set(BASE_COLUMNS) | (set(WINDOW_COLUMNS) if request.kind == "walkforward"
                                    else set())
    check_names(list(request.axes), reserved)
    prepared = _prepare_snapshots(request)
    refs = tuple(SnapshotRef.of(p) for p in prepared)
    strategy = _check_strategy(request)
    context = SweepContext(request.strategy, request.base, refs, request.with_hash,
                           request.fast_path)
    first_config = context.config(Cell(0, _first_params(request), request.seeds[0], 0))
    inputs = _inputs(request, refs, strategy, first_config)
    journal = Journal(request.out, inputs, resume=request.resume)
    resumed = len(journal.finished)
    driver = _Driver(request, context, journal)
    try:
        with progress_bar(request.show_progress) as progress:
            driver.progress = progress
            if request.kind == "walkforward":
                assert request.walkforward is not None
                extra = driver.walk_forward(request.walkforward, prepared)
            else:
                driver.run_phase("cells", _grid_cells(request, len(refs)))
                extra = {}
        rows = driver.rows()
        if request.kind == "montecarlo":
            extra = {"montecarlo": _montecarlo(request, rows, first_config)}
        summary = _summary(request, inputs, journal, driver, rows, resumed, extra, started,
                           started_ns)
        _write_outputs(request, rows, summary, driver.stitched_curves)
    finally:
        if driver.backend is not None:
            driver.backend.close()
        journal.close()
    return SweepOutcome(request.out, summary, rows, driver.snapshot_reads)


def _first_params(request: SweepRequest) -> tuple[tuple[str, str], ...]:
    return tuple((a.name, a.values[0]) for a in request.axes)


def _prepare_snapshots(request: SweepRequest) -> list[PreparedData]:
    """Each snapshot validated once (invalid data stops the sweep before any cell, exit 1)."""
    paths: list[Path | None] = list(request.snapshots) or [None]
    prepared = []
    for path in paths:
        override: dict[str, Any] = {"strategy": {"name": request.strategy}}
        if path is not None:
            override["data"] = {"snapshot": str(path)}
        config = validate_config(BacktestConfig, deep_merge(request.base, override),
                                 "sweep settings")
        prepared.append(prepare_data(config))
    seen: dict[str, Path] = {}
    for data in prepared:
        if data.sha256 in seen:
            raise UsageError(f"--data-snapshot {data.path} has the same bytes (SHA-256 "
                             f"{data.sha256[:12]}) as {seen[data.sha256]}: give each snapshot "
                             "once.")
        seen[data.sha256] = data.path
    return prepared


def _check_strategy(request: SweepRequest) -> dict[str, Any]:
    """The strategy loads and has every parameter of the grid (before any cell runs); a value
    it refuses is that cell's error, not the sweep's."""
    spec = resolve_strategy(request.strategy, {})
    unknown = [a.name for a in request.axes if a.name not in spec.cls.params]
    if unknown:
        raise UsageError(
            f"strategy {spec.name} has no parameter {', '.join(unknown)}; its parameters are: "
            f"{', '.join(sorted(spec.cls.params)) or 'none'}.")
    return {"ref": request.strategy, "name": spec.name, "version": spec.version,
            "code_hash": spec.code_hash}


def _inputs(request: SweepRequest, refs: tuple[SnapshotRef, ...], strategy: dict[str, Any],
            config: BacktestConfig) -> dict[str, Any]:
    """Everything the results depend on (and nothing they do not: backend, workers, the
    fast path, which gives the same results)."""
    resolved = config.model_dump(mode="json", exclude={"seed"})
    resolved["data"].pop("snapshot", None)
    resolved["strategy"]["params"] = {k: v for k, v in resolved["strategy"]["params"].items()
                                      if k not in {a.name for a in request.axes}}
    inputs: dict[str, Any] = {
        "kind": request.kind,
        "strategy": strategy,
        "grid": [{"name": a.name, "values": list(a.values)} for a in request.axes],
        "seeds": _seeds_text(request.seeds),
        "snapshots": [{"path": r.path, "sha256": r.sha256, "rows": r.rows} for r in refs],
        "config": resolved,
        "config_file": request.config_file,
        "equity_hash": request.with_hash,
        "package_version": __version__,
    }
    if request.walkforward is not None:
        inputs["walkforward"] = request.walkforward.describe()
    return inputs


def _seeds_text(seeds: tuple[int, ...]) -> str:
    """Seeds as runs (``1..20,40``): short in sweep.json however many there are."""
    parts = []
    for _key, group in itertools.groupby(enumerate(seeds), key=lambda p: p[1] - p[0]):
        items = [s for _, s in group]
        parts.append(str(items[0]) if len(items) == 1 else f"{items[0]}..{items[-1]}")
    return ",".join(parts)


def _grid_cells(request: SweepRequest, snapshots: int) -> list[Cell]:
    cells = []
    for index, (snap, values, seed) in enumerate(itertools.product(
            range(snapshots), itertools.product(*(a.values for a in request.axes)),
            request.seeds)):
        params = tuple((a.name, v) for a, v in zip(request.axes, values, strict=True))
        cells.append(Cell(index, params, seed, snap))
    return cells


class _Driver:
    """Runs phases of cells on one backend (started on first use) and journals each."""

    def __init__(self, request: SweepRequest, context: SweepContext, journal: Journal) -> None:
        self.request = request
        self.context = context
        self.journal = journal
        self.backend: Backend | None = None
        self.progress: Progress | None = None
        self.cells: list[Cell] = []
        self.keys: dict[int, str] = {}
        self.ran = 0
        self.snapshot_reads = 0
        self.stitched_curves: list[dict[str, Any]] | None = None

    def key(self, cell: Cell) -> str:
        return cell.key(self.context.snapshots[cell.snapshot].sha256)

    def run_phase(self, description: str, cells: list[Cell]) -> None:
        start = len(self.cells)
        cells = [Cell(start + i, c.params, c.seed, c.snapshot, c.window, c.tags, c.want_curve)
                 for i, c in enumerate(cells)]
        self.cells.extend(cells)
        for cell in cells:
            self.keys[cell.index] = self.key(cell)
        todo = [c for c in cells if self.keys[c.index] not in self.journal.finished]
        if self.progress is not None:
            self.progress.phase(description, len(cells), len(cells) - len(todo))
        if not todo:
            return
        if self.backend is None:
            self.backend = make_backend(self.request.backend, self.context,
                                        self.request.workers, self.request.address)
        self.backend.run(todo, self._done)
        self.snapshot_reads = self.backend.snapshot_reads()

    def _done(self, cell: Cell, result: CellResult) -> None:
        row = self.row(cell, result)
        run = result.record()
        run.pop("status")
        run.pop("equity_hash")
        run.pop("stats")
        run.pop("error")
        self.journal.record(self.keys[cell.index], row, run, result.curve)
        self.ran += 1
        if self.progress is not None:
            self.progress.advance(result.status != OK)

    def row(self, cell: Cell, result: CellResult) -> dict[str, Any]:
        axes = list(self.request.axes)
        row: dict[str, Any] = typed_params(axes, dict(cell.params))
        row["seed"] = cell.seed
        row["snapshot_sha256"] = self.context.snapshots[cell.snapshot].sha256
        row["equity_hash"] = result.equity_hash if result.status == OK else None
        stats = result.stats or {}
        for key in STATS_KEYS:
            row[key] = stats.get(key) if result.status == OK else None
        row["status"] = result.status
        row["error"] = result.error
        if cell.window is not None:
            tags = dict(cell.tags)
            row["window"] = tags.get("window")
            row["phase"] = tags.get("phase")
            row["start"] = ns_to_iso(cell.window.start_ns or 0)
            row["end"] = None if cell.window.end_ns is None else ns_to_iso(cell.window.end_ns)
            row["warmup"] = cell.window.warmup
        return row

    def finished(self, cell: Cell) -> dict[str, Any]:
        return self.journal.finished[self.keys[cell.index]].row

    def rows(self) -> list[dict[str, Any]]:
        names = [a.name for a in self.request.axes]
        rows = [self.finished(c) for c in self.cells]
        return sorted(rows, key=lambda r: row_order(r, names))

    def runs(self) -> list[dict[str, Any]]:
        return [self.journal.finished[self.keys[c.index]].run for c in self.cells]

    # -- walk-forward ------------------------------------------------------------------------

    def walk_forward(self, spec: WalkForwardSpec,
                     prepared: list[PreparedData]) -> dict[str, Any]:
        plans: list[tuple[int, Window]] = []
        for snap, data in enumerate(prepared):
            times = snapshot_times(data.snapshot)
            plans.extend((snap, w) for w in walkforward.windows(spec, times,
                                                                 f"snapshot {data.path}"))
        combos = list(itertools.product(*(a.values for a in self.request.axes)))
        names = [a.name for a in self.request.axes]
        train: list[Cell] = []
        for snap, w in plans:
            window = TimeWindow(w.train_start, w.train_end, spec.warmup)
            for values in combos:
                for seed in self.request.seeds:
                    train.append(Cell(0, tuple(zip(names, values, strict=True)), seed, snap,
                                      window, (("window", w.number), ("phase", "train"))))
        self.run_phase("train", train)
        by_window: dict[tuple[int, int], list[Cell]] = {}
        for cell in self.cells:
            tags = dict(cell.tags)
            by_window.setdefault((cell.snapshot, int(tags["window"])), []).append(cell)
        winners: dict[tuple[int, int], tuple[tuple[tuple[str, str], ...], float | None]] = {}
        test: list[Cell] = []
        for snap, w in plans:
            candidates = []
            cells = by_window[(snap, w.number)]
            for values in combos:
                params = tuple(zip(names, values, strict=True))
                stats = [self._stats(c) for c in cells if c.params == params]
                candidates.append((params, stats))
            best, value = walkforward.choose(candidates, spec.optimise)
            winners[(snap, w.number)] = (best, value)
            window = TimeWindow(w.test_start, w.test_end, spec.warmup)
            for seed in self.request.seeds:
                test.append(Cell(0, best, seed, snap, window,
                                 (("window", w.number), ("phase", "test")), want_curve=True))
        self.run_phase("test", test)
        return {"walkforward": self._walk_forward_summary(spec, plans, winners, prepared)}

    def _stats(self, cell: Cell) -> dict[str, Any] | None:
        row = self.finished(cell)
        return {k: row.get(k) for k in STATS_KEYS} if row["status"] == OK else None

    def _walk_forward_summary(self, spec: WalkForwardSpec, plans: list[tuple[int, Window]],
                              winners: dict[tuple[int, int], tuple[Any, float | None]],
                              prepared: list[PreparedData]) -> dict[str, Any]:
        key = spec.optimise
        # Curves are in cash units (as equity_points reads them); written in the currency.
        execution = execution_settings(self.context.config(self.cells[0]))
        initial, unit = float(execution.initial_cash), 10.0 ** -execution.money.scale
        windows_out = []
        test_cells = [c for c in self.cells if dict(c.tags).get("phase") == "test"]
        for snap, w in plans:
            best, is_value = winners[(snap, w.number)]
            tests = [c for c in test_cells if c.snapshot == snap
                     and dict(c.tags)["window"] == w.number]
            oos_value = walkforward.mean_value([self._stats(c) for c in tests], key)
            windows_out.append({**w.describe(),
                                "snapshot_sha256": self.context.snapshots[snap].sha256,
                                "params": dict(best), "in_sample": is_value,
                                "out_of_sample": oos_value,
                                "gap": None if is_value is None or oos_value is None
                                else is_value - oos_value})
        stitched = []
        curve_rows: list[dict[str, Any]] = []
        for snap, data in enumerate(prepared):
            for seed in self.request.seeds:
                mine = sorted((c for c in test_cells if c.snapshot == snap and c.seed == seed),
                              key=lambda c: dict(c.tags)["window"])
                segments = []
                for cell in mine:
                    entry = self.journal.finished[self.keys[cell.index]]
                    if entry.row["status"] != OK or "curve" not in entry.run:
                        continue
                    segments.append(self.journal.curve(self.keys[cell.index]))
                ts, equity = walkforward.stitch(segments, initial)
                ppy = next((float(s["periods_per_year"]) for s in map(self._stats, mine)
                            if s is not None and s.get("periods_per_year")), None)
                stats = (walkforward.curve_stats(ts, equity, initial, ppy)
                         if ts.size and ppy else None)
                stitched.append({"snapshot_sha256": data.sha256, "seed": seed,
                                 "points": int(ts.size), "stats": stats,
                                 "segments": len(segments), "windows": len(mine)})
                curve_rows.append({"snapshot_sha256": data.sha256, "seed": seed, "ts": ts,
                                   "equity": equity * unit})
        self.stitched_curves = curve_rows
        gaps = [w["gap"] for w in windows_out if w["gap"] is not None]
        ins = [w["in_sample"] for w in windows_out if w["in_sample"] is not None]
        outs = [w["out_of_sample"] for w in windows_out if w["out_of_sample"] is not None]
        return {"spec": spec.describe(), "windows": windows_out, "stitched": stitched,
                "in_sample_mean": _mean(ins), "out_of_sample_mean": _mean(outs),
                "gap_mean": _mean(gaps), "statistic": key}


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _montecarlo(request: SweepRequest, rows: list[dict[str, Any]],
                config: BacktestConfig) -> dict[str, Any]:
    names = [a.name for a in request.axes]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        if row["status"] == OK:
            group = (row["snapshot_sha256"], *(row[n] for n in names))
            groups.setdefault(group, []).append(row)
    spreads = []
    for group, members in groups.items():
        spreads.append({"snapshot_sha256": group[0], "params": dict(zip(names, group[1:],
                                                                        strict=True)),
                        "seeds": len(members),
                        "distinct_equity_hashes": len({m["equity_hash"] for m in members}),
                        "statistics": montecarlo.spread(members)})
    sources = montecarlo.stochastic_sources(config)
    out: dict[str, Any] = {"stochastic": sources, "groups": spreads}
    if not sources:
        out["notice"] = ("the config has no stochastic fill model ([execution.slippage] model = "
                         "\"stochastic\" or [execution.latency] jitter): every seed gives the "
                         "same fills, so the spread is zero")
    return out


def _summary(request: SweepRequest, inputs: dict[str, Any], journal: Journal, driver: _Driver,
             rows: list[dict[str, Any]], resumed: int, extra: dict[str, Any], started: float,
             started_ns: int) -> dict[str, Any]:
    wall = time.perf_counter() - started
    runs = driver.runs()  # every cell's run record (resumed ones too): its seconds and bars
    bars = sum(int(r.get("bars") or 0) for r in runs)
    cell_seconds = sum(float(r.get("wall_s") or 0.0) for r in runs)
    failed = [r for r in rows if r["status"] == FAILED]
    names = [a.name for a in request.axes]
    counts = {"cells": len(rows), "ok": len(rows) - len(failed), "failed": len(failed),
              "resumed": resumed, "ran": driver.ran,
              "fast_path": sum(1 for r in runs if r.get("path") == "fast"),
              "engine_path": sum(1 for r in runs if r.get("path") != "fast")}
    backend = driver.backend
    summary: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": request.kind,
        "inputs": inputs,
        "inputs_sha256": journal.inputs_sha256,
        "sweep_hash": sweep_hash(rows),
        "counts": counts,
        "timings": {
            "wall_seconds": round(wall, 3),
            "cell_seconds": round(cell_seconds, 3),
            "bar_evaluations": bars,
            "bar_evaluations_per_second": round(bars / cell_seconds) if cell_seconds else None,
            "cells_per_second": round(driver.ran / wall, 3) if wall and driver.ran else None,
            "backend": request.backend,
            "workers": None if backend is None else backend.workers,
            "snapshot_reads": driver.snapshot_reads,
            "started_utc": ns_to_iso(started_ns - started_ns % 1000),
            "fast_path_in_build": importlib.util.find_spec("weltklassebot.fastpath") is not None,
        },
        "failed": [{**{n: r[n] for n in names}, "seed": r["seed"],
                    "snapshot_sha256": r["snapshot_sha256"], "error": r["error"],
                    **({"window": r["window"], "phase": r["phase"]} if "window" in r else {})}
                   for r in failed[:100]],
        "files": {"results": RESULTS, "report": REPORT if request.write_report else None,
                  "journal": JOURNAL},
        "argv": request.argv,
    }
    summary.update(extra)
    return summary


# -- outputs -----------------------------------------------------------------------------------

def results_table(rows: list[dict[str, Any]], axes: list[Axis]) -> pa.Table:
    """``results.parquet``: typed columns, in the order the issue of the format names them."""
    columns: dict[str, pa.Array] = {}
    for axis in axes:
        kind = pa.int64() if axis.kind == INT else pa.float64() if axis.kind == FLOAT \
            else pa.string()
        columns[axis.name] = pa.array([r[axis.name] for r in rows], kind)
    for name in BASE_COLUMNS:
        values = [r.get(name) for r in rows]
        if name == "seed":
            kind = pa.uint64()
        elif name in INT_STATS:
            kind = pa.int64()
        elif name in FLOAT_STATS:
            kind = pa.float64()
            values = [None if v is None else float(v) for v in values]
        else:
            kind = pa.string()
        columns[name] = pa.array(values, kind)
    if rows and "window" in rows[0]:
        columns["window"] = pa.array([r["window"] for r in rows], pa.int32())
        columns["phase"] = pa.array([r["phase"] for r in rows], pa.string())
        for name in ("start", "end"):
            columns[name] = pa.array(
                [None if r[name] is None else parse_time(r[name], name) for r in rows],
                pa.int64()).cast(pa.timestamp("ns", tz="UTC"))
        columns["warmup"] = pa.array([r["warmup"] for r in rows], pa.int64())
    return pa.table(columns)


def _write_outputs(request: SweepRequest, rows: list[dict[str, Any]], summary: dict[str, Any],
                   stitched: list[dict[str, Any]] | None) -> None:
    out = request.out
    if stitched is not None:
        write_stitched(out, stitched)
    _atomic(out / RESULTS, lambda p: pq.write_table(results_table(rows, list(request.axes)), p))
    _atomic(out / SWEEP_JSON, lambda p: p.write_text(
        json.dumps(summary, indent=2, sort_keys=False, allow_nan=False) + "\n", encoding="utf-8"))
    if request.write_report:
        from weltklassebot.sweep.report import build_sweep_report

        page = build_sweep_report(summary, rows, list(request.axes), request.report_stat,
                                  stitched)
        _atomic(out / REPORT, lambda p: p.write_bytes(page))


def write_stitched(out: Path, curves: list[dict[str, Any]]) -> None:
    """``walkforward.parquet``: each seed's stitched out-of-sample curve."""
    sha, seed, ts, equity = [], [], [], []
    for curve in curves:
        n = int(curve["ts"].size)
        sha.extend([curve["snapshot_sha256"]] * n)
        seed.extend([curve["seed"]] * n)
        ts.append(curve["ts"])
        equity.append(curve["equity"])
    table = pa.table({
        "snapshot_sha256": pa.array(sha, pa.string()),
        "seed": pa.array(seed, pa.uint64()),
        "ts": pa.array(np.concatenate(ts) if ts else np.zeros(0, np.int64),
                       pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "equity": pa.array(np.concatenate(equity) if equity else np.zeros(0), pa.float64()),
    })
    _atomic(out / WALKFORWARD, lambda p: pq.write_table(table, p))


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
