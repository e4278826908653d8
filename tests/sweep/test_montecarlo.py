"""Monte Carlo over seeds: one parameter set, the spread of every statistic."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from support.cli import run_cli

from .helpers import STOCHASTIC, sweep, table


def test_quantiles_over_seeds(tmp_path: Path, small_snapshots: tuple[Path, Path]) -> None:
    outcome = sweep(tmp_path / "mc", small_snapshots[:1], seeds="1..8", base=STOCHASTIC,
                    kind="montecarlo", params=("fast=5", "slow=30"), workers=2,
                    write_report=False)
    rows = table(tmp_path / "mc").to_pylist()
    assert len(rows) == 8
    assert {(r["fast"], r["slow"]) for r in rows} == {(5, 30)}
    mc = outcome.summary["montecarlo"]
    assert mc["stochastic"] == ["stochastic slippage", "latency jitter"]
    (group,) = mc["groups"]
    assert group["seeds"] == 8
    assert group["distinct_equity_hashes"] == 8
    for key in ("total_return", "sharpe", "max_drawdown"):
        values = np.array([r[key] for r in rows], dtype=np.float64)
        spread = group["statistics"][key]
        assert spread["n"] == 8
        for name, q in (("q05", 0.05), ("q25", 0.25), ("q50", 0.5), ("q75", 0.75),
                        ("q95", 0.95)):
            assert np.isclose(spread[name], np.quantile(values, q), rtol=1e-10, atol=0)
        assert spread["min"] <= spread["q05"] <= spread["q50"] <= spread["q95"] <= spread["max"]
    money = group["statistics"]["fees"]
    assert money["n"] == 8
    assert money["min"] > 0


def test_without_a_stochastic_model_the_output_says_so(
        tmp_path: Path, small_snapshots: tuple[Path, Path]) -> None:
    proc = run_cli("montecarlo", "--param", "fast=5", "--param", "slow=30", "--seeds", "1..3",
                   "--data-snapshot", small_snapshots[0], "--workers", "1", "--no-report",
                   "--no-fast-path", "--out", tmp_path / "mc")
    assert proc.returncode == 0, proc.stderr
    assert "Monte Carlo of sma_cross: 3 cells" in proc.stdout
    assert "every seed gives the same fills" in proc.stdout
    assert len(set(table(tmp_path / "mc").column("equity_hash").to_pylist())) == 1
