"""Sweeps on the local backend: the table and hash do not depend on the workers, each cell is
the backtest it stands for, a failing cell is recorded, several snapshots and seeds."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from support.cli import run_cli
from weltklassebot.errors import UsageError
from weltklassebot.runs.results import STATS_KEYS

from .helpers import STOCHASTIC, backtest_summary, sweep, sweep_json, table


def fast_path_in_build() -> bool:
    return importlib.util.find_spec("weltklassebot.fastpath") is not None

GRID = ("fast=5,10", "slow=30,60")


def test_one_and_two_workers_give_the_same_table_and_hash(
        tmp_path: Path, small_snapshots: tuple[Path, Path]) -> None:
    one = sweep(tmp_path / "one", small_snapshots[:1], GRID, workers=1)
    two = sweep(tmp_path / "two", small_snapshots[:1], GRID, workers=2)
    assert table(tmp_path / "one").equals(table(tmp_path / "two"))
    assert one.summary["sweep_hash"] == two.summary["sweep_hash"]
    assert one.summary["counts"]["ok"] == 8
    assert one.summary["counts"]["failed"] == 0
    # The snapshot is read once per worker, not per cell.
    assert one.snapshot_reads == 1
    assert 1 <= two.snapshot_reads <= 2
    assert two.summary["timings"]["workers"] == 2


def test_results_have_the_issue_columns(tmp_path: Path,
                                        small_snapshots: tuple[Path, Path]) -> None:
    sweep(tmp_path / "s", small_snapshots[:1], GRID, seeds="3")
    results = table(tmp_path / "s")
    assert results.column_names == ["fast", "slow", "seed", "snapshot_sha256", "equity_hash",
                                    *STATS_KEYS, "status", "error"]
    assert str(results.schema.field("fast").type) == "int64"
    rows = results.to_pylist()
    assert [(r["fast"], r["slow"]) for r in rows] == [(5, 30), (5, 60), (10, 30), (10, 60)]
    assert {r["seed"] for r in rows} == {3}
    summary = sweep_json(tmp_path / "s")
    assert summary["inputs"]["grid"] == [{"name": "fast", "values": ["5", "10"]},
                                         {"name": "slow", "values": ["30", "60"]}]
    assert summary["counts"]["cells"] == 4
    assert {"wall_seconds", "bar_evaluations", "cells_per_second"} <= set(summary["timings"])
    assert (tmp_path / "s" / "report.html").stat().st_size > 1_000_000  # plotly inlined


def test_each_cell_is_the_backtest_it_stands_for(tmp_path: Path,
                                                 small_snapshots: tuple[Path, Path]) -> None:
    """Re-run alone, a cell gives its recorded equity hash (and statistics): engine cells,
    and fast-path cells where this build has the compiled path."""
    engine = sweep(tmp_path / "engine", small_snapshots[:1], ("fast=5,10", "slow=30"),
                   seeds="4", base=STOCHASTIC)
    fast = sweep(tmp_path / "fast", small_snapshots[:1], ("fast=5,10", "slow=30"), seeds="4",
                 base=STOCHASTIC, fast_path=True)
    assert engine.summary["sweep_hash"] == fast.summary["sweep_hash"]
    config = tmp_path / "stochastic.toml"
    config.write_text('[execution.slippage]\nmodel = "stochastic"\nmax_bps = "8"\n'
                      '[execution.latency]\ndelay = "1s"\njitter = "30m"\n')
    assert fast.summary["counts"]["fast_path"] == (2 if fast_path_in_build() else 0)
    for row, fast_row in zip(engine.rows, fast.rows, strict=True):
        alone = backtest_summary(tmp_path, f"alone-{row['fast']}", "--config", config,
                                 "--data-snapshot", small_snapshots[0], "--seed", "4",
                                 "--param", f"fast={row['fast']}", "--param", "slow=30")
        assert alone["equity_hash"] == row["equity_hash"]
        # The same statistics, by either path, as the backtest's summary.json.
        assert {k: row[k] for k in STATS_KEYS} == alone["stats"]
        assert {k: fast_row[k] for k in STATS_KEYS} == alone["stats"]


def test_a_failing_cell_is_recorded_and_the_sweep_goes_on(
        tmp_path: Path, small_snapshots: tuple[Path, Path]) -> None:
    outcome = sweep(tmp_path / "s", small_snapshots[:1], ("fast=5,40", "slow=30"), seeds="1..2",
                    workers=2)
    counts = outcome.summary["counts"]
    assert counts == {**counts, "cells": 4, "ok": 2, "failed": 2}
    rows = table(tmp_path / "s").to_pylist()
    failed = [r for r in rows if r["status"] == "failed"]
    assert [(r["fast"], r["seed"]) for r in failed] == [(40, 1), (40, 2)]
    for row in failed:
        assert "fast (40) must be smaller than slow (30)" in row["error"]
        assert row["equity_hash"] is None
        assert row["sharpe"] is None
    assert all(r["error"] is None for r in rows if r["status"] == "ok")
    assert len(outcome.summary["failed"]) == 2


def test_two_snapshots_and_several_seeds(tmp_path: Path,
                                         small_snapshots: tuple[Path, Path]) -> None:
    outcome = sweep(tmp_path / "s", small_snapshots, ("fast=5", "slow=30"), seeds="1..3",
                    base=STOCHASTIC, workers=2)
    rows = outcome.rows
    assert len(rows) == 6
    shas = sorted({r["snapshot_sha256"] for r in rows})
    assert len(shas) == 2
    assert [r["seed"] for r in rows] == [1, 2, 3, 1, 2, 3]
    assert [r["snapshot_sha256"] for r in rows] == [shas[0]] * 3 + [shas[1]] * 3
    # Stochastic fills: every seed and snapshot its own run.
    assert len({r["equity_hash"] for r in rows}) == 6
    assert outcome.summary["timings"]["snapshot_reads"] <= 4


def test_outputs_refuse_reuse_and_other_inputs(tmp_path: Path,
                                               small_snapshots: tuple[Path, Path]) -> None:
    sweep(tmp_path / "s", small_snapshots[:1], ("fast=5", "slow=30"), seeds="1")
    with pytest.raises(UsageError, match="--resume"):
        sweep(tmp_path / "s", small_snapshots[:1], ("fast=5", "slow=30"), seeds="1")
    with pytest.raises(UsageError, match="these differ: grid"):
        sweep(tmp_path / "s", small_snapshots[:1], ("fast=6", "slow=30"), seeds="1",
              resume=True)
    again = sweep(tmp_path / "s", small_snapshots[:1], ("fast=5", "slow=30"), seeds="1",
                  resume=True)
    assert again.summary["counts"]["resumed"] == 1
    assert again.summary["counts"]["ran"] == 0
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "other.txt").write_text("x")
    with pytest.raises(UsageError, match="not empty"):
        sweep(tmp_path / "full", small_snapshots[:1], ("fast=5", "slow=30"), seeds="1")
    with pytest.raises(UsageError, match="has no parameter lookback"):
        sweep(tmp_path / "bad", small_snapshots[:1], ("lookback=5",), seeds="1")
    with pytest.raises(UsageError, match="name of a column"):
        sweep(tmp_path / "bad", small_snapshots[:1], ("trades=5",), seeds="1")


def test_the_cli(tmp_path: Path, small_snapshots: tuple[Path, Path]) -> None:
    proc = run_cli("sweep", "--grid", "fast=5:10:5", "--grid", "slow=30", "--seeds", "1..2",
                   "--data-snapshot", small_snapshots[0], "--workers", "1", "--out",
                   tmp_path / "s", "--no-fast-path")
    assert proc.returncode == 0, proc.stderr
    assert "Sweep of sma_cross: 4 cells (4 ok, 0 failed" in proc.stdout
    assert "Sweep hash" in proc.stdout
    assert pq.read_table(tmp_path / "s" / "results.parquet").num_rows == 4
    bad = run_cli("sweep", "--grid", "fast=5:1:1", "--out", tmp_path / "t")
    assert bad.returncode == 2
    assert "the step must be positive" in bad.stderr
    ray_address = run_cli("sweep", "--address", "127.0.0.1:1", "--out", tmp_path / "u")
    assert ray_address.returncode == 2
    assert "--backend ray" in ray_address.stderr
