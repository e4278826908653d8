"""Fixtures of the sweep tests: small snapshots cut from the bundled sample, and one real local
Ray for the whole test session (its start-up takes seconds)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.live import sample_slice


@pytest.fixture(scope="session")
def small_snapshots(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two 1,500-bar hourly snapshots from different stretches of the sample."""
    tmp = tmp_path_factory.mktemp("snapshots")
    return (sample_slice(tmp / "btc-a.parquet", 1500, offset=3000),
            sample_slice(tmp / "btc-b.parquet", 1500, offset=9000))


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """A real local Ray with two CPUs, started once; the Ray backend joins it."""
    try:
        import ray
    except ModuleNotFoundError:
        message = "the ray package is not installed (bash scripts/setup.sh installs it)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true but {message}")
        pytest.skip(message)
    import logging

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR,
             log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
