"""Crash safety: kill promote (SIGKILL) at every step and at random times.

After every kill, ``latest.parquet`` points to a complete, valid snapshot whose bytes match its
recorded SHA-256, and no partial file carries a final snapshot name. The next command cleans up
what the killed one left and records in the history what happened.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from weltklassebot.core.clock import SimClock
from weltklassebot.data.catalog import SNAPSHOT_RE, Catalog, read_sidecar
from weltklassebot.data.validate import inspect_snapshot
from weltklassebot.fsutil import sha256_file

from .snapshot_support import clean_env, make_bars

PROMOTE_STEPS = (
    "locked", "space_checked", "copy_started", "copied", "validated", "file_synced",
    "sidecar_written", "sidecar_renamed", "renamed", "link_created", "swapped", "dir_synced",
    "history_written",
)
ROLLBACK_STEPS = ("rollback_link_created", "rollback_swapped", "rollback_dir_synced",
                  "rollback_history_written")


def _seed_dir(snapdir: Path, tmp_path: Path, count: int = 2) -> list[str]:
    clock = SimClock(1_790_000_000 * 10**9)
    catalog = Catalog(snapdir, clock=clock, command="seed")
    files = []
    for i in range(count):
        clock.advance_to(clock.now_ns() + 10**9)
        change = catalog.promote(make_bars(tmp_path / f"seed{i}.parquet", seed=i), name=f"s{i}",
                                 timeout_s=1)
        assert change.new is not None
        files.append(change.new["file"])
    return files


def _promote_cmd(src: Path, snapdir: Path) -> list[str]:
    return [sys.executable, "-m", "cli", "snapshot", "promote", str(src), "--dir", str(snapdir),
            "--name", "fresh"]


def assert_consistent(snapdir: Path) -> str:
    """The crash-safety invariant; returns the file latest.parquet points to."""
    latest = snapdir / "latest.parquet"
    assert latest.is_symlink()
    target = os.readlink(latest)
    assert "/" not in target, target
    assert SNAPSHOT_RE.match(target), target
    assert (snapdir / target).is_file()
    for child in snapdir.iterdir():
        if SNAPSHOT_RE.match(child.name) and not child.is_symlink():
            recorded = read_sidecar(snapdir / (child.name + ".sha256"))
            assert recorded, f"{child.name} has a final name but no SHA-256 sidecar"
            assert sha256_file(child) == recorded, f"{child.name} is partial or damaged"
    report = inspect_snapshot(latest)
    assert report.ok
    assert report.rows > 0
    return target


def assert_recovers(snapdir: Path, tmp_path: Path) -> None:
    catalog = Catalog(snapdir, command="recover")
    catalog.promote(make_bars(tmp_path / "after.parquet", seed=77), name="after", timeout_s=5)
    assert not [p.name for p in snapdir.iterdir() if p.name.startswith(".tmp-")]
    result = catalog.verify()
    assert result["ok"], result["problems"]
    assert not result["warnings"], result["warnings"]
    assert catalog.history()[-1]["new"]["file"] == os.readlink(snapdir / "latest.parquet")


@pytest.mark.parametrize("step", PROMOTE_STEPS)
def test_kill_promote_at_each_step(tmp_path: Path, step: str) -> None:
    snapdir = tmp_path / "snapshots"
    snapdir.mkdir()
    files = _seed_dir(snapdir, tmp_path)
    src = make_bars(tmp_path / "new.parquet", n=2000, seed=5)
    result = subprocess.run(_promote_cmd(src, snapdir), env=clean_env(WELTKLASSE_FAULT_AT=step),
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == -signal.SIGKILL, result.stderr
    target = assert_consistent(snapdir)
    swapped = PROMOTE_STEPS.index(step) >= PROMOTE_STEPS.index("swapped")
    if swapped:
        assert target.endswith("_fresh.parquet")
        assert sha256_file(snapdir / target) == sha256_file(src)
    else:
        assert target == files[-1]
    assert_recovers(snapdir, tmp_path)


@pytest.mark.parametrize("step", ROLLBACK_STEPS)
def test_kill_rollback_at_each_step(tmp_path: Path, step: str) -> None:
    snapdir = tmp_path / "snapshots"
    snapdir.mkdir()
    files = _seed_dir(snapdir, tmp_path, 3)
    result = subprocess.run(
        [sys.executable, "-m", "cli", "snapshot", "rollback", "--dir", str(snapdir)],
        env=clean_env(WELTKLASSE_FAULT_AT=step), capture_output=True, text=True, timeout=60,
        check=False)
    assert result.returncode == -signal.SIGKILL, result.stderr
    target = assert_consistent(snapdir)
    assert target in files[1:]
    assert_recovers(snapdir, tmp_path)


def test_kill_prune_midway(tmp_path: Path) -> None:
    snapdir = tmp_path / "snapshots"
    snapdir.mkdir()
    files = _seed_dir(snapdir, tmp_path, 6)
    result = subprocess.run(
        [sys.executable, "-m", "cli", "snapshot", "prune", "--keep", "3", "--dir", str(snapdir)],
        env=clean_env(WELTKLASSE_FAULT_AT="prune_removed_0"), capture_output=True, text=True,
        timeout=60, check=False)
    assert result.returncode == -signal.SIGKILL
    assert assert_consistent(snapdir) == files[-1]
    assert [e.file for e in Catalog(snapdir).entries()] == files[1:]
    assert_recovers(snapdir, tmp_path)


def test_kill_promote_at_random_times(tmp_path: Path) -> None:
    snapdir = tmp_path / "snapshots"
    snapdir.mkdir()
    seed_file = _seed_dir(snapdir, tmp_path)[-1]
    src = make_bars(tmp_path / "big.parquet", n=300_000, seed=9)

    def reset() -> None:
        """Point back at the seed and drop promoted copies, so each attempt really promotes."""
        if os.readlink(snapdir / "latest.parquet") != seed_file:
            Catalog(snapdir, command="reset").rollback(to=seed_file, timeout_s=5)
        for path in snapdir.iterdir():
            if "_fresh.parquet" in path.name:
                path.unlink()

    durations = []
    for _ in range(2):  # warm-up runs; the faster one sets the kill window
        start = time.monotonic()
        subprocess.run(_promote_cmd(src, snapdir), env=clean_env(), capture_output=True,
                       timeout=60, check=True)
        durations.append(time.monotonic() - start)
        reset()
    duration = min(durations)
    rng = np.random.default_rng(20261124)
    outcomes = {"attempts": 0, "killed": 0, "finished": 0, "left_work_behind": 0}
    while outcomes["attempts"] < 20 or (outcomes["killed"] < 10 and outcomes["attempts"] < 60):
        outcomes["attempts"] += 1
        kill_after = float(rng.uniform(0.5, 1.0)) * duration
        start = time.monotonic()
        proc = subprocess.Popen(_promote_cmd(src, snapdir), env=clean_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None and time.monotonic() - start < kill_after:
            time.sleep(0.002)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        else:  # finished before the kill: the machine got faster, shrink the window
            duration = min(duration, time.monotonic() - start)
        code = proc.wait(timeout=60)
        outcomes["killed" if code == -signal.SIGKILL else "finished"] += 1
        assert_consistent(snapdir)
        if any(p.name.startswith(".tmp-") for p in snapdir.iterdir()):
            outcomes["left_work_behind"] += 1
        reset()
    print("random kills:", outcomes)
    assert outcomes["killed"] >= 10, outcomes
    assert_recovers(snapdir, tmp_path)
