"""``live --speed max`` over a snapshot gives ``backtest``'s fills, orders, equity and hash.

Every built-in strategy and the one-symbol examples, with risk limits that bite (cool-downs
after losses, position and order limits, the drawdown cap with flattening), one and several
symbols. The
service runs in-process here (the same ``LiveService`` the CLI starts); one test goes through the
CLI in a subprocess, as the runbook does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from support.cli import REPO, run_cli
from support.live import SAMPLE, sample_slice
from weltklassebot.config.model import BacktestConfig
from weltklassebot.config.service import LiveSettings, ServiceConfig
from weltklassebot.runs.backtest import RunRequest, execute
from weltklassebot.runs.live import LiveService
from weltklassebot.runs.live_record import LiveRequest

RISK = {
    "max_consecutive_losses": 2, "cooldown": "36h", "max_position": 3, "max_order_qty": 2,
    "drawdown_cap": "0.03", "flatten_on_halt": True,
}
STRATEGIES = [
    ("sma_cross", {"fast": 5, "slow": 20}),
    ("donchian_breakout", {}),
    (str(REPO / "examples" / "breakout.py"), {}),
    (str(REPO / "examples" / "rsi_mean_reversion.py"), {}),
    (str(REPO / "examples" / "bracket_trend.py"), {}),
    (str(REPO / "examples" / "target_allocation.py"), {"max_fraction": "0.5"}),
    # examples/rotation.py is not here: it ranks several symbols, and this list runs one
]


def _config(snapshot: Path, strategy: str, params: dict[str, Any],
            risk: dict[str, Any]) -> BacktestConfig:
    return BacktestConfig.model_validate({
        "seed": 7,
        "data": {"snapshot": str(snapshot)},
        "strategy": {"name": strategy, "params": params},
        "execution": {"initial_cash": 30000,
                      "slippage": {"model": "stochastic", "max_bps": 5},
                      "latency": {"delay": "1s", "jitter": "30m"}},
        "risk": risk,
    })


def _live(config: BacktestConfig, tmp: Path, *, resend: float = 0.0) -> Path:
    out = tmp / "live-run"
    request = LiveRequest(
        config=config, settings=LiveSettings(service=ServiceConfig(checkpoint_events=500)),
        config_file=None, argv=["python -m cli", "live"], state_dir=tmp / "state",
        runs_dir=tmp / "runs", out=out, speed=None, exit_at_end=True, bind="127.0.0.1", port=0,
        resend_fills=resend)
    service = LiveService(request)
    assert service.run() == 0
    assert service.status.replay_mismatches == 0
    return out


def _backtest(config: BacktestConfig, tmp: Path) -> Path:
    out = tmp / "backtest-run"
    execute(RunRequest(config=config, config_file=None, argv=[], out=out, runs_dir=tmp / "bt"))
    return out


def _same_run(live: Path, backtest: Path) -> dict[str, Any]:
    a: dict[str, Any] = json.loads((live / "summary.json").read_text())
    b = json.loads((backtest / "summary.json").read_text())
    assert a["equity_hash"] == b["equity_hash"]
    for name in ("fills", "orders", "equity"):
        left = pq.read_table(live / f"{name}.parquet")
        right = pq.read_table(backtest / f"{name}.parquet")
        assert left.equals(right), name
    for key in ("fills", "orders", "final_equity", "final_cash", "fees_paid", "denials",
                "risk_state", "bars", "equity_points"):
        assert a[key] == b[key], key
    manifest = json.loads((live / "manifest.json").read_text())
    assert manifest["kind"] == "live"
    assert manifest["equity_hash"] == a["equity_hash"]
    return a


@pytest.mark.parametrize(("strategy", "params"), STRATEGIES,
                         ids=["sma", "donchian", "example", "rsi", "bracket", "target"])
@pytest.mark.parametrize("risk", [RISK, {}], ids=["risk", "no-risk"])
def test_live_at_max_speed_equals_backtest(tmp_path: Path, strategy: str,
                                           params: dict[str, Any],
                                           risk: dict[str, Any]) -> None:
    snapshot = sample_slice(tmp_path / "btc.parquet", 2500, offset=4000)
    config = _config(snapshot, strategy, params, risk)
    summary = _same_run(_live(config, tmp_path), _backtest(config, tmp_path))
    assert summary["fills"] > 0
    if risk:
        assert summary["denials"] or summary["risk_transitions"], "the limits never bit"


def test_several_symbols_and_resent_fills_equal_backtest(tmp_path: Path) -> None:
    table = pq.read_table(SAMPLE).slice(0, 1500)
    parts = []
    for symbol, scale in (("BTC-USD", 1.0), ("XBT-EUR", 0.9)):
        part = table
        for column in ("open", "high", "low", "close"):
            index = part.schema.get_field_index(column)
            values = pa.compute.multiply(part[column], scale)
            part = part.set_column(index, column, values)
        parts.append(part.append_column("symbol", pa.array([symbol] * len(part))))
    merged = pa.concat_tables(parts).sort_by([("ts", "ascending"), ("symbol", "ascending")])
    snapshot = tmp_path / "two.parquet"
    pq.write_table(merged.replace_schema_metadata(table.schema.metadata), snapshot)
    config = _config(snapshot, "sma_cross", {"fast": 4, "slow": 12}, RISK)
    live = _live(config, tmp_path, resend=0.5)
    summary = _same_run(live, _backtest(config, tmp_path))
    assert summary["live"]["duplicate_fills"] > 0, "the resend fault sent nothing twice"


def test_live_through_the_cli_equals_backtest_through_the_cli(tmp_path: Path) -> None:
    snapshot = sample_slice(tmp_path / "btc.parquet", 1200)
    live = run_cli("live", "--data-snapshot", snapshot, "--state-dir", tmp_path / "state",
                   "--out", tmp_path / "live", "--speed", "max", "--exit-at-end",
                   "--metrics-port", "0", "--seed", "3")
    assert live.returncode == 0, live.stdout + live.stderr
    lines = [json.loads(line) for line in live.stdout.splitlines() if line.startswith("{")]
    events = {line["event"] for line in lines}
    assert {"run_started", "service_ready", "run_ended", "service_stopped"} <= events
    started = next(line for line in lines if line["event"] == "run_started")
    for key in ("run_id", "seed", "snapshot_sha256", "strategy", "strategy_version",
                "invocation"):
        assert started[key] not in (None, ""), key
    backtest = run_cli("backtest", "--data-snapshot", snapshot, "--out", tmp_path / "bt",
                       "--seed", "3", "--no-progress")
    assert backtest.returncode == 0, backtest.stderr
    _same_run(tmp_path / "live", tmp_path / "bt")
