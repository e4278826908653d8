"""Root running ``risk halt`` / ``risk resume`` in a service user's state directory leaves every
file it creates owned like the directory, so the service can still append, remove and replace.

Runs as root only (the case it is about); the directory is chowned to an unprivileged uid.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cli import REPO, cli_env

UID = GID = 65534

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")


def risk(*args: str | Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "cli", "risk", *(str(a) for a in args)],
        cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=60, check=False,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def owners(directory: Path) -> dict[str, tuple[int, int]]:
    """Owner of every entry under ``directory`` (hidden ones too), by relative path."""
    found = {}
    for root, dirs, files in os.walk(directory):
        for name in [*dirs, *files]:
            path = Path(root) / name
            info = path.lstat()
            found[str(path.relative_to(directory))] = (info.st_uid, info.st_gid)
    return found


def foreign(directory: Path) -> dict[str, tuple[int, int]]:
    return {name: owner for name, owner in owners(directory).items() if owner != (UID, GID)}


@pytest.fixture
def service_dir(tmp_path: Path) -> Path:
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o750)
    os.chown(state_dir, UID, GID)
    return state_dir


def test_offline_halt_as_root_leaves_its_own_files_to_the_directory_owner(
        service_dir: Path) -> None:
    assert risk("halt", "--reason", "root", "--state-dir", service_dir).returncode == 0
    assert risk("resume", "--state-dir", service_dir).returncode == 0
    assert owners(service_dir)["service.lock"] == (UID, GID)


def test_offline_halt_as_root_leaves_every_file_to_the_directory_owner(
        service_dir: Path) -> None:
    """Segments, the store's lock and mark included (those are created by the state store)."""
    assert risk("halt", "--reason", "root", "--state-dir", service_dir).returncode == 0
    assert risk("resume", "--state-dir", service_dir).returncode == 0
    assert any(name.startswith("segment-") for name in owners(service_dir))
    assert foreign(service_dir) == {}


SERVICE = textwrap.dedent("""
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
    while time.monotonic() < deadline and not (directory.parent / "stop").exists():
        cursor += 1
        if mode == "serve":
            for command in poll_operator_commands(directory):
                result = apply_operator_command(engine, command, cursor, cursor=cursor,
                                                wall_ns=time.time_ns())
                ack(directory, command.command_id, result)
        time.sleep(0.02)
""")


@pytest.fixture
def service(service_dir: Path, tmp_path: Path) -> Iterator[object]:
    script = tmp_path / "service.py"
    script.write_text(SERVICE)
    procs: list[subprocess.Popen[str]] = []

    def start(mode: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, str(script), str(service_dir), mode], cwd=REPO,
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        return proc

    yield start
    (tmp_path / "stop").touch()
    for proc in procs:
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_hand_over_as_root_leaves_command_and_ack_files_to_the_directory_owner(
        service_dir: Path, service: object) -> None:
    service("serve")  # type: ignore[operator]
    result = risk("halt", "--reason", "root", "--state-dir", service_dir, "--wait", "10")
    assert result.returncode == 0, result.stderr
    assert "The service applied it at " in result.stdout
    names = owners(service_dir)
    assert {"service.lock", "commands", "acks"} <= set(names)
    assert any(name.startswith("acks/") for name in names)
    assert foreign(service_dir) == {}


def test_queued_command_written_by_root_belongs_to_the_directory_owner(
        service_dir: Path, service: object) -> None:
    service("hold")  # type: ignore[operator]
    # the service made commands/; remove it so the CLI has to create the folder itself
    (service_dir / "commands").rmdir()
    result = risk("halt", "--reason", "root", "--state-dir", service_dir)
    assert result.returncode == 0, result.stderr
    (queued,) = (service_dir / "commands").glob("*.json")
    assert owners(service_dir)[f"commands/{queued.name}"] == (UID, GID)
    assert foreign(service_dir) == {}
