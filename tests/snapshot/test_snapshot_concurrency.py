"""Two mutating commands at once: serialised by the lock; a short time-out exits 3 naming the
holder."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from weltklassebot.data.catalog import Catalog

from .snapshot_support import clean_env, make_bars, run_cli


def _start(args: list[str], **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cli", "snapshot", *args],
                            env=clean_env(**env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_lock_holder(snapdir: Path, pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lock = snapdir / ".lock"
        if lock.exists() and f'"pid": {pid}' in lock.read_text():
            return
        time.sleep(0.02)
    raise AssertionError("the first promote never took the lock")


def test_two_promotes_are_serialised(tmp_path: Path) -> None:
    snapdir = tmp_path / "snapshots"
    snapdir.mkdir()
    a = make_bars(tmp_path / "a.parquet", seed=1)
    b = make_bars(tmp_path / "b.parquet", seed=2)
    first = _start(["promote", str(a), "--dir", str(snapdir)],
                   WELTKLASSE_FAULT_AT="locked:sleep=1.5")
    _wait_for_lock_holder(snapdir, first.pid)
    second = _start(["promote", str(b), "--dir", str(snapdir), "--lock-timeout", "30"])
    _out1, err1 = first.communicate(timeout=60)
    _out2, err2 = second.communicate(timeout=60)
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert "waiting up to 30 s for the snapshot lock held by pid" in err2
    records = Catalog(snapdir).history()
    assert [r["action"] for r in records] == ["promote", "promote"]
    assert records[0]["pid"] == first.pid
    assert records[1]["pid"] == second.pid
    assert records[1]["old"] == records[0]["new"]  # the second saw the first's result
    assert os.readlink(snapdir / "latest.parquet") == records[1]["new"]["file"]
    assert Catalog(snapdir).verify()["ok"]


def test_lock_time_out_exits_3_naming_the_holder(tmp_path: Path) -> None:
    snapdir = tmp_path / "snapshots"
    snapdir.mkdir()
    a = make_bars(tmp_path / "a.parquet", seed=1)
    b = make_bars(tmp_path / "b.parquet", seed=2)
    release = tmp_path / "release"  # the holder keeps the lock until this file exists
    holder = _start(["promote", str(a), "--dir", str(snapdir)],
                    WELTKLASSE_FAULT_AT=f"locked:wait={release}")
    try:
        _wait_for_lock_holder(snapdir, holder.pid)
        for args in (["promote", str(b)], ["rollback"], ["prune", "--keep", "3"]):
            result = run_cli(*args, "--dir", snapdir, "--lock-timeout", "0.3")
            assert result.returncode == 3, result.stderr
            assert f"locked by pid {holder.pid}" in result.stderr
            assert "snapshot promote" in result.stderr  # the holder's command
            assert "nothing was changed" in result.stderr
        env_timeout = run_cli("rollback", "--dir", snapdir,
                              env=clean_env(WELTKLASSE_LOCK_TIMEOUT="0.2"))
        assert env_timeout.returncode == 3, env_timeout.stderr
        assert f"locked by pid {holder.pid}" in env_timeout.stderr
    finally:
        release.touch()
        holder.communicate(timeout=60)
    assert holder.returncode == 0
    assert [r["action"] for r in Catalog(snapdir).history()] == ["promote"]
