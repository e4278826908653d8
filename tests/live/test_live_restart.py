"""The service killed at random moments (SIGTERM and SIGKILL) and started again on the same
state directory ends with the fills and equity hash of an uninterrupted run, no fill applied
twice; also with the venue resending fills. Plus the restart decisions: resume, idle after the
end, a new run on a new snapshot or config, and how signals end the process."""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from support.cli import run_cli
from support.live import (
    log_events,
    metric,
    sample_slice,
    scrape,
    start_live,
    stop,
    summary,
    wait_ready,
)
from weltklassebot.config.model import BacktestConfig
from weltklassebot.runs.backtest import RunRequest, execute

CONFIG = """
seed = 11
[strategy]
name = "sma_cross"
params = { fast = 4, slow = 15 }
[execution]
initial_cash = 40000
slippage = { model = "stochastic", max_bps = 8 }
latency = { delay = "1s", jitter = "20m" }
[risk]
max_consecutive_losses = 3
cooldown = "12h"
max_position = 2
[service]
checkpoint_events = 150
checkpoint_seconds = 0.3
"""


def _reference(snapshot: Path, config_text: str, tmp: Path) -> dict[str, Any]:
    import tomllib

    raw = tomllib.loads(config_text)
    raw = {k: v for k, v in raw.items() if k not in ("service", "faults")}
    raw.setdefault("data", {})["snapshot"] = str(snapshot)
    config = BacktestConfig.model_validate(raw)
    out = tmp / "reference"
    execute(RunRequest(config=config, config_file=None, argv=[], out=out, runs_dir=tmp))
    return summary(out)


def _kill_loop(tmp: Path, config_text: str, kills: int,
               seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    snapshot = sample_slice(tmp / "btc.parquet", 2400, offset=8000)
    config = tmp / "live.toml"
    config.write_text(config_text)
    state, out, log = tmp / "state", tmp / "run", tmp / "live.log"
    rng = random.Random(seed)
    codes = []
    # 2400 one-hour bars at 1.2 million x: about seven seconds of events in all.
    for n in range(kills):
        proc = start_live(state, "--config", config, "--data-snapshot", snapshot,
                          "--exit-at-end", out=out, speed="1200000", log=log)
        ready = rng.random() < 0.8
        if ready:
            wait_ready(state, proc)
        time.sleep(rng.uniform(0.0, 0.6))
        sig = signal.SIGKILL if n % 2 else signal.SIGTERM
        codes.append((sig, ready, stop(proc, sig)))
        if (out / "summary.json").exists():
            break
    proc = start_live(state, "--config", config, "--data-snapshot", snapshot, "--exit-at-end",
                      out=out, speed="max", log=log)
    assert proc.wait(120) == 0
    for sig, ready, code in codes:
        # SIGTERM is a clean stop (0) once the service runs; before Python has even started
        # the command, the signal's default action ends it (-15). A run that had just ended
        # exits 0 whatever the signal.
        expected = ({0} if ready else {0, -signal.SIGTERM}) if sig == signal.SIGTERM \
            else {-signal.SIGKILL, 0}
        assert code in expected, (sig, ready, code)
    events = log_events(log)
    reference = _reference(snapshot, config_text, tmp)
    final = summary(out)
    assert final["equity_hash"] == reference["equity_hash"]
    for name in ("fills", "orders", "equity"):
        assert pq.read_table(out / f"{name}.parquet").equals(
            pq.read_table(tmp / "reference" / f"{name}.parquet")), name
    assert not [e for e in events if e["event"] == "restart_replay_mismatch"]
    resumed = [e for e in events if e["event"] == "run_resumed"]
    assert len(resumed) >= kills // 2, "the kills never caught a running service"
    return final, events


def test_random_kills_and_restarts_end_with_the_uninterrupted_hash(tmp_path: Path) -> None:
    final, _events = _kill_loop(tmp_path, CONFIG, kills=14, seed=1)
    assert final["live"]["duplicate_fills"] == 0


def test_random_kills_with_resent_fills_drop_every_resend(tmp_path: Path) -> None:
    final, _events = _kill_loop(tmp_path, CONFIG + "[faults]\nresend_fills = 0.4\n", kills=8,
                                seed=2)
    assert final["live"]["duplicate_fills"] > 0


def test_sigterm_exits_0_quickly_and_sigint_130(tmp_path: Path) -> None:
    snapshot = sample_slice(tmp_path / "btc.parquet", 3000)
    state = tmp_path / "state"
    proc = start_live(state, "--data-snapshot", snapshot, speed="3600")
    info = wait_ready(state, proc)
    text = scrape(info["port"])
    assert metric(text, "risk_state", 'state="ACTIVE"') == 1.0
    assert metric(text, "runs_started_total", 'reason="new"') == 1.0
    started = time.monotonic()
    assert stop(proc, signal.SIGTERM) == 0
    assert time.monotonic() - started < 5
    assert not (state / "service.json").exists()
    proc = start_live(state, "--data-snapshot", snapshot, speed="3600")
    info = wait_ready(state, proc)
    assert metric(scrape(info["port"]), "runs_started_total", 'reason="resumed"') == 1.0
    assert stop(proc, signal.SIGINT) == 130


def test_an_ended_run_is_not_traded_again_and_a_new_snapshot_starts_a_new_run(
        tmp_path: Path) -> None:
    first = sample_slice(tmp_path / "a.parquet", 600)
    state, runs = tmp_path / "state", tmp_path / "runs"
    args = ("live", "--state-dir", state, "--runs-dir", runs, "--speed", "max",
            "--metrics-port", "0", "--exit-at-end")
    done = run_cli(*args, "--data-snapshot", first)
    assert done.returncode == 0, done.stdout
    assert len(list(runs.iterdir())) == 1
    again = run_cli(*args, "--data-snapshot", first)
    assert again.returncode == 0, again.stdout
    assert "run_already_ended" in again.stdout
    assert len(list(runs.iterdir())) == 1, "the same data was traded twice"
    second = sample_slice(tmp_path / "b.parquet", 600, offset=600)
    fresh = run_cli(*args, "--data-snapshot", second)
    assert fresh.returncode == 0, fresh.stdout
    started = [json.loads(line) for line in fresh.stdout.splitlines()
               if '"run_started"' in line]
    assert started
    assert started[0]["reason"] == "new_snapshot"
    assert len(list(runs.iterdir())) == 2


@pytest.mark.parametrize(("change", "reason"), [
    ("--seed", "config_changed"),
    ("--data-snapshot", "new_snapshot"),
])
def test_a_changed_deploy_closes_the_old_run_and_starts_a_new_one(
        tmp_path: Path, change: str, reason: str) -> None:
    snapshot = sample_slice(tmp_path / "a.parquet", 4000)
    state, runs = tmp_path / "state", tmp_path / "runs"
    proc = start_live(state, "--data-snapshot", snapshot, "--runs-dir", runs, speed="36000")
    wait_ready(state, proc)
    time.sleep(0.5)
    assert stop(proc) == 0
    extra = ["--seed", "5"] if change == "--seed" else []
    other = snapshot if change == "--seed" else sample_slice(tmp_path / "b.parquet", 300)
    done = run_cli("live", "--state-dir", state, "--runs-dir", runs, "--data-snapshot", other,
                   "--speed", "max", "--metrics-port", "0", "--exit-at-end", *extra)
    assert done.returncode == 0, done.stdout
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    closed = next(e for e in lines if e["event"] == "run_closed")
    assert closed["reason"] == reason
    assert Path(closed["run_dir"]).is_dir()
    manifest = json.loads((Path(closed["run_dir"]) / "manifest.json").read_text())
    assert manifest["live"]["complete"] is False
    assert manifest["live"]["closed_reason"] == reason
    started = next(e for e in lines if e["event"] == "run_started")
    assert started["reason"] == reason
