"""Fixtures for the snapshot tests (helpers live in ``snapshot_support``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .snapshot_support import CliRunner, run_cli


@pytest.fixture
def cli(tmp_path: Path) -> CliRunner:
    """Run ``python -m cli snapshot ...`` in ``tmp_path`` with a clean environment."""

    def runner(*args: str | Path, env: dict[str, str] | None = None,
               cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, cwd=cwd or tmp_path, env=env)

    return runner


@pytest.fixture
def snapdir(tmp_path: Path) -> Path:
    path = tmp_path / "snapshots"
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def _no_env_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("WELTKLASSE_"):
            monkeypatch.delenv(key)
