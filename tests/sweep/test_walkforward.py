"""Walk-forward: windows, the in-sample winner, out-of-sample cells that are `backtest --start
--end --warmup` runs, the stitched curve chained from segments that each start flat."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from support.cli import run_cli
from weltklassebot.config.model import BacktestConfig
from weltklassebot.errors import UsageError
from weltklassebot.runs.backtest import RunRequest, execute
from weltklassebot.runs.results import equity_points
from weltklassebot.runs.window import TimeWindow, parse_time
from weltklassebot.sweep.walkforward import make_spec, parse_period

from .helpers import backtest_hash, sweep, sweep_json, table

NS_PER_DAY = 86_400 * 10**9


def test_periods_are_calendar_periods() -> None:
    jan31 = parse_time("2019-01-31T12:00:00Z", "t")
    assert parse_period("1m", "--test").add(jan31) == parse_time("2019-02-28T12:00:00Z", "t")
    assert parse_period("2y", "--train").add(jan31) == parse_time("2021-01-31T12:00:00Z", "t")
    assert parse_period("10d", "x").add(jan31) == jan31 + 10 * NS_PER_DAY
    with pytest.raises(UsageError, match="not a period"):
        parse_period("6q", "--test")
    with pytest.raises(UsageError, match="shorter than --test"):
        make_spec("1y", "6m", "3m", "sharpe", 0)
    with pytest.raises(UsageError, match="not a statistic"):
        make_spec("1y", "6m", None, "luck", 0)


def test_walk_forward(tmp_path: Path, small_snapshots: tuple[Path, Path]) -> None:
    data = small_snapshots[0]
    spec = make_spec("20d", "10d", None, "sharpe", 30)
    outcome = sweep(tmp_path / "wf", (data,), ("fast=5,10", "slow=30"), seeds="1",
                    kind="walkforward", walkforward=spec, workers=2)
    rows = table(tmp_path / "wf").to_pylist()
    assert table(tmp_path / "wf").column_names[-5:] == ["window", "phase", "start", "end",
                                                        "warmup"]
    windows = sweep_json(tmp_path / "wf")["walkforward"]["windows"]
    assert [w["window"] for w in windows] == [1, 2, 3, 4, 5]
    assert len(rows) == 5 * 2 + 5
    assert outcome.summary["counts"]["ok"] == 15
    for w in windows:
        train = [r for r in rows if r["window"] == w["window"] and r["phase"] == "train"]
        (test,) = [r for r in rows if r["window"] == w["window"] and r["phase"] == "test"]
        best = max(train, key=lambda r: (-math.inf if r["sharpe"] is None else r["sharpe"],
                                         -r["fast"]))
        assert w["params"] == {"fast": str(best["fast"]), "slow": "30"}
        assert test["fast"] == best["fast"]
        assert w["in_sample"] == best["sharpe"]
        assert w["out_of_sample"] == test["sharpe"]
        if test["sharpe"] is None:  # no trade out of sample: a flat curve has no Sharpe
            assert w["gap"] is None
        else:
            assert w["gap"] == pytest.approx(best["sharpe"] - test["sharpe"], rel=1e-12)
        assert test["warmup"] == 30
    # Every test cell is an ordinary ranged backtest, and starts flat with the initial cash.
    segments = []
    for w in windows:
        (test,) = [r for r in rows if r["window"] == w["window"] and r["phase"] == "test"]
        config = BacktestConfig.model_validate(
            {"seed": 1, "data": {"snapshot": str(data)},
             "strategy": {"name": "sma_cross", "params": {"fast": str(test["fast"]),
                                                          "slow": "30"}}})
        window = TimeWindow(parse_time(w["test_start"], "s"), parse_time(w["test_end"], "e"), 30)
        run = execute(RunRequest(config=config, config_file=None, argv=["test"],
                                 out=tmp_path / f"seg{w['window']}", runs_dir=tmp_path,
                                 write_report=False, window=window))
        assert run.summary["equity_hash"] == test["equity_hash"]
        assert run.summary["initial_equity"] == "1000000"
        segments.append(equity_points(run.run_dir / "equity.parquet"))
    stitched = pq.read_table(tmp_path / "wf" / "walkforward.parquet")
    level, expected = 1.0, list[float]()
    for _ts, units in segments:  # cash units: 1e-8 of a dollar
        expected.extend(units / 1e14 * level * 1e6)
        level = float(units[-1]) / 1e14 * level
    got = np.asarray(stitched.column("equity").to_numpy())
    assert got.size == sum(s[0].size for s in segments)
    assert np.allclose(got, np.asarray(expected), rtol=1e-12, atol=0)
    final = outcome.summary["walkforward"]["stitched"][0]["stats"]["total_return"]
    assert math.isclose(final, level - 1.0, rel_tol=1e-9)


def test_a_test_cell_re_run_alone_with_the_cli(tmp_path: Path,
                                               small_snapshots: tuple[Path, Path]) -> None:
    data = small_snapshots[1]
    spec = make_spec("30d", "15d", None, "total_return", 24)
    sweep(tmp_path / "wf", (data,), ("fast=6,12", "slow=40"), seeds="2", kind="walkforward",
          walkforward=spec, write_report=False)
    rows = table(tmp_path / "wf").to_pylist()
    test = next(r for r in rows if r["phase"] == "test")
    start = test["start"].strftime("%Y-%m-%dT%H:%M:%SZ")
    end = test["end"].strftime("%Y-%m-%dT%H:%M:%SZ")
    alone = backtest_hash(tmp_path, "alone", "--data-snapshot", data, "--seed", "2",
                          "--param", f"fast={test['fast']}", "--param", "slow=40",
                          "--start", start, "--end", end, "--warmup", "24")
    assert alone == test["equity_hash"]


def test_the_walkforward_cli(tmp_path: Path, small_snapshots: tuple[Path, Path]) -> None:
    proc = run_cli("walkforward", "--grid", "fast=5,10", "--grid", "slow=30", "--train",
                   "20d", "--test", "20d", "--warmup", "30", "--data-snapshot",
                   small_snapshots[0], "--workers", "1", "--no-fast-path", "--no-report",
                   "--out", tmp_path / "wf")
    assert proc.returncode == 0, proc.stderr
    assert "Walk-forward of sma_cross: 9 cells (9 ok" in proc.stdout
    assert "Walk-forward  3 windows" in proc.stdout
    assert "stitched seed 0" in proc.stdout
    short = run_cli("walkforward", "--grid", "fast=5", "--train", "2y", "--test", "1y",
                    "--data-snapshot", small_snapshots[0], "--out", tmp_path / "short")
    assert short.returncode == 2
    assert "too short for one window" in short.stderr
