"""Numba's compile cache never fails a run and never changes a result.

Each case is a fresh process (``fastpath.cache_probe``: the bundled sample's default backtest)
with ``NUMBA_CACHE_DIR`` set: an empty directory (a fresh install's first run compiles and
fills it; the next run loads from it), a place no one can write, and a cache whose files were
damaged. Every run gives the equity hash the engine gives for the same backtest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from weltklassebot.config.model import BacktestConfig
from weltklassebot.runs.backtest import prepare_data, simulate
from weltklassebot.strategy.loader import resolve_strategy

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def engine_hash() -> str:
    """The engine's equity hash of the probe's backtest."""
    config = BacktestConfig()
    data = prepare_data(config)
    with tempfile.TemporaryDirectory() as scratch:
        sim = simulate(Path(scratch), config,
                       resolve_strategy(config.strategy.name, dict(config.strategy.params)),
                       data.instruments, data.intervals, data.feed().chunks(),
                       rows=data.report.rows, log=False)
    assert sim.equity_hash is not None
    return sim.equity_hash


def start_probe(cache_dir: Path | str, **extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir), **extra,
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "fastpath.cache_probe"], cwd=TESTS, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def answer(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    found: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return found


def probe(cache_dir: Path | str, **extra: str) -> dict[str, Any]:
    return answer(start_probe(cache_dir, **extra))


@pytest.fixture(scope="module")
def nowhere() -> Iterator[subprocess.Popen[str]]:
    """A probe with no writable cache directory at all, started at once: it compiles (as the
    empty-cache probe does) while the other cases run."""
    with tempfile.TemporaryDirectory() as scratch:
        blocker = Path(scratch) / "a-file"
        blocker.write_text("not a directory")
        process = start_probe(blocker / "cache",
                              NUMBA_CACHE_LOCATOR_CLASSES="UserProvidedCacheLocator")
        yield process
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_an_empty_cache_is_filled_by_the_first_run_and_used_by_the_next(
        tmp_path: Path, engine_hash: str, nowhere: subprocess.Popen[str]) -> None:
    cache = tmp_path / "numba-cache"
    first = probe(cache)
    assert first["hash"] == engine_hash
    assert first["cached"] is True
    assert first["misses"] == 1
    assert first["hits"] == 0
    assert Path(first["cache_path"]).is_relative_to(cache)
    saved = sorted(p.name for p in cache.rglob("*") if p.is_file())
    assert any(name.endswith(".nbi") for name in saved), saved
    second = probe(cache)
    assert second["hash"] == engine_hash
    assert (second["hits"], second["misses"]) == (1, 0)  # loaded, not compiled

    # Damaged entries (a full disk, a crash while writing): the run compiles without them.
    for path in cache.rglob("*"):
        if path.is_file():
            path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 3)])
    damaged = probe(cache)
    assert damaged["hash"] == engine_hash
    assert damaged["cached"] is False


def test_no_writable_cache_directory_compiles_in_memory(
        engine_hash: str, nowhere: subprocess.Popen[str]) -> None:
    """NUMBA_CACHE_DIR under a regular file cannot be created (not even by root); with numba
    told to look nowhere else, there is no cache at all, and the run compiles in memory."""
    found = answer(nowhere)
    assert found["hash"] == engine_hash
    assert found["cached"] is False
