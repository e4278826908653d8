"""``python -m cli doctor``: every check passes on a sound install and names the fix otherwise.

Each test renders the real unit template into ``tmp_path`` (this interpreter as ``ExecStart``,
the current user as ``User=``, directories under ``tmp_path``) and runs the checks against it
with ``--unit-dir``; the doctor reads the unit's environment, not the test's.
"""

from __future__ import annotations

import json
import os
import pwd
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.cli import REPO, run_cli
from weltklassebot.cli.doctor import FAIL, OK, Check, run_checks
from weltklassebot.data.catalog import Catalog
from weltklassebot.service.install import UnitValues, render_unit

TEMPLATE = (REPO / "ops" / "systemd" / "weltklassebot.service").read_text()


@dataclass
class Setup:
    unit_dir: Path
    state_dir: Path
    snapshot_dir: Path
    config_dir: Path
    port: int

    def write_unit(self, user: str | None = None) -> None:
        values = UnitValues(
            python=Path(sys.executable), prefix=self.unit_dir.parent,
            user=user or pwd.getpwuid(os.getuid()).pw_name, group="root", port=self.port,
            state_dir=self.state_dir, snapshot_dir=self.snapshot_dir,
            config_dir=self.config_dir)
        self.unit_dir.mkdir(exist_ok=True)
        (self.unit_dir / "weltklassebot.service").write_text(render_unit(TEMPLATE, values))

    def checks(self, config: Path | None = None) -> dict[str, Check]:
        return {c.name: c for c in run_checks(config, self.unit_dir)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    s = Setup(tmp_path / "units", tmp_path / "state", tmp_path / "snapshots", tmp_path / "etc",
              _free_port())
    for path in (s.state_dir, s.snapshot_dir, s.config_dir):
        path.mkdir()
    s.write_unit()
    return s


def _promote(setup: Setup, btc_hourly: Path) -> None:
    Catalog(setup.snapshot_dir).promote(btc_hourly, name="btc", timeout_s=5)


def test_doctor_on_a_sound_install_passes(setup: Setup, btc_hourly: Path) -> None:
    _promote(setup, btc_hourly)
    checks = setup.checks()
    assert [c for c in checks.values() if c.status == FAIL] == []
    assert {"python", "packages", "config", "strategy", "unit", "user", "state dir", "disk",
            "snapshot dir", "latest.parquet", "metrics port"} <= set(checks)
    assert checks["strategy"].detail.startswith("sma_cross (sma_cross) loads in ")
    assert "numpy" in checks["packages"].detail
    assert "matches its sidecar" in checks["latest.parquet"].detail
    assert checks["metrics port"].detail == f"127.0.0.1:{setup.port} is free"
    done = run_cli("doctor", "--unit-dir", setup.unit_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert all(line.split()[0] in ("OK", "WARN") for line in lines[:-1]), lines
    assert lines[-1].startswith("doctor: ")


def test_doctor_without_latest_fails_naming_promote(setup: Setup) -> None:
    check = setup.checks()["latest.parquet"]
    assert check.status == FAIL
    assert f"snapshot promote FILE --dir {setup.snapshot_dir}" in check.fix
    done = run_cli("doctor", "--unit-dir", setup.unit_dir, "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["ok"] is False
    assert any(c["name"] == "latest.parquet" and c["status"] == FAIL for c in report["checks"])


def test_doctor_with_a_sidecar_that_does_not_match_fails(setup: Setup, btc_hourly: Path) -> None:
    _promote(setup, btc_hourly)
    sidecar = next(setup.snapshot_dir.glob("*.parquet.sha256"))
    name = sidecar.read_text().split()[1]
    sidecar.chmod(0o644)
    sidecar.write_text(f"{'0' * 64}  {name}\n")
    check = setup.checks()["latest.parquet"]
    assert check.status == FAIL
    assert "snapshot verify" in check.fix


def test_doctor_with_the_port_taken_fails(setup: Setup, btc_hourly: Path) -> None:
    _promote(setup, btc_hourly)
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", setup.port))
        busy.listen()
        check = setup.checks()["metrics port"]
    assert check.status == FAIL
    assert "in use by another process" in check.detail


def test_doctor_with_a_privileged_port_fails(setup: Setup) -> None:
    setup.port = 80
    setup.write_unit()
    check = setup.checks()["metrics port"]
    assert check.status == FAIL
    assert "CAP_NET_BIND_SERVICE" in check.detail


def test_doctor_without_a_unit_fails_and_reads_the_shell_environment(
        setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "no-units"
    empty.mkdir()
    monkeypatch.setenv("WELTKLASSE_SNAPSHOT_DIR", str(tmp_path / "elsewhere"))
    checks = {c.name: c for c in run_checks(None, empty)}
    assert checks["unit"].status == FAIL
    assert "service install" in checks["unit"].fix
    assert str(tmp_path / "elsewhere") in checks["snapshot dir"].detail


def test_doctor_with_unit_paths_missing_fails(setup: Setup) -> None:
    setup.state_dir.rmdir()
    check = setup.checks()["unit"]
    assert check.status == FAIL
    assert f"ReadWritePaths {setup.state_dir}" in check.detail


def test_doctor_with_an_unknown_user_fails(setup: Setup) -> None:
    setup.write_unit(user="wkb-no-such-user")
    assert setup.checks()["user"].status == FAIL


def test_doctor_with_a_state_dir_the_service_user_cannot_write_fails(setup: Setup) -> None:
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' on this machine")
    if os.getuid() == pwd.getpwnam("nobody").pw_uid:
        pytest.skip("running as nobody")
    setup.state_dir.chmod(0o750)
    setup.write_unit(user="nobody")
    check = setup.checks()["state dir"]
    assert check.status == FAIL
    assert "NOT writable by the service user nobody" in check.detail


def test_doctor_with_an_invalid_config_fails(setup: Setup, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[service]\nspeeed = 60\n")
    check = setup.checks(config)["config"]
    assert check.status == FAIL
    assert "speeed" in check.detail
    good = tmp_path / "good.toml"
    good.write_text('[service]\nspeed = "60"\n')
    assert setup.checks(good)["config"].status == OK


def _strategy_check(tmp_path: Path, config_text: str, unit_dir: Path) -> Check:
    config = tmp_path / "strategy.toml"
    config.write_text(config_text)
    return {c.name: c for c in run_checks(config, unit_dir)}["strategy"]


def test_doctor_loads_the_configured_strategy_as_the_service_will(tmp_path: Path) -> None:
    no_unit = tmp_path / "no-units"  # no sandbox to hide tmp_path from the check
    no_unit.mkdir()
    needs = tmp_path / "needs_pkg.py"
    needs.write_text("import weltklassebot_no_such_package\n")
    check = _strategy_check(tmp_path, f'[strategy]\nname = "{needs}"\n', no_unit)
    assert check.status == FAIL
    assert "No module named 'weltklassebot_no_such_package'" in check.detail
    assert "service's venv" in check.fix
    bad = _strategy_check(tmp_path, '[strategy]\nname = "sma_cross"\n'
                          '[strategy.params]\nfast = 30\nslow = 10\n', no_unit)
    assert bad.status == FAIL
    assert "invalid parameters" in bad.detail
    missing = _strategy_check(tmp_path, '[strategy]\nname = "gone.py"\n', no_unit)
    assert missing.status == FAIL
    assert "does not exist" in missing.detail
    example = REPO / "examples" / "breakout.py"
    good = _strategy_check(tmp_path, f'[strategy]\nname = "{example}"\n', no_unit)
    assert good.status == OK, good.detail


def test_doctor_refuses_a_strategy_file_the_sandbox_hides(setup: Setup, tmp_path: Path) -> None:
    home = _strategy_check(tmp_path, '[strategy]\nname = "/home/quant/mine.py"\n',
                           setup.unit_dir)
    assert home.status == FAIL
    assert "lies under /home" in home.detail
    assert "ProtectHome=yes" in home.detail
    if not tmp_path.is_relative_to("/tmp"):
        pytest.skip(f"the temporary directory {tmp_path} is not under /tmp")
    mine = tmp_path / "mine.py"
    mine.write_text((REPO / "examples" / "breakout.py").read_text())
    check = _strategy_check(tmp_path, f'[strategy]\nname = "{mine}"\n', setup.unit_dir)
    assert check.status == FAIL
    assert "lies under /tmp" in check.detail
