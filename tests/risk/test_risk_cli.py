"""``python -m cli risk status|halt|resume`` as an operator runs it: exit codes, output, the store
written with no service running, and the hand-over to a (fake) running service."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
HAVE_STORE = importlib.util.find_spec("weltklassebot.state.jsonl_store") is not None
needs_store = pytest.mark.skipif(
    not HAVE_STORE, reason="weltklassebot.state.jsonl_store is not part of this build yet"
)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("WELTKLASSE_")}
    full_env.update(env or {})
    result = subprocess.run(
        [sys.executable, "-m", "cli", "risk", *args],
        cwd=REPO, env=full_env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    return result


def status_json(state_dir: Path) -> dict[str, Any]:
    result = cli("status", "--state-dir", str(state_dir), "--json")
    assert result.returncode == 0, result.stderr
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


def test_help_lists_the_subcommands() -> None:
    result = cli("--help")
    assert result.returncode == 0
    for name in ("status", "halt", "resume"):
        assert name in result.stdout


def test_missing_state_dir_is_a_usage_error(tmp_path: Path) -> None:
    for args in (("status",), ("halt", "--reason", "x"), ("resume",)):
        result = cli(*args, "--state-dir", str(tmp_path / "nope"))
        assert result.returncode == 2
        assert "does not exist" in result.stderr


def test_halt_requires_a_reason(state_dir: Path) -> None:
    result = cli("halt", "--state-dir", str(state_dir))
    assert result.returncode == 2
    assert "--reason" in result.stderr
    result = cli("halt", "--reason", "  ", "--state-dir", str(state_dir))
    assert result.returncode == 2


@needs_store
def test_status_of_an_empty_directory_is_active(state_dir: Path) -> None:
    report = status_json(state_dir)
    assert report["state"] == "ACTIVE"
    assert report["service_running"] is False
    text = cli("status", "--state-dir", str(state_dir))
    assert text.returncode == 0
    assert "ACTIVE" in text.stdout


@needs_store
def test_offline_halt_status_resume(state_dir: Path) -> None:
    halted = cli("halt", "--reason", "venue outage", "--state-dir", str(state_dir))
    assert halted.returncode == 0, halted.stderr
    assert "ACTIVE -> HALTED" in halted.stdout
    report = status_json(state_dir)
    assert report["state"] == "HALTED"
    assert report["reason"] == "kill_switch"
    assert report["detail"] == "venue outage"
    assert report["source"] == "operator-cli"
    assert report["user"]
    text = cli("status", "--state-dir", str(state_dir))
    assert "HALTED" in text.stdout
    assert "venue outage" in text.stdout

    again = cli("halt", "--reason", "again", "--state-dir", str(state_dir), "--json")
    assert again.returncode == 0
    assert json.loads(again.stdout)["changed"] is False

    resumed = cli("resume", "--state-dir", str(state_dir), "--json")
    assert resumed.returncode == 0, resumed.stderr
    body = json.loads(resumed.stdout)
    assert (body["from_state"], body["state"], body["mode"]) == ("HALTED", "ACTIVE", "offline")
    assert status_json(state_dir)["state"] == "ACTIVE"

    # every write verifies as a clean store
    verify = subprocess.run([sys.executable, "-m", "cli", "state", "verify", str(state_dir)],
                            cwd=REPO, capture_output=True, text=True, check=False, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr


@needs_store
def test_state_dir_from_environment(state_dir: Path) -> None:
    env = {"WELTKLASSE_STATE_DIR": str(state_dir)}
    assert cli("halt", "--reason", "env", env=env).returncode == 0
    result = cli("status", "--json", env=env)
    assert json.loads(result.stdout)["state"] == "HALTED"


@needs_store
def test_offline_commands_use_the_run_event_clock_and_reset_peak(state_dir: Path) -> None:
    from weltklassebot.risk import RiskConfig, RiskEngine, RiskTransition
    from weltklassebot.state.jsonl_store import JsonlStore, StoreConfig

    written: list[RiskTransition] = []
    engine = RiskEngine(RiskConfig.model_validate({"drawdown_cap": "0.1"}), initial_equity=10_000,
                        money_scale=2, persist=written.append)
    store = JsonlStore.open(state_dir, StoreConfig(), lambda: {"risk": engine.snapshot()})
    store.append("cursor", {"n": 1}, 1_000)
    engine.on_equity(2_000, 12_000)
    engine.on_equity(3_000, 10_500)          # 12.5 % drawdown: HALTED
    for t in written:
        store.append("risk_transition", t.to_payload(), t.ts_ns)
    store.append("cursor", {"n": 2}, 4_000)
    store.close()

    report = status_json(state_dir)
    assert report["state"] == "HALTED"
    assert report["reason"] == "drawdown_cap"
    assert report["drawdown"] == "1/8"
    assert report["drawdown_cap_ratio"] == 0.1
    assert "12.5 %" in cli("status", "--state-dir", str(state_dir)).stdout

    kept = cli("resume", "--keep-peak", "--state-dir", str(state_dir), "--json")
    body = json.loads(kept.stdout)
    assert body["transition"]["ts_ns"] == 4_000          # latest record's event time
    assert body["transition"]["peak_equity"] == 12_000
    cli("halt", "--reason", "again", "--state-dir", str(state_dir))
    reset = json.loads(cli("resume", "--state-dir", str(state_dir), "--json").stdout)
    assert reset["transition"]["peak_equity"] == 10_500
    assert status_json(state_dir)["drawdown"] == "0"


@needs_store
def test_corrupt_store_status_exits_1(state_dir: Path) -> None:
    assert cli("halt", "--reason", "x", "--state-dir", str(state_dir)).returncode == 0
    assert cli("resume", "--state-dir", str(state_dir)).returncode == 0
    segment = next(state_dir.glob("segment-*.jsonl"))
    lines = segment.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b"kill_switch", b"kill_swatch")
    segment.write_bytes(b"".join(lines))
    result = cli("status", "--state-dir", str(state_dir))
    assert result.returncode == 1
    assert "corrupt" in result.stderr
    halted = cli("halt", "--reason", "x", "--state-dir", str(state_dir))
    assert halted.returncode == 1


FAKE_SERVICE = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from weltklassebot.risk import RiskConfig, RiskEngine
    from weltklassebot.service.operator import (
        ack, acquire_service_lock, apply_operator_command, poll_operator_commands)

    directory, mode = Path(sys.argv[1]), sys.argv[2]
    lock = acquire_service_lock(directory)
    engine = RiskEngine(RiskConfig(), initial_equity=10_000, money_scale=2)
    print("ready", flush=True)
    cursor = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (directory / "stop").exists():
        cursor += 1
        if mode == "serve":
            for command in poll_operator_commands(directory):
                result = apply_operator_command(engine, command, cursor * 1000, cursor=cursor)
                ack(directory, command.command_id, result)
                print(json.dumps(result), flush=True)
        time.sleep(0.02)
    print("state", engine.state.value, flush=True)
""")


@pytest.fixture
def fake_service(state_dir: Path, tmp_path: Path) -> Iterator[Any]:
    script = tmp_path / "fake_service.py"
    script.write_text(FAKE_SERVICE)
    procs: list[subprocess.Popen[str]] = []

    def start(mode: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(state_dir), mode], cwd=REPO,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        return proc

    yield start
    (state_dir / "stop").touch()
    for proc in procs:
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        except ValueError:  # already read to the end by the test
            pass
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def test_running_service_receives_the_command(state_dir: Path, fake_service: Any) -> None:
    proc = fake_service("serve")
    result = cli("halt", "--reason", "desk call", "--state-dir", str(state_dir), "--wait", "10")
    assert result.returncode == 0, result.stderr
    assert "handed over" in result.stdout
    assert "ACTIVE -> HALTED" in result.stdout
    resumed = cli("resume", "--keep-peak", "--state-dir", str(state_dir), "--wait", "10",
                  "--json")
    assert resumed.returncode == 0, resumed.stderr
    body = json.loads(resumed.stdout)
    assert body["mode"] == "handed_over"
    assert body["service_pid"] == proc.pid
    assert body["ack"]["state"] == "ACTIVE"
    assert body["ack"]["cursor"] >= 1
    assert body["ack"]["command"]["keep_peak"] is True
    (state_dir / "stop").touch()
    out, _ = proc.communicate(timeout=10)
    lines = out.splitlines()
    applied = [json.loads(line) for line in lines if line.startswith("{")]
    assert [a["command"]["action"] for a in applied] == ["halt", "resume"]
    assert applied[0]["command"]["reason"] == "desk call"
    assert lines[-1] == "state ACTIVE"


def test_busy_service_queues_the_command(state_dir: Path, fake_service: Any) -> None:
    proc = fake_service("hold")
    result = cli("halt", "--reason", "queued", "--state-dir", str(state_dir))
    assert result.returncode == 0, result.stderr
    assert "handed over" in result.stdout
    files = sorted((state_dir / "commands").glob("*.json"))
    assert len(files) == 1
    payload = json.loads(files[0].read_text())
    assert (payload["action"], payload["reason"]) == ("halt", "queued")
    assert not any(p.name.endswith(".tmp") for p in (state_dir / "commands").iterdir())
    if HAVE_STORE:
        report = status_json(state_dir)
        assert report["service_running"] is True
        assert report["service_pid"] == proc.pid
        assert report["pending_commands"] == [files[0].stem]
    waited = cli("resume", "--state-dir", str(state_dir), "--wait", "0.3")
    assert waited.returncode == 3
    assert "did not answer" in waited.stderr
    assert len(list((state_dir / "commands").glob("*.json"))) == 2
