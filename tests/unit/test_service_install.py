"""``service install`` / ``uninstall`` against a fake machine, and the unit template rendered and
checked by systemd's own tools (``systemd-analyze verify`` and ``security``).

The fake :class:`Host` records users, ownership and commands instead of acting on the machine, so
these tests need no root and leave nothing behind; the directories are real, under ``tmp_path``
(``/tmp`` is allowed here by emptying ``PRIVATE_TREES``: the real sandbox hides it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from support.cli import REPO
from weltklassebot.errors import UsageError
from weltklassebot.service import install as inst
from weltklassebot.service.install import (
    Host,
    InstallOptions,
    UnitValues,
    check_service_path,
    parse_unit,
    render_unit,
    state_directory,
)

TEMPLATE = (REPO / "ops" / "systemd" / "weltklassebot.service").read_text()


class FakeHost(Host):
    """A machine that records what install asks of it; root, without systemd by default."""

    def __init__(self, *, root: bool = True, systemd: bool = False) -> None:
        self.root = root
        self.systemd = systemd
        self.users: dict[str, tuple[int, int]] = {}
        self.groups: dict[str, int] = {}
        self.commands: list[list[str]] = []
        self.chowned: dict[Path, tuple[int, int]] = {}

    def euid(self) -> int:
        return 0 if self.root else 1000

    def run(self, argv: Sequence[str | Path], *, cwd: Path | None = None,
            output_to_stderr: bool = True) -> str:
        args = [str(a) for a in argv]
        self.commands.append(args)
        if args[1:3] == ["-m", "venv"]:
            python = Path(args[-1]) / "bin" / "python"
            python.parent.mkdir(parents=True, exist_ok=True)
            python.write_text("")
        if "-c" in args:
            return "0.1.0\n"
        return ""

    def python_info(self, path: Path) -> dict[str, Any] | None:
        return {"version": [3, 11, 2], "base_prefix": "/usr", "executable": str(path),
                "venv": True}

    def user(self, name: str) -> tuple[int, int] | None:
        return self.users.get(name)

    def group(self, name: str) -> int | None:
        return self.groups.get(name)

    def add_group(self, name: str) -> None:
        self.groups[name] = 900 + len(self.groups)

    def add_user(self, name: str, group: str) -> None:
        self.users[name] = (800 + len(self.users), self.groups[group])

    def del_user(self, name: str) -> None:
        self.users.pop(name)
        self.commands.append(["userdel", name])

    def del_group(self, name: str) -> None:
        self.groups.pop(name)
        self.commands.append(["groupdel", name])

    def chown(self, path: Path, uid: int, gid: int) -> None:
        self.chowned[path] = (uid, gid)

    def systemd_running(self) -> bool:
        return self.systemd

    def systemctl(self, *args: str) -> subprocess.CompletedProcess[str] | None:
        if not self.systemd:
            return None
        self.commands.append(["systemctl", *args])
        return subprocess.CompletedProcess(["systemctl", *args], 0, "inactive\n", "")


def _options(tmp: Path, **changes: Any) -> InstallOptions:
    base: dict[str, Any] = dict(
        user="wkbtest", prefix=tmp / "opt" / "wkb", state_dir=tmp / "lib" / "state",
        snapshot_dir=tmp / "lib" / "snapshots", unit_dir=tmp / "units",
        config_dir=tmp / "etc" / "wkb", port=19000, python=Path("/usr/bin/python3.11"))
    base.update(changes)
    return InstallOptions(**base)


@pytest.fixture
def sandbox_allows_tmp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inst, "PRIVATE_TREES", ())


def _quiet(_text: str) -> None:
    pass


# ---- the unit --------------------------------------------------------------------------------


def _values(**changes: Any) -> UnitValues:
    base: dict[str, Any] = dict(
        python=Path(sys.executable), prefix=Path("/opt/weltklassebot"), user="weltklassebot",
        group="weltklassebot", port=9000, state_dir=Path("/var/lib/weltklassebot/state"),
        snapshot_dir=Path("/var/lib/weltklassebot/snapshots"),
        config_dir=Path("/etc/weltklassebot"))
    base.update(changes)
    return UnitValues(**base)


def test_render_unit_with_defaults_fills_every_placeholder() -> None:
    text = render_unit(TEMPLATE, _values())
    assert re.findall(r"@[A-Z_]+@", text) == []
    assert f"ExecStart={sys.executable} -m cli live" in text
    assert "Type=notify" in text
    assert "NotifyAccess=main" in text
    assert "Environment=PYTHONHASHSEED=0" in text
    assert "Environment=WELTKLASSE_METRICS_PORT=9000" in text
    assert "Environment=WELTKLASSE_STATE_DIR=/var/lib/weltklassebot/state" in text
    assert "Environment=WELTKLASSE_SNAPSHOT_DIR=/var/lib/weltklassebot/snapshots" in text
    assert "EnvironmentFile=-/etc/weltklassebot/env" in text
    assert "StateDirectory=weltklassebot\n" in text
    assert "ReadWritePaths" not in text  # the StateDirectory is writable already
    assert "ReadOnlyPaths=-/var/lib/weltklassebot/snapshots" in text
    assert "WELTKLASSE_CONFIG" not in parse_unit_text(text)


def parse_unit_text(text: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("Environment="):
            key, value = line.removeprefix("Environment=").split("=", 1)
            env[key] = value
    return env


def test_render_unit_outside_var_lib_uses_read_write_paths() -> None:
    text = render_unit(TEMPLATE, _values(state_dir=Path("/srv/wkb/state"),
                                         config_file=Path("/etc/weltklassebot/config.toml"),
                                         extra_writable=(Path("/srv/wkb/runs"),),
                                         ip_allow=("localhost", "10.0.0.0/8")))
    assert "StateDirectory" not in text
    assert "ReadWritePaths=/srv/wkb/state /srv/wkb/runs" in text
    assert "Environment=WELTKLASSE_CONFIG=/etc/weltklassebot/config.toml" in text
    assert "IPAddressAllow=localhost 10.0.0.0/8" in text


def test_render_unit_with_unknown_placeholder_is_refused() -> None:
    with pytest.raises(UsageError, match="@SURPRISE@"):
        render_unit(TEMPLATE + "\nX=@SURPRISE@\n", _values())


def test_state_directory_is_the_first_component_under_var_lib() -> None:
    assert state_directory(Path("/var/lib/weltklassebot/state")) == "weltklassebot"
    assert state_directory(Path("/var/lib/wkb")) == "wkb"
    assert state_directory(Path("/var/lib")) is None
    assert state_directory(Path("/srv/state")) is None


def _systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but systemd-analyze is missing; .ci/run installs systemd")
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    return tool


def test_rendered_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = _systemd_analyze()
    unit = tmp_path / "weltklassebot.service"
    unit.write_text(render_unit(TEMPLATE, _values()))
    done = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True,
                          check=False)
    assert done.stderr == ""
    assert done.returncode == 0


def test_rendered_unit_rates_2_or_lower_in_systemd_analyze_security(tmp_path: Path) -> None:
    tool = _systemd_analyze()
    unit = tmp_path / "weltklassebot.service"
    unit.write_text(render_unit(TEMPLATE, _values()))
    done = subprocess.run([tool, "security", "--offline=true", "--no-pager", str(unit)],
                          capture_output=True, text=True, check=False)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= 2.0, done.stdout


def test_parse_unit_reads_environment_and_env_file_overrides(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# proxies\nHTTP_PROXY=http://proxy:3128\n"
                        "WELTKLASSE_METRICS_PORT='9100'\n")
    unit = tmp_path / "weltklassebot.service"
    unit.write_text(render_unit(TEMPLATE, _values(config_dir=tmp_path)))
    parsed = parse_unit(unit)
    assert parsed.python == Path(sys.executable)
    assert parsed.user == "weltklassebot"
    assert parsed.environment["WELTKLASSE_METRICS_PORT"] == "9000"
    env = parsed.effective_environment()  # EnvironmentFile= wins, as in systemd
    assert env["WELTKLASSE_METRICS_PORT"] == "9100"
    assert env["HTTP_PROXY"] == "http://proxy:3128"


# ---- input checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "reason"), [
    ("/root/weltklassebot", "ProtectHome"), ("/home/op/wkb", "ProtectHome"),
    ("/tmp/wkb", "PrivateTmp"), ("/var/tmp/wkb", "PrivateTmp"),
    ("relative/wkb", "absolute"), ("/opt/wkb dir", "only letters"), ("/opt/100%", "only"),
])
def test_check_service_path_with_unreachable_path_is_refused(path: str, reason: str) -> None:
    with pytest.raises(UsageError, match=reason):
        check_service_path(Path(path), "the prefix", "--prefix")


def test_choose_python_refuses_an_interpreter_the_sandbox_hides() -> None:
    class HiddenPython(FakeHost):
        def python_info(self, path: Path) -> dict[str, Any] | None:
            return {"version": [3, 11, 7], "base_prefix": "/root/.pyenv/versions/3.11.7",
                    "executable": "/root/.pyenv/versions/3.11.7/bin/python3.11", "venv": True}

    with pytest.raises(UsageError, match="ProtectHome"):
        inst.choose_python(Path("/root/.pyenv/versions/3.11.7/bin/python3"), HiddenPython())


def test_choose_python_refuses_an_old_interpreter() -> None:
    class OldPython(FakeHost):
        def python_info(self, path: Path) -> dict[str, Any] | None:
            return {"version": [3, 9, 2], "base_prefix": "/usr", "executable": str(path),
                    "venv": True}

    with pytest.raises(UsageError, match=r"3\.11 or newer"):
        inst.choose_python(Path("/usr/bin/python3.9"), OldPython())


# ---- install and uninstall on a fake machine -------------------------------------------------


def test_install_as_non_root_is_refused_with_exit_2(tmp_path: Path,
                                                    sandbox_allows_tmp: None) -> None:
    with pytest.raises(UsageError, match="must run as root") as caught:
        inst.install(_options(tmp_path), _quiet, FakeHost(root=False))
    assert caught.value.exit_code == 2
    assert not (tmp_path / "opt").exists()


def test_install_creates_user_venv_dirs_config_and_unit(tmp_path: Path,
                                                        sandbox_allows_tmp: None) -> None:
    config = tmp_path / "my.toml"
    config.write_text('[service]\nspeed = "60"\n')
    host = FakeHost()
    lines: list[str] = []
    result = inst.install(_options(tmp_path, config=config), lines.append, host)
    opts = _options(tmp_path)
    assert host.users["wkbtest"][1] == host.groups["wkbtest"]
    assert result["created_user"] is True
    assert result["created_group"] is True
    venv_python = opts.prefix / "venv" / "bin" / "python"
    assert [c[:3] for c in host.commands[:1]] == [["/usr/bin/python3.11", "-m", "venv"]]
    pip_installs = [c for c in host.commands if c[1:3] == ["-m", "pip"]]
    assert "--require-hashes" in pip_installs[0]
    assert pip_installs[0][-1].endswith("runtime-requirements.txt")  # the lock's runtime part
    assert "--no-deps" in pip_installs[1]
    assert "-e" not in pip_installs[1]  # the package itself, non-editable
    assert pip_installs[2][-1] == "check"
    assert any("runtime part of" in line and "packages" in line for line in lines)
    assert (opts.state_dir.stat().st_mode & 0o7777) == 0o750
    assert (opts.snapshot_dir.stat().st_mode & 0o7777) == 0o2770
    uid, gid = host.users["wkbtest"]
    assert host.chowned[opts.state_dir] == (uid, gid)
    assert host.chowned[opts.snapshot_dir] == (uid, gid)
    assert (opts.config_dir / "config.toml").read_text() == config.read_text()
    assert host.chowned[opts.config_dir / "config.toml"] == (0, gid)
    unit = parse_unit(opts.unit_dir / "weltklassebot.service")
    assert unit.python == venv_python
    assert unit.user == "wkbtest"
    assert unit.environment["WELTKLASSE_CONFIG"] == str(opts.config_dir / "config.toml")
    assert unit.environment["WELTKLASSE_METRICS_PORT"] == "19000"
    record = json.loads((opts.prefix / "install.json").read_text())
    assert record["complete"] is True
    assert record["venv_python"] == str(venv_python)
    assert result["reloaded"] is False
    assert any("daemon-reload skipped" in note for note in result["notes"])
    assert any(line.startswith("note: systemd is not running") for line in lines)


def test_install_again_keeps_user_venv_and_config(tmp_path: Path,
                                                  sandbox_allows_tmp: None) -> None:
    config = tmp_path / "my.toml"
    config.write_text('[service]\nspeed = "60"\n')
    host = FakeHost()
    inst.install(_options(tmp_path, config=config), _quiet, host)
    host.commands.clear()
    again = inst.install(_options(tmp_path), _quiet, host)
    assert again["upgraded"] is True
    assert again["created_user"] is True  # still install's own user, for uninstall
    assert not any(c[1:3] == ["-m", "venv"] for c in host.commands)
    assert any("--force-reinstall" in c for c in host.commands)  # the package is upgraded
    assert (tmp_path / "etc" / "wkb" / "config.toml").read_text() == config.read_text()


def test_install_with_systemd_reloads_it(tmp_path: Path, sandbox_allows_tmp: None) -> None:
    host = FakeHost(systemd=True)
    result = inst.install(_options(tmp_path), _quiet, host)
    assert result["reloaded"] is True
    assert ["systemctl", "daemon-reload"] in host.commands
    skipped = FakeHost(systemd=True)
    result = inst.install(_options(tmp_path / "b", reload=False), _quiet, skipped)
    assert result["reloaded"] is False
    assert ["systemctl", "daemon-reload"] not in skipped.commands


def test_install_into_a_foreign_non_empty_prefix_is_refused(tmp_path: Path,
                                                            sandbox_allows_tmp: None) -> None:
    prefix = tmp_path / "opt" / "wkb"
    prefix.mkdir(parents=True)
    (prefix / "precious.txt").write_text("not ours")
    with pytest.raises(UsageError, match=r"holds no install\.json"):
        inst.install(_options(tmp_path), _quiet, FakeHost())
    assert (prefix / "precious.txt").exists()


def test_install_with_data_inside_the_prefix_is_refused(tmp_path: Path,
                                                        sandbox_allows_tmp: None) -> None:
    with pytest.raises(UsageError, match="holds the state directory"):
        inst.install(_options(tmp_path, state_dir=tmp_path / "opt" / "wkb" / "state"), _quiet,
                     FakeHost())


def test_install_with_invalid_config_is_refused(tmp_path: Path,
                                                sandbox_allows_tmp: None) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[service]\nspeed = \"fast\"\n")
    with pytest.raises(UsageError, match="speed"):
        inst.install(_options(tmp_path, config=config), _quiet, FakeHost())
    assert not (tmp_path / "opt").exists()


def test_uninstall_removes_the_install_and_keeps_the_data(tmp_path: Path,
                                                          sandbox_allows_tmp: None) -> None:
    config = tmp_path / "my.toml"
    config.write_text('[service]\nspeed = "60"\n')
    host = FakeHost(systemd=True)
    opts = _options(tmp_path, config=config)
    inst.install(opts, _quiet, host)
    wants = opts.unit_dir / "multi-user.target.wants"
    wants.mkdir()
    (wants / "weltklassebot.service").symlink_to(opts.unit_dir / "weltklassebot.service")
    (opts.state_dir / "segment.jsonl").write_text("{}\n")
    result = inst.uninstall(opts.prefix, None, remove_user=False, reload=True, say=_quiet,
                            host=host)
    assert ["systemctl", "stop", "weltklassebot.service"] in host.commands
    assert not (opts.unit_dir / "weltklassebot.service").exists()
    assert not os.path.lexists(wants / "weltklassebot.service")
    assert not opts.prefix.exists()
    assert not opts.config_dir.exists()  # install made it; only its own files were in it
    assert (opts.state_dir / "segment.jsonl").exists()
    assert opts.snapshot_dir.is_dir()
    assert "wkbtest" in host.users
    assert "user wkbtest (--remove-user removes it)" in result["kept"]
    # The record went with the prefix: the user is named on the command line now.
    again = inst.uninstall(opts.prefix, None, remove_user=True, reload=True, say=_quiet,
                           user="wkbtest", host=host)
    assert "user wkbtest" in again["removed"]
    assert "wkbtest" not in host.users
    assert "wkbtest" not in host.groups


def test_uninstall_keeps_an_edited_config_and_other_units(tmp_path: Path,
                                                          sandbox_allows_tmp: None) -> None:
    config = tmp_path / "my.toml"
    config.write_text('[service]\nspeed = "60"\n')
    host = FakeHost()
    opts = _options(tmp_path, config=config)
    inst.install(opts, _quiet, host)
    edited = opts.config_dir / "config.toml"
    edited.write_text('[service]\nspeed = "120"\n')
    other_units = tmp_path / "other-units"
    other_units.mkdir()
    foreign = other_units / "weltklassebot.service"
    foreign.write_text("[Service]\nExecStart=/usr/bin/python3 -m cli live\n")
    result = inst.uninstall(opts.prefix, other_units, remove_user=False, reload=False,
                            say=_quiet, host=host)
    assert edited.exists()
    assert foreign.exists()  # it does not start a service of this prefix
    assert any(str(foreign) in item for item in result["kept"])
    assert any(str(edited) in item for item in result["kept"])


def test_uninstall_of_a_directory_install_did_not_make_is_refused(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(UsageError, match=r"holds no install\.json"):
        inst.uninstall(tmp_path, None, remove_user=False, reload=False, say=_quiet,
                       host=FakeHost())
    assert (tmp_path / "keep.txt").exists()


def test_a_lock_without_via_lines_is_refused_before_anything_is_made(
        tmp_path: Path, sandbox_allows_tmp: None) -> None:
    source = tmp_path / "checkout"
    (source / inst.TEMPLATE.parent).mkdir(parents=True)
    shutil.copy2(REPO / inst.TEMPLATE, source / inst.TEMPLATE)
    shutil.copy2(REPO / "pyproject.toml", source / "pyproject.toml")
    lock = (REPO / "requirements.lock").read_text()
    (source / "requirements.lock").write_text(
        "".join(line for line in lock.splitlines(keepends=True) if "#" not in line))
    host = FakeHost()
    with pytest.raises(UsageError, match=r"no '# via' annotation.*Nothing was installed") as got:
        inst.install(_options(tmp_path, source=source), _quiet, host)
    assert got.value.exit_code == 2
    assert host.commands == []
    assert host.users == {}
    assert not (tmp_path / "opt").exists()
