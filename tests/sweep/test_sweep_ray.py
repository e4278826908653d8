"""The Ray backend on a real local Ray (two CPUs, started once per test session) gives the
local backend's table and sweep hash, failing cells included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .helpers import STOCHASTIC, sweep, table


def test_ray_and_local_give_the_same_table_and_hash(
        tmp_path: Path, small_snapshots: tuple[Path, Path], ray_session: Any) -> None:
    grid = ("fast=5,40", "slow=30,60")  # fast=40, slow=30 fails: a failing cell on both
    local = sweep(tmp_path / "local", small_snapshots, grid, seeds="1..2", base=STOCHASTIC,
                  workers=1, write_report=False)
    ray = sweep(tmp_path / "ray", small_snapshots, grid, seeds="1..2", base=STOCHASTIC,
                backend="ray", workers=2, write_report=False)
    assert ray.summary["timings"]["backend"] == "ray"
    assert ray.summary["timings"]["workers"] == 2
    assert table(tmp_path / "ray").equals(table(tmp_path / "local"))
    assert ray.summary["sweep_hash"] == local.summary["sweep_hash"]
    assert ray.summary["counts"] == {**local.summary["counts"], "cells": 16, "failed": 4}
    # Each snapshot went into the object store once, not once per cell.
    assert ray.snapshot_reads == 2
    assert ray_session.is_initialized()  # the session's Ray was joined, not stopped
