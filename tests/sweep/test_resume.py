"""A sweep killed with SIGKILL resumes where it stopped: the cells journaled before the kill are
kept, the rest run, and the result is the uninterrupted sweep's, bit for bit."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from support.cli import REPO, cli_env, run_cli
from support.live import sample_slice

from .helpers import sweep, sweep_json, table

GRID = ("fast=4:10:2", "slow=30,45,60")  # 12 cells


def journal_cells(directory: Path) -> int:
    path = directory / "cells.jsonl"
    if not path.exists():
        return 0
    return max(0, path.read_bytes().count(b"\n") - 1)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry.name))
    return found


def test_resume_after_sigkill(tmp_path: Path) -> None:
    data = sample_slice(tmp_path / "btc.parquet", 4000, offset=6000)
    out = tmp_path / "killed"
    args = ["sweep", *(a for g in GRID for a in ("--grid", g)), "--seeds", "1",
            "--data-snapshot", str(data), "--workers", "2", "--no-fast-path", "--no-report",
            "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=REPO, env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while journal_cells(out) < 3 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert proc.poll() is None, "the sweep ended before it could be killed"
        workers = [p for c in children_of(proc.pid) for p in [c, *children_of(c)]]
        proc.send_signal(signal.SIGKILL)  # the driver only, as kill -9 PID does
        proc.wait(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.stderr is not None:
            proc.stderr.close()
    # The pool's processes die with the driver: nothing keeps running after a kill.
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{p}").exists() for p in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in workers if Path(f"/proc/{p}/stat").exists()
                and Path(f"/proc/{p}/stat").read_text().split()[2] != "Z"]
    done_before = journal_cells(out)
    assert 3 <= done_before < 12
    assert not (out / "results.parquet").exists()
    # A line the kill cut short (simulated) is dropped, not taken for a cell.
    with (out / "cells.jsonl").open("a") as journal:
        journal.write('{"key": "cut-sh')
    resumed = run_cli(*args, "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    summary = sweep_json(out)
    assert summary["counts"]["resumed"] == done_before
    assert summary["counts"]["ran"] == 12 - done_before
    assert summary["counts"]["ok"] == 12
    whole = sweep(tmp_path / "whole", (data,), GRID, seeds="1", write_report=False)
    assert summary["sweep_hash"] == whole.summary["sweep_hash"]
    assert table(out).equals(table(tmp_path / "whole"))
    # A finished sweep resumed has nothing left to run and writes the same outputs again.
    again = run_cli(*args, "--resume")
    assert again.returncode == 0, again.stderr
    assert sweep_json(out)["counts"]["ran"] == 0
    assert sweep_json(out)["sweep_hash"] == whole.summary["sweep_hash"]
