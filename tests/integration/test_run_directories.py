"""Run directories: killed runs are cleaned up at the next run, --out is checked before any work,
and files a root-run backtest creates belong to the directory's owner."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from support.cli import REPO, cli_env, run_cli
from support.tmpfs import mounted_tmpfs
from weltklassebot.config.model import BacktestConfig
from weltklassebot.errors import UsageError
from weltklassebot.runs.backtest import RunRequest, execute
from weltklassebot.runs.record import MANIFEST, REPORT, RUN_FILES, verify_record
from weltklassebot.runs.rundir import OWNER_LOCK, remove_stale

SLOW = '''
import pathlib
import time

from weltklassebot.strategy.base import Strategy

MARKER = pathlib.Path(__file__).with_name("started")


class Slow(Strategy):
    name = "slow"
    version = "1"

    def on_bar(self, ctx, bar):
        if bar.index == 5:
            MARKER.write_text("yes")
        if bar.index >= 5:
            time.sleep(0.02)
'''


def _incomplete(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name.startswith(".incomplete-"))


def _start_slow_run(tmp_path: Path, runs: Path, msft_daily: Path) -> subprocess.Popen[str]:
    strategy = tmp_path / "slow.py"
    strategy.write_text(SLOW)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "backtest", "--data-snapshot", str(msft_daily),
         "--strategy", str(strategy), "--out", str(runs / "killed")],
        cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return proc


def test_a_sigkilled_run_is_removed_by_the_next_run_and_a_live_one_never(
        tmp_path: Path, msft_daily: Path) -> None:
    runs = tmp_path / "runs"
    proc = _start_slow_run(tmp_path, runs, msft_daily)
    try:
        [left] = _incomplete(runs)
        assert left.name == f".incomplete-slow-{proc.pid}"
        assert (left / OWNER_LOCK).is_file()
        # A live owner is never touched: not by a scan here, nor by a whole run next to it.
        assert remove_stale(runs) == []
        beside = run_cli("backtest", "--data-snapshot", msft_daily, "--out", runs / "beside")
        assert beside.returncode == 0, beside.stderr
        assert "stale_run_directory" not in beside.stderr
        assert _incomplete(runs) == [left]
        assert proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert _incomplete(runs) == [left]  # a kill -9 leaves it; the next run cleans it
    assert not (runs / "killed").exists()
    after = run_cli("backtest", "--data-snapshot", msft_daily, "--out", runs / "after")
    assert after.returncode == 0, after.stderr
    assert "stale_run_directory_removed" in after.stderr
    assert str(left) in after.stderr
    assert _incomplete(runs) == []
    verify_record(runs / "after")


def test_stale_detection_survives_pid_reuse_and_never_follows_links(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    dead = _dead_pid()
    # pid 1 is alive, but nobody holds the lock: its owner died and the pid was reused.
    reused = runs / ".incomplete-sma_cross-1"
    reused.mkdir()
    (reused / OWNER_LOCK).write_text("pid 1\n")
    (reused / "fills.parquet").write_bytes(b"x" * 1000)
    # No lock file (killed before taking it, or an older build): judged by the pid in the name.
    legacy_dead = runs / f".incomplete-sma_cross-{dead}"
    legacy_dead.mkdir()
    legacy_alive = runs / ".incomplete-donchian_breakout-1"
    legacy_alive.mkdir()
    # A lock that is held: a live owner, whatever its pid.
    held = runs / f".incomplete-sma_cross-{dead}0"
    held.mkdir()
    (held / OWNER_LOCK).write_text("")
    fd = os.open(held / OWNER_LOCK, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    # Links and files with the prefix are never followed or removed.
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / OWNER_LOCK).write_text("")
    (outside / "keep.txt").write_text("keep")
    (runs / ".incomplete-link-42").symlink_to(outside)
    (runs / ".incomplete-file-42").write_text("not a directory")
    try:
        removed = remove_stale(runs)
    finally:
        os.close(fd)
    assert sorted(removed) == sorted([reused, legacy_dead])
    assert sorted(p.name for p in _incomplete(runs)) == sorted(
        [legacy_alive.name, held.name, ".incomplete-link-42", ".incomplete-file-42"])
    assert (outside / "keep.txt").read_text() == "keep"
    assert remove_stale(runs) == [held]  # released now


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_committed_run_holds_only_its_files(tmp_path: Path, msft_daily: Path) -> None:
    run_dir = _execute(tmp_path / "out", msft_daily, tmp_path)
    assert sorted(p.name for p in run_dir.iterdir()) == sorted([MANIFEST, *RUN_FILES, REPORT])
    assert _incomplete(tmp_path) == []


def test_a_failed_run_leaves_no_directory_it_made(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    for out in (None, tmp_path / "runs" / "deep" / "run"):
        with pytest.raises(UsageError):
            _execute(out, bad, tmp_path / "runs" / "default")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.parquet"]


def _execute(out: Path | None, snapshot: Path, runs: Path) -> Path:
    config = BacktestConfig.model_validate({"data": {"snapshot": str(snapshot)}})
    request = RunRequest(config=config, config_file=None, argv=["test"], out=out, runs_dir=runs)
    return execute(request).run_dir


# -- --out ---------------------------------------------------------------------------------------


def test_a_dangling_out_link_is_refused_before_any_work(tmp_path: Path) -> None:
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "missing")
    # The snapshot does not exist either: the --out error comes first, nothing was run.
    proc = run_cli("backtest", "--data-snapshot", tmp_path / "no.parquet", "--out", link)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"--out {link} is a symbolic link to {tmp_path / 'missing'}, which does not exist" \
        in proc.stderr
    assert "mkdir -p" in proc.stderr
    assert link.is_symlink()
    assert not (tmp_path / "missing").exists()
    assert _incomplete(tmp_path) == []


def test_a_link_to_an_empty_directory_is_that_directory(tmp_path: Path) -> None:
    target = tmp_path / "store" / "run1"
    target.mkdir(parents=True)
    link = tmp_path / "out"
    link.symlink_to(target)
    proc = run_cli("backtest", "--json", "--out", link)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["run_dir"] == str(link)
    assert link.is_symlink()
    assert sorted(p.name for p in target.iterdir()) == sorted([MANIFEST, *RUN_FILES, REPORT])
    assert _incomplete(tmp_path / "store") == []
    verify_record(link)


@pytest.mark.parametrize("case", ["link to a non-empty directory", "link to a file",
                                  "link loop", "a file", "parent is a file",
                                  "parent is a dangling link"])
def test_unusable_out_is_refused_naming_path_and_fix(tmp_path: Path, msft_daily: Path,
                                                     case: str) -> None:
    out = tmp_path / "out"
    if case == "link to a non-empty directory":
        full = tmp_path / "full"
        full.mkdir()
        (full / "keep.txt").write_text("keep")
        out.symlink_to(full)
        phrase = f"output directory {out} (a symbolic link to {full}) already exists and is not"
    elif case == "link to a file":
        (tmp_path / "file").write_text("x")
        out.symlink_to(tmp_path / "file")
        phrase = "which is not a directory"
    elif case == "link loop":
        out.symlink_to(out)
        phrase = "cannot be followed"
    elif case == "a file":
        out.write_text("x")
        phrase = f"--out {out} exists and is not a directory"
    elif case == "parent is a file":
        (tmp_path / "parent").write_text("x")
        out = tmp_path / "parent" / "run"
        phrase = f"{tmp_path / 'parent'} is a file, not a directory"
    else:
        (tmp_path / "parent").symlink_to(tmp_path / "gone")
        out = tmp_path / "parent" / "run"
        phrase = f"{tmp_path / 'parent'} is a symbolic link to {tmp_path / 'gone'}"
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(UsageError) as caught:
        _execute(out, msft_daily, tmp_path / "runs")
    assert phrase in caught.value.message
    assert "--out" in caught.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_an_out_on_a_read_only_file_system_is_refused_before_any_work(tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "ro", "size=64k,ro") as mount:
        proc = run_cli("backtest", "--data-snapshot", tmp_path / "no.parquet",
                       "--out", mount / "run")
    assert proc.returncode == 2
    assert f"cannot write in {tmp_path / 'ro'}: Read-only file system" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_disk_that_fills_during_the_run_fails_it_cleanly(tmp_path: Path) -> None:
    """The run's files fill the disk while the engine runs (they are written by the output
    worker beside it): exit 3 with the cause, no traceback, nothing left on the disk."""
    n = 200_000
    rng = np.random.default_rng(3)
    close = np.round(10_000 + np.cumsum(rng.normal(0.0, 1.0, n)), 2)
    open_ = np.concatenate(([10_000.0], close[:-1]))
    table = pa.table({
        "ts": pa.array(1_700_000_000 * 10**9 + 60 * 10**9 * np.arange(n, dtype=np.int64),
                       type=pa.timestamp("ns", tz="UTC")),
        "open": open_, "high": np.round(np.maximum(open_, close) + rng.random(n), 2),
        "low": np.round(np.minimum(open_, close) - rng.random(n), 2), "close": close,
        "volume": np.ones(n)})
    data = tmp_path / "walk.parquet"
    pq.write_table(table, data)
    config = tmp_path / "heavy.toml"
    config.write_text('[data]\nprice_increment = "0.01"\n[strategy]\nname = "donchian_breakout"'
                      '\n[strategy.params]\nqty = 1\n[execution]\ninitial_cash = "10000000000"\n',
                      encoding="utf-8")
    with mounted_tmpfs(tmp_path / "small", "size=256k") as mount:
        proc = run_cli("backtest", "--config", config, "--data-snapshot", data,
                       "--out", mount / "run", "--no-progress")
        left = sorted(p.name for p in mount.iterdir())
    assert proc.returncode == 3, proc.stderr
    assert "No space left on device" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert left == []


# -- ownership -----------------------------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="only root creates files of another owner")
def test_a_root_run_in_a_foreign_directory_leaves_everything_owned_like_it(
        tmp_path: Path, msft_daily: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    os.chown(runs, 65534, 65534)
    run_dir = _execute(runs / "a" / "b" / "run", msft_daily, runs)
    default = _execute(None, msft_daily, runs)
    paths = [runs / "a", runs / "a" / "b", run_dir, *run_dir.iterdir(), default,
             *default.iterdir()]
    assert {(p.stat().st_uid, p.stat().st_gid) for p in paths} == {(65534, 65534)}
    # ... and a stale directory such a run leaves is still removable by the owner's next run.
    stale = runs / ".incomplete-x-1"
    stale.mkdir()
    (stale / OWNER_LOCK).write_text("")
    assert remove_stale(runs) == [stale]
