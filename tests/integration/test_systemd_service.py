"""The live service under a real systemd, installed and run as the runbook says.

A systemd is booted as PID 1 of a private namespace (``systemd_ns``: private ``/run``, ``/tmp``,
``/var/tmp``, the machine's own services masked). Inside it, as an operator would:
``python -m cli service install`` (from this checkout's .venv, into a prefix under ``/opt`` and
directories under ``/var/lib`` with a unique suffix: the namespace's ``/tmp`` is its own),
``snapshot promote`` of the bundled sample, ``doctor``, then the runbook's ``systemctl start``,
``status``, ``curl .../metrics``, ``restart``, a ``kill -9`` of the main process (systemd restarts
it and the run resumes), ``stop`` (exit 0, the store clean), the journal's JSON lines, and
``systemd-analyze verify`` / ``security`` on the installed unit; finally ``service uninstall
--remove-user``. The unit goes to ``/run/systemd/system``, which exists only in the namespace, so
nothing is left in the machine's ``/etc`` even if the test dies; the user, the prefix and the data
directories are removed in ``finally`` blocks.

The service runs at ``[service] speed = "36000"`` (ten 1-hour bars a second): fast enough to
trade during the test, far from the sample's end (~19,600 bars, half an hour).
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.cli import REPO, cli_env

from .systemd_ns import SystemdNamespace, booted_systemd, require_systemd

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

SAMPLE = REPO / "src" / "weltklassebot" / "sample" / "coinbase_btcusd_1h_2017-07_2019-10.parquet"
UNIT = "weltklassebot.service"
UNIT_DIR = Path("/run/systemd/system")
CONFIG = """\
[service]
speed = "36000"
checkpoint_seconds = 1.0
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def metric(text: str, name: str, labels: str = "") -> float | None:
    """The value of one sample of a Prometheus exposition, or None."""
    pattern = re.escape(name) + (re.escape("{" + labels + "}") if labels else r"(?:\{\})?")
    found = re.search(rf"^{pattern} (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


@dataclass
class Deployment:
    ns: SystemdNamespace
    suffix: str
    user: str
    root: Path
    data: Path
    port: int
    install_seconds: float
    install: subprocess.CompletedProcess[str]

    @property
    def prefix(self) -> Path:
        return self.root / "prefix"

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    @property
    def state_dir(self) -> Path:
        return self.data / "state"

    @property
    def snapshot_dir(self) -> Path:
        return self.data / "snapshots"

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``python -m cli ARGS`` inside the namespace, from this checkout's .venv, as root."""
        return self.ns.run(sys.executable, "-m", "cli", *args, timeout=timeout, env=cli_env())

    def wait_for_metrics(self, timeout: float = 30) -> str:
        """``curl -sf http://localhost:PORT/metrics`` (the network is shared) until it answers."""
        deadline = time.monotonic() + timeout
        argv = ["curl", "-sf", f"http://localhost:{self.port}/metrics"]
        self.ns.commands.append(argv)
        while True:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
            if done.returncode == 0:
                return done.stdout
            if time.monotonic() > deadline:
                raise AssertionError(f"no /metrics on port {self.port} within {timeout} s; "
                                     f"journal:\n{self.ns.journal(UNIT)[-3000:]}")
            time.sleep(0.2)

    def show(self, *props: str) -> dict[str, str]:
        args = [f"-p{p}" for p in props]
        out = self.ns.systemctl("show", UNIT, *args).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def _remove_everything(ns: SystemdNamespace | None, user: str, root: Path, data: Path) -> None:
    """Whatever install created, whether or not uninstall ran or succeeded."""
    if ns is not None:
        ns.systemctl("stop", UNIT, timeout=30)
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(data, ignore_errors=True)
    subprocess.run(["userdel", user], capture_output=True, check=False)
    subprocess.run(["groupdel", user], capture_output=True, check=False)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    require_systemd()
    suffix = secrets.token_hex(3)
    user = f"wkbt{suffix}"
    root = Path(f"/opt/weltklassebot-test-{suffix}")
    data = Path(f"/var/lib/weltklassebot-test-{suffix}")
    console = tmp_path_factory.mktemp("systemd") / "console.log"
    ns: SystemdNamespace | None = None
    try:
        with booted_systemd(console) as ns:
            root.mkdir(parents=True)
            config = root / "config.toml"
            config.write_text(CONFIG)
            port = _free_port()
            started = time.monotonic()
            done = ns.run(
                sys.executable, "-m", "cli", "service", "install", "--user", user,
                "--prefix", str(root / "prefix"), "--config-dir", str(root / "etc"),
                "--config", str(config), "--state-dir", str(data / "state"),
                "--snapshot-dir", str(data / "snapshots"), "--port", str(port),
                "--unit-dir", str(UNIT_DIR), "--json", timeout=900, env=cli_env())
            seconds = time.monotonic() - started
            assert done.returncode == 0, f"install failed:\n{done.stderr[-4000:]}"
            yield Deployment(ns, suffix, user, root, data, port, seconds, done)
    finally:
        _remove_everything(None, user, root, data)


def test_install_renders_the_unit_and_builds_its_venv(deployment: Deployment) -> None:
    result = json.loads(deployment.install.stdout)
    unit = UNIT_DIR / UNIT
    text = deployment.ns.run("cat", str(unit), check=True).stdout
    venv_python = deployment.prefix / "venv" / "bin" / "python"
    assert f"ExecStart={venv_python} -m cli live" in text
    assert f"User={deployment.user}" in text
    assert f"Environment=WELTKLASSE_METRICS_PORT={deployment.port}" in text
    assert f"Environment=WELTKLASSE_STATE_DIR={deployment.state_dir}" in text
    assert f"StateDirectory=weltklassebot-test-{deployment.suffix}" in text
    assert "@" not in text.replace("@system-service", "").replace("@privileged", "").replace(
        "@resources", ""), "a placeholder was left in the rendered unit"
    assert result["reloaded"] is True
    # The venv is the prefix's own, non-editable, on an interpreter the sandbox can see.
    where = deployment.ns.run(str(venv_python), "-c", "import weltklassebot; "
                              "print(weltklassebot.__file__)", check=True).stdout
    assert where.startswith(str(deployment.prefix)), where
    assert not result["python"].startswith(("/root", "/home"))
    # Only the runtime part of the lock: no test, benchmark or ray extras, and nothing missing.
    extras = deployment.ns.run(str(venv_python), "-c", "import importlib.util as u; print(["
                               "m for m in ('ray', 'pytest', 'mypy', 'pandas', 'scipy') "
                               "if u.find_spec(m)])", check=True).stdout.strip()
    assert extras == "[]", extras
    deployment.ns.run(str(venv_python), "-m", "pip", "check", check=True)
    owner = deployment.ns.run("stat", "-c", "%U %a", str(deployment.state_dir),
                              str(deployment.snapshot_dir), check=True).stdout.split("\n")
    assert owner[:2] == [f"{deployment.user} 750", f"{deployment.user} 2770"]
    print(f"install: {deployment.install_seconds:.1f} s ({result['seconds']})")


def test_install_again_upgrades_in_place(deployment: Deployment) -> None:
    again = deployment.cli(
        "service", "install", "--user", deployment.user, "--prefix", str(deployment.prefix),
        "--config-dir", str(deployment.config_dir), "--state-dir", str(deployment.state_dir),
        "--snapshot-dir", str(deployment.snapshot_dir), "--port", str(deployment.port),
        "--unit-dir", str(UNIT_DIR), "--json", timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    result = json.loads(again.stdout)
    assert result["upgraded"] is True
    assert result["created_user"] is True  # still known as install's own user, for uninstall
    assert result["seconds"]["venv"] < 1.0  # the venv was kept, not re-created
    assert (deployment.config_dir / "config.toml").read_text() == CONFIG  # kept


def test_unit_passes_systemd_analyze_verify_and_security(deployment: Deployment) -> None:
    verify = deployment.ns.run("systemd-analyze", "verify", str(UNIT_DIR / UNIT))
    assert verify.returncode == 0, verify.stderr
    assert verify.stderr == ""
    security = deployment.ns.run("systemd-analyze", "security", "--no-pager", UNIT)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", security.stdout)
    assert found, security.stdout + security.stderr
    print(f"systemd-analyze security: {found.group(1)}")
    assert float(found.group(1)) <= 2.0, security.stdout


def test_snapshot_promote_then_doctor_passes(deployment: Deployment) -> None:
    promote = deployment.cli("snapshot", "promote", str(SAMPLE), "--dir",
                             str(deployment.snapshot_dir))
    assert promote.returncode == 0, promote.stderr
    doctor = deployment.cli("doctor", "--unit-dir", str(UNIT_DIR), "--json")
    report = json.loads(doctor.stdout)
    failed = [c for c in report["checks"] if c["status"] == "FAIL"]
    assert not failed
    assert doctor.returncode == 0
    names = {c["name"] for c in report["checks"]}
    assert {"python", "packages", "unit", "user", "state dir", "snapshot dir", "latest.parquet",
            "metrics port"} <= names
    python = next(c for c in report["checks"] if c["name"] == "python")
    assert f"as {deployment.user}" in python["detail"]  # imported as the service user
    strategy = next(c for c in report["checks"] if c["name"] == "strategy")
    assert strategy["status"] == "OK"
    assert f"{deployment.prefix}/venv/bin/python as {deployment.user}" in strategy["detail"]


def test_runbook_start_status_metrics_restart_kill_stop(deployment: Deployment) -> None:
    ns = deployment.ns
    start = ns.systemctl("start", UNIT, timeout=180)
    assert start.returncode == 0, f"{start.stderr}\n{ns.journal(UNIT)[-4000:]}"
    status = ns.systemctl("status", UNIT)
    assert "active (running)" in status.stdout, status.stdout
    assert re.search(r'Status: "run \S+ running', status.stdout), status.stdout
    text = deployment.wait_for_metrics()
    assert metric(text, "duplicate_fills_total") == 0
    assert metric(text, "runs_started_total", 'reason="new"') == 1
    first = deployment.show("MainPID")["MainPID"]

    service_status = deployment.cli("service", "status", "--unit-dir", str(UNIT_DIR), "--json")
    assert service_status.returncode == 0, service_status.stdout + service_status.stderr
    seen = json.loads(service_status.stdout)
    assert seen["active"] == "active"
    assert seen["readyz"]["status"] == 200
    assert seen["service_json"]["pid"] == int(first)

    # Rolling restart: SIGTERM, then a new process resumes the same run.
    restart = ns.systemctl("restart", UNIT, timeout=120)
    assert restart.returncode == 0, ns.journal(UNIT)[-4000:]
    assert ns.systemctl("is-active", UNIT).stdout.strip() == "active"
    second = deployment.show("MainPID")["MainPID"]
    assert second != first
    text = deployment.wait_for_metrics()
    assert metric(text, "runs_started_total", 'reason="resumed"') == 1, text
    time.sleep(3)  # let it trade and checkpoint before the crash

    # kill -9 of the main process: systemd restarts it (Restart=on-failure); the run resumes.
    restarts = int(deployment.show("NRestarts")["NRestarts"])
    ns.run("kill", "-9", second, check=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        props = deployment.show("MainPID", "NRestarts", "ActiveState")
        if int(props["NRestarts"]) > restarts and props["ActiveState"] == "active" \
                and props["MainPID"] not in ("0", second):
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"not restarted after kill -9: {props}\n{ns.journal(UNIT)[-3000:]}")
    text = deployment.wait_for_metrics()
    assert metric(text, "runs_started_total", 'reason="resumed"') == 1, text
    assert metric(text, "duplicate_fills_total") == 0, text
    service = json.loads(ns.run("cat", str(deployment.state_dir / "service.json"),
                                check=True).stdout)
    assert service["pid"] == int(props["MainPID"])

    # Graceful stop: exit 0, the store flushed and clean.
    stop = ns.systemctl("stop", UNIT, timeout=60)
    assert stop.returncode == 0
    props = deployment.show("ActiveState", "Result", "ExecMainStatus", "ExecMainCode")
    assert props["ActiveState"] == "inactive", props
    assert props["Result"] == "success", props
    assert props["ExecMainStatus"] == "0", props
    verify = deployment.cli("state", "verify", str(deployment.state_dir))
    assert verify.returncode == 0, verify.stdout + verify.stderr

    journal = ns.journal(UNIT)
    records = []
    for line in journal.splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    events = {r.get("event") for r in records}
    assert {"service_ready", "service_stopped"} <= events, events


def test_uninstall_removes_the_install_and_keeps_the_data(deployment: Deployment) -> None:
    done = deployment.cli("service", "uninstall", "--prefix", str(deployment.prefix),
                          "--remove-user", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert str(UNIT_DIR / UNIT) in result["removed"]
    assert not deployment.prefix.exists()
    assert deployment.ns.run("test", "-e", str(UNIT_DIR / UNIT)).returncode == 1
    assert subprocess.run(["getent", "passwd", deployment.user], capture_output=True,
                          check=False).returncode == 2
    assert deployment.state_dir.is_dir()
    assert deployment.snapshot_dir.is_dir()
    assert deployment.ns.systemctl("cat", UNIT).returncode != 0

    # Every command of the procedure in docs/service.md is one this module ran.
    ran = {command_key(argv) for argv in deployment.ns.commands}
    shown = {command_key(line.split()) for line in procedure_in_docs()}
    assert shown <= ran, f"docs/service.md shows commands this test never ran: {shown - ran}"


def procedure_in_docs() -> list[str]:
    """The ``$ `` lines of the console block in docs/service.md, without comments."""
    text = (REPO / "docs" / "service.md").read_text()
    block = text.split("```console\n", 1)[1].split("```", 1)[0]
    lines = [line[2:].split("  #", 1)[0].strip() for line in block.splitlines()
             if line.startswith("$ ")]
    assert len(lines) >= 10, lines
    return [line.split("|", 1)[0] for line in lines]


def command_key(words: list[str]) -> tuple[str, ...]:
    """What a command does, without sudo, paths and options: ``('cli', 'service', 'install')``,
    ``('systemctl', 'start')``, ``('curl',)``."""
    words = [w for w in words if w != "sudo"]
    program = Path(words[0]).name
    args = [w for w in words[1:] if not w.startswith("-")]
    if program.startswith("python") and words[1:3] == ["-m", "cli"]:
        args = [w for w in words[3:] if not w.startswith("-")]
        return ("cli", *args[:2]) if args[0] in ("service", "snapshot", "state") else \
            ("cli", args[0])
    if program == "systemctl":
        return (program, args[0])
    return (program,)
