"""Running one cell, in whatever process a backend gives it.

A worker holds the sweep's context (strategy, base config, the validated snapshots) and each
snapshot's bars, read the first time a cell needs them and kept for every later cell: the file
is read once per worker, never per cell. A cell is the backtest's own path (``simulate``) over
those bars, or the compiled fast path when the strategy offers one for the cell's settings
(``weltklassebot.fastpath.available(spec, config)``); either gives the cell's equity hash and
statistics. Whatever goes wrong in a cell is caught here and becomes its error: a failing cell
never stops the sweep.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from weltklassebot.config.load import deep_merge, validate_config
from weltklassebot.config.model import BacktestConfig
from weltklassebot.errors import WeltklasseError
from weltklassebot.runs.results import equity_points
from weltklassebot.runs.window import plan_window
from weltklassebot.strategy.loader import StrategySpec, resolve_strategy
from weltklassebot.sweep.cells import FAILED, OK, Cell, CellResult
from weltklassebot.sweep.data import SnapshotArrays, SnapshotRef


@dataclass(frozen=True)
class SweepContext:
    """What every cell of a sweep shares (picklable: it goes to every worker)."""

    strategy: str
    base: dict[str, Any]  # the raw config (the file and flags), without snapshot and seed
    snapshots: tuple[SnapshotRef, ...]
    with_hash: bool = True
    fast_path: bool = True  # use the compiled path where the strategy offers one

    def config(self, cell: Cell) -> BacktestConfig:
        overrides: dict[str, Any] = {
            "seed": cell.seed,
            "data": {"snapshot": self.snapshots[cell.snapshot].path},
            "strategy": {"name": self.strategy, "params": dict(cell.params)},
        }
        return validate_config(BacktestConfig, deep_merge(self.base, overrides),
                               "sweep settings")


def fastpath_module() -> ModuleType | None:
    """``weltklassebot.fastpath`` when this build has it (it is optional)."""
    try:
        import weltklassebot.fastpath as module
    except ModuleNotFoundError as exc:
        if exc.name in ("weltklassebot.fastpath", "numba"):
            return None
        raise
    needed = ("available", "run", "FallBack")
    if not all(hasattr(module, name) for name in needed):
        return None
    return module


class Worker:
    """Runs cells for one process (or one Ray actor), keeping each snapshot's bars."""

    def __init__(self, context: SweepContext,
                 arrays: dict[str, SnapshotArrays] | None = None) -> None:
        self.context = context
        self.arrays: dict[str, SnapshotArrays] = dict(arrays or {})
        self.fast = fastpath_module() if context.fast_path else None
        self.loads = 0  # snapshot reads by this worker (the tests count them)

    def bars(self, snapshot: int) -> SnapshotArrays:
        ref = self.context.snapshots[snapshot]
        loaded = self.arrays.get(ref.sha256)
        if loaded is None:
            loaded = SnapshotArrays.load(ref)
            self.arrays[ref.sha256] = loaded
            self.loads += 1
        return loaded

    def run(self, cell: Cell) -> CellResult:
        started = time.perf_counter()
        try:
            result = self._run(cell)
        except WeltklasseError as exc:
            result = CellResult(FAILED, error=exc.message)
        except Exception as exc:
            result = CellResult(FAILED, error=f"{type(exc).__name__}: {exc}")
        result.wall_s = time.perf_counter() - started
        return result

    def _run(self, cell: Cell) -> CellResult:
        config = self.context.config(cell)
        spec = resolve_strategy(config.strategy.name, dict(config.strategy.params))
        arrays = self.bars(cell.snapshot)
        if (cell.window is None and not cell.want_curve and len(arrays.instruments) == 1
                and self.fast is not None and self.fast.available(spec, config)):
            try:
                return self._run_fast(spec, config, arrays)
            except self.fast.FallBack:
                pass  # the engine computes what the fast path cannot (its reason is no error)
        return self._run_engine(cell, spec, config, arrays)

    def _run_fast(self, spec: StrategySpec, config: BacktestConfig,
                  arrays: SnapshotArrays) -> CellResult:
        """The compiled path over the bars this worker holds: the engine's fills, equity hash
        and statistics (computed by the backtest's own code, ``fastpath.run``)."""
        assert self.fast is not None
        out = self.fast.run(spec, config, arrays, with_hash=self.context.with_hash)
        digest = out["equity_hash"] if self.context.with_hash else None
        return CellResult(OK, equity_hash=None if digest is None else str(digest),
                          stats=dict(out["stats"]), path="fast", bars=len(arrays))

    def _run_engine(self, cell: Cell, spec: StrategySpec, config: BacktestConfig,
                    arrays: SnapshotArrays) -> CellResult:
        from weltklassebot.runs.backtest import simulate

        ref = arrays.ref
        plan = (None if cell.window is None
                else plan_window(cell.window, arrays.ts, f"snapshot {ref.path}"))
        # The record files of a cell live only as long as it runs: the sweep keeps its row.
        with tempfile.TemporaryDirectory(prefix="weltklassebot-cell-") as scratch:
            directory = Path(scratch)
            sim = simulate(directory, config, spec, ref.instruments, ref.intervals,
                           [arrays.chunk()], rows=ref.rows, plan=plan,
                           with_hash=self.context.with_hash, log=False)
            curve = None
            if cell.want_curve:
                ts, equity = equity_points(directory / "equity.parquet")
                curve = (ts.tolist(), equity.tolist())
        bars = ref.rows if plan is None else plan.warmup_bars + plan.bars
        return CellResult(OK, equity_hash=sim.equity_hash, stats=dict(sim.analysis.stats),
                          path="engine", bars=bars, curve=curve)


# -- the process pool's side: one Worker per process -----------------------------------------

_WORKER: Worker | None = None


def init_process(context: SweepContext) -> None:
    """Pool initializer: the worker of this process. On Linux it also asks to be killed with
    its parent, so a killed sweep leaves no process behind."""
    global _WORKER
    _die_with_parent()
    _WORKER = Worker(context)


def run_in_process(cell: Cell) -> tuple[int, CellResult, int]:
    """A cell in a pool process: its index, result and this process's snapshot reads."""
    assert _WORKER is not None, "init_process was not called"
    result = _WORKER.run(cell)
    return cell.index, result, _WORKER.loads


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except OSError:
        return
