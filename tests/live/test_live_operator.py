"""Operator commands reach the running service through its state directory, take effect at a
recorded event cursor, and are applied again at that cursor when a restart re-runs events; a
command written while no service runs is adopted at the next start."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

from support.cli import run_cli
from support.live import log_events, metric, sample_slice, scrape, start_live, stop, wait_ready


def _risk(*args: str | Path) -> dict[str, Any]:
    done = run_cli("risk", *args, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(done.stdout))


def test_halt_and_resume_reach_the_running_service_and_survive_a_kill(tmp_path: Path) -> None:
    snapshot = sample_slice(tmp_path / "btc.parquet", 3000)
    state, out, log = tmp_path / "state", tmp_path / "run", tmp_path / "live.log"
    config = tmp_path / "live.toml"
    config.write_text("[service]\ncheckpoint_events = 100000\ncheckpoint_seconds = 3600\n")
    # 3000 hourly bars at 360000x: 30 s of events, far more than the test needs.
    proc = start_live(state, "--data-snapshot", snapshot, "--config", config, out=out,
                      speed="360000", log=log)
    info = wait_ready(state, proc)
    time.sleep(0.3)
    issued = time.monotonic()
    halted = _risk("halt", "--state-dir", state, "--reason", "drill", "--wait", "10")
    took = time.monotonic() - issued
    assert halted["mode"] == "handed_over", halted
    assert halted["ack"]["state"] == "HALTED", halted
    assert took < 10, took  # the CLI waited for the service's answer, and it came
    text = scrape(info["port"])
    assert metric(text, "risk_state", 'state="HALTED"') == 1.0
    assert metric(text, "operator_commands_total") == 1.0
    time.sleep(0.3)
    resumed = _risk("resume", "--state-dir", state, "--reason", "drill over", "--wait", "10")
    assert resumed["ack"]["state"] == "ACTIVE", resumed
    assert metric(scrape(info["port"]), "risk_state", 'state="ACTIVE"') == 1.0
    # Killed with no engine checkpoint since the start: the restart re-runs every event,
    # applying both commands at their recorded cursors, and must match what was recorded.
    assert stop(proc, signal.SIGKILL) == -signal.SIGKILL
    proc = start_live(state, "--data-snapshot", snapshot, "--config", config, "--exit-at-end",
                      out=out, speed="max", log=log)
    assert proc.wait(120) == 0
    events = log_events(log)
    assert not [e for e in events if e["event"] == "restart_replay_mismatch"]
    manifest = json.loads((out / "manifest.json").read_text())
    commands = manifest["live"]["operator_commands"]
    assert [c["command"]["action"] for c in commands] == ["halt", "resume"]
    assert commands[0]["cursor"] < commands[1]["cursor"]
    transitions = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()
                   if '"risk_transition"' in line]
    assert [t["to"] for t in transitions] == ["HALTED", "ACTIVE"]
    # Replay re-runs the live run with both commands at their recorded cursors.
    replayed = run_cli("replay", out)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "MATCH" in replayed.stdout


def test_a_halt_written_while_no_service_runs_is_adopted_at_start(tmp_path: Path) -> None:
    snapshot = sample_slice(tmp_path / "btc.parquet", 2000)
    state, out, log = tmp_path / "state", tmp_path / "run", tmp_path / "live.log"
    proc = start_live(state, "--data-snapshot", snapshot, out=out, speed="36000", log=log)
    wait_ready(state, proc)
    time.sleep(0.3)
    assert stop(proc) == 0
    offline = _risk("halt", "--state-dir", state, "--reason", "weekend")
    assert offline["state"] == "HALTED", offline
    proc = start_live(state, "--data-snapshot", snapshot, "--exit-at-end", out=out,
                      speed="max", log=log)
    assert proc.wait(120) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["risk_state"] == "HALTED"
    commands = json.loads((out / "manifest.json").read_text())["live"]["operator_commands"]
    assert [c["command"]["reason"] for c in commands] == ["weekend"]
    assert _risk("status", "--state-dir", state)["state"] == "HALTED"
