"""A real Prometheus scrapes a running ``python -m cli live`` and evaluates ``ops/alerts``.

The service runs the bundled sample at 100 bars per second with a tiny drawdown cap (it halts
within seconds) and the venue resending a share of fills (duplicates, dropped and counted).
Prometheus scrapes it every second and evaluates the rules every second; the test then reads
Prometheus' HTTP API: the DESIGN 6 series with their labels, every name the live process exports
known to ``METRIC_NAMES``, every rule loaded and evaluating without error, DuplicateFillDetected
firing and DrawdownNearLimit pending (its ``for: 10m`` is longer than the test).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from support.cli import REPO, cli_env
from weltklassebot.engine.probe import STAGES
from weltklassebot.service.metrics import SERVICE_METRIC_NAMES, sample_names

from .tools import RULE_FILE, rules, tool

pytestmark = pytest.mark.integration

SAMPLE = REPO / "src" / "weltklassebot" / "sample" / "coinbase_btcusd_1h_2017-07_2019-10.parquet"
CONFIG = """\
[strategy]
name = "sma_cross"  # one unit per trade: the cap is approached slowly, the resends pile up

[risk]
drawdown_cap = "0.0001"

[faults]
resend_fills = 0.5
"""
PROMETHEUS_OWN = {"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds",
                  "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
                  "scrape_series_added"}
"""Series Prometheus adds itself under the job's labels."""
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def eventually(what: str, probe: Callable[[], T | None], timeout: float,
               logs: list[Path]) -> T:
    """``probe()``'s first truthy answer, polled until ``timeout``; else fail showing the logs."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            answer = probe()
        except OSError as exc:  # not listening or not written yet
            last = exc
        else:
            if answer:
                return answer
            last = answer
        time.sleep(0.25)
    tails = "\n".join(f"--- {p.name}\n" + "\n".join(p.read_text(errors="replace")
                                                     .splitlines()[-15:]) for p in logs)
    pytest.fail(f"{what}: not within {timeout:g} s (last: {last!r})\n{tails}")


def stop(proc: subprocess.Popen[bytes]) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
            return None
    return proc.returncode


class Prometheus:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.base}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as resp:
            doc = json.loads(resp.read())
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result


@pytest.fixture
def live_and_prometheus(tmp_path: Path) -> Iterator[tuple[Prometheus, dict[str, Any],
                                                          list[Path]]]:
    prometheus_exe = tool("prometheus")
    state, logs = tmp_path / "state", [tmp_path / "live.log", tmp_path / "prometheus.log"]
    (tmp_path / "live.toml").write_text(CONFIG)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with logs[0].open("wb") as sink:
            live = subprocess.Popen(
                [sys.executable, "-m", "cli", "live", "--data-snapshot", str(SAMPLE),
                 "--state-dir", str(state), "--out", str(tmp_path / "run"),
                 "--speed", "360000", "--config", str(tmp_path / "live.toml")],
                cwd=REPO, env=cli_env({"WELTKLASSE_METRICS_PORT": "0"}), stdout=sink,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        procs.append(live)

        def ready() -> dict[str, Any] | None:
            assert live.poll() is None, f"live exited with {live.returncode}"
            info: dict[str, Any] = json.loads((state / "service.json").read_text())
            return info if info.get("pid") == live.pid else None

        info = eventually("service.json of the live service", ready, 30, logs)
        assert {"pid", "bind", "port", "run_id"} <= set(info)

        port = free_port()
        (tmp_path / "prometheus.yml").write_text(json.dumps({  # JSON is YAML
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                       "evaluation_interval": "1s"},
            "rule_files": [str(RULE_FILE)],
            "scrape_configs": [{"job_name": "weltklassebot", "static_configs": [
                {"targets": [f"{info['bind']}:{info['port']}"]}]}],
        }))
        with logs[1].open("wb") as sink:
            procs.append(subprocess.Popen(
                [prometheus_exe, f"--config.file={tmp_path / 'prometheus.yml'}",
                 f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{port}"],
                cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        yield Prometheus(port), info, logs
        assert live.poll() is None, f"live exited early with {live.returncode}"
        assert stop(live) == 0  # SIGTERM: persist, flush, exit 0
    finally:
        for proc in reversed(procs):
            stop(proc)


def test_prometheus_scrapes_live_and_alerts(
        live_and_prometheus: tuple[Prometheus, dict[str, Any], list[Path]]) -> None:
    prom, info, logs = live_and_prometheus

    def series(expr: str, count: int) -> list[dict[str, Any]] | None:
        found = prom.query(expr)
        return found if len(found) >= count else None

    up = eventually("a successful scrape", lambda: series('up{job="weltklassebot"} == 1', 1),
                    30, logs)
    assert up[0]["metric"]["instance"] == f"{info['bind']}:{info['port']}"

    stages = eventually("stage latency of every stage",
                        lambda: series("stage_latency_seconds_count > 0", len(STAGES)), 20, logs)
    assert {s["metric"]["stage"] for s in stages} == set(STAGES)
    buckets = prom.query('stage_latency_seconds_bucket{stage="strategy"}')
    assert "0.25" in {b["metric"]["le"] for b in buckets}

    states = prom.query("risk_state")
    assert {s["metric"]["state"] for s in states} == {"ACTIVE", "COOL", "HALTED"}
    assert sum(float(s["value"][1]) for s in states) == 1  # one-hot

    duplicates = eventually("duplicate fills counted",
                            lambda: series("duplicate_fills_total > 0", 1), 30, logs)
    assert duplicates[0]["metric"]["job"] == "weltklassebot"

    def alert_states() -> dict[str, str] | None:
        got = {a["labels"]["alertname"]: a["state"] for a in prom.api("alerts")["alerts"]}
        wanted = got.get("DrawdownNearLimit") == "pending" \
            and got.get("DuplicateFillDetected") == "firing"
        return got if wanted else None

    alerts = eventually("DrawdownNearLimit pending and DuplicateFillDetected firing",
                        alert_states, 40, logs)
    # the halt the cap caused is seen too (pending: RiskHalted waits a minute)
    assert alerts.get("RiskHalted") == "pending"
    assert "HighStageLatency" not in alerts  # 100 bars/s is far from 250 ms per stage
    assert "SnapshotMismatchAcrossReplicas" not in alerts  # one replica
    # Before its first scrape Prometheus finds the job absent, so WeltklassebotDown may be
    # pending for a second or two; it never fires while scrapes succeed.
    assert alerts.get("WeltklassebotDown") != "firing"

    # Prometheus loaded every rule of the file and evaluates each without error.
    loaded = {r["name"]: r for g in prom.api("rules")["groups"] for r in g["rules"]}
    assert set(loaded) == {r.alert for r in rules()}
    assert {name: r["lastError"] for name, r in loaded.items() if r["health"] != "ok"} == {}

    # Every name the live process exports is known, and every service name is exported.
    names = set(prom.api("label/__name__/values", **{"match[]": '{job="weltklassebot"}'}))
    assert names - PROMETHEUS_OWN <= sample_names(), names - PROMETHEUS_OWN - sample_names()
    missing = {n for n in SERVICE_METRIC_NAMES
               if n not in names and f"{n}_bucket" not in names}
    assert missing == set()
    build = prom.query("weltklassebot_build_info")
    assert build[0]["metric"]["run_id"] == info["run_id"]
    assert len(build[0]["metric"]["snapshot_sha256"]) == 64
