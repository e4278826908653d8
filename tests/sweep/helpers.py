"""Building sweep requests in the test process, and reading their outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from support.cli import run_cli
from weltklassebot.sweep.grid import parse_axis, parse_seeds
from weltklassebot.sweep.runner import SweepOutcome, SweepRequest, run_sweep

STOCHASTIC = {"execution": {"slippage": {"model": "stochastic", "max_bps": "8"},
                            "latency": {"delay": "1s", "jitter": "30m"}}}


def request(out: Path, snapshots: tuple[Path, ...], grids: tuple[str, ...] = (),
            seeds: str = "1..2", *, backend: str = "local", workers: int | None = 1,
            base: dict[str, Any] | None = None, fast_path: bool = False,
            strategy: str = "sma_cross", kind: str = "sweep", params: tuple[str, ...] = (),
            **extra: Any) -> SweepRequest:
    axes = tuple(parse_axis(g) for g in grids) + tuple(parse_axis(p, "--param")
                                                       for p in params)
    return SweepRequest(kind=kind, strategy=strategy,
                        base={"strategy": {"name": strategy}, **(base or {})},
                        config_file=None, snapshots=snapshots, axes=axes,
                        seeds=parse_seeds(seeds, 0), out=out, argv=["test"], backend=backend,
                        workers=workers, fast_path=fast_path, **extra)


def sweep(*args: Any, **kwargs: Any) -> SweepOutcome:
    return run_sweep(request(*args, **kwargs))


def table(directory: Path) -> pa.Table:
    return pq.read_table(directory / "results.parquet")


def sweep_json(directory: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((directory / "sweep.json").read_text())
    return loaded


def backtest_summary(tmp: Path, name: str, *args: str | Path) -> dict[str, Any]:
    """The summary of the same cell run alone as ``backtest``."""
    proc = run_cli("backtest", "--out", tmp / name, "--no-progress", "--no-report", "--json",
                   *args)
    assert proc.returncode == 0, proc.stderr
    summary: dict[str, Any] = json.loads(proc.stdout)
    return summary


def backtest_hash(tmp: Path, name: str, *args: str | Path) -> str:
    """The equity hash of the same cell run alone as ``backtest``."""
    return str(backtest_summary(tmp, name, *args)["equity_hash"])
