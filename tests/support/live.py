"""Drive ``python -m cli live`` as an operator would: a subprocess on a state directory."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from support.cli import REPO, cli_env

SAMPLE = REPO / "src" / "weltklassebot" / "sample" / "coinbase_btcusd_1h_2017-07_2019-10.parquet"


def sample_slice(path: Path, rows: int, offset: int = 0) -> Path:
    """The first ``rows`` bars (after ``offset``) of the bundled sample, metadata kept."""
    table = pq.read_table(SAMPLE)
    pq.write_table(table.slice(offset, rows), path)
    return path


def start_live(state_dir: Path, *args: str | Path, out: Path | None = None,
               speed: str = "max", env: dict[str, str] | None = None,
               log: Path | None = None) -> subprocess.Popen[bytes]:
    """Start the service (metrics on a free port); its stdout (JSON logs) goes to ``log``."""
    argv = [sys.executable, "-m", "cli", "live", "--state-dir", str(state_dir),
            "--speed", speed, "--metrics-port", "0", *(str(a) for a in args)]
    if out is not None:
        argv += ["--out", str(out)]
    with (log or state_dir.parent / "live.log").open("ab") as sink:  # the child keeps a copy
        return subprocess.Popen(argv, cwd=REPO, env=cli_env(env), stdout=sink,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def wait_ready(state_dir: Path, proc: subprocess.Popen[bytes],
               timeout: float = 60) -> dict[str, Any]:
    """The service's ``service.json`` once it is ready (and written by this process)."""
    deadline = time.monotonic() + timeout
    path = state_dir / "service.json"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the service exited with {proc.returncode} before ready")
        try:
            info = json.loads(path.read_text())
            if info.get("pid") == proc.pid:
                return dict(info)
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError("the service did not become ready in time")


def scrape(port: int, path: str = "/metrics") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return str(response.read().decode())


def metric(text: str, name: str, labels: str = "") -> float | None:
    """The value of sample ``name{labels}`` in a Prometheus text exposition."""
    key = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[-1])
    return None


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10) -> int:
    """Send ``sig`` and return the exit status; a process still running after ``timeout`` is
    killed and reaped (so that no later test inherits it) and fails the test."""
    proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"the service did not exit within {timeout} s of signal "
                             f"{signal.Signals(sig).name}; killed") from None


def log_events(log: Path) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            events.append(item)
    return events


def summary(run_dir: Path) -> dict[str, Any]:
    return dict(json.loads((run_dir / "summary.json").read_text()))
