"""Fault injection over the snapshot catalog: generated damage, never a false OK, nothing lost.

For every fault class in ``catalog_faults`` and a fixed set of seeds, a healthy catalog is
damaged at a random place. Then:

- ``verify`` fails (exit 1 through the CLI) for every harmful fault, in accurate words;
- ``backtest``'s check refuses ``latest.parquet`` whenever it does not lead to an intact
  snapshot;
- ``prune`` (before any repair) neither counts nor deletes a snapshot that fails its check;
- the documented repair (``rollback --to`` an intact snapshot if latest.parquet needs it, then
  ``repair``) makes ``verify`` pass, and every byte that was in the directory is still in it or
  in ``quarantine/``.

Counts are printed per class (``pytest -s tests/snapshot/test_catalog_faults.py``). Seeds per
class: ``WELTKLASSE_CATALOG_FAULT_SEEDS`` (default 8; a soak sets hundreds).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from weltklassebot.core.clock import SimClock
from weltklassebot.data.catalog import (
    HISTORY,
    LATEST,
    QUARANTINE,
    Catalog,
    check_catalog_file,
    check_entry,
)
from weltklassebot.errors import VerdictFailed, WeltklasseError

from .catalog_faults import FAULTS, Fault, inventory, lost
from .snapshot_support import make_bars

SEEDS = int(os.environ.get("WELTKLASSE_CATALOG_FAULT_SEEDS", "8"))
ROLLBACK = "python -m cli snapshot rollback"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A healthy catalog: s1..s5 (s0 pruned), latest -> s4, s5 newer; and a restore source."""
    root = tmp_path_factory.mktemp("catalog-base")
    directory = root / "snapshots"
    directory.mkdir()
    clock = SimClock(1_790_000_000 * 10**9)
    catalog = Catalog(directory, clock=clock, command="seed")
    files = []
    for i in range(6):
        clock.advance_to(clock.now_ns() + 60 * 10**9)
        change = catalog.promote(make_bars(root / f"s{i}.parquet", seed=i), name=f"s{i}",
                                 timeout_s=1)
        assert change.new is not None
        files.append(change.new["file"])
    catalog.rollback(to=files[4], timeout_s=1)
    catalog.prune(keep=3, timeout_s=1)
    assert catalog.verify()["ok"]
    return directory, make_bars(root / "s9.parquet", seed=9)


def _operator_repair(directory: Path, restore: Path) -> None:
    """The procedure of docs/snapshots.md, Repair."""
    catalog = Catalog(directory, command="repair")
    result = catalog.verify()
    if any(fix.startswith(ROLLBACK) for fix in result["fixes"]):
        intact = [f["file"] for f in result["files"] if f["status"] == "ok"]
        if intact:
            catalog.rollback(to=intact[-1], timeout_s=1)
        else:  # nothing intact left here: restore a copy (from a replica, or re-import)
            catalog.promote(restore, name="restored", timeout_s=1)
    catalog.repair(timeout_s=1)


def _check_words(fault: Fault, result: dict[str, object]) -> None:
    text = json.dumps(result)
    if fault.kind == "link_outside":
        assert "points outside the snapshot directory" in text
        assert "dangling" not in text
    if fault.kind == "regular_file_latest":
        assert "is a regular file" in text
    if fault.kind == "dangling_latest":
        assert "dangling" in text
    if "deleted" in fault.detail and fault.kind == "snapshot_damage":
        assert "is missing, so its bytes cannot be checked" in text


def _check_backtest_guard(directory: Path) -> None:
    """``backtest`` runs on latest.parquet only if it leads to an intact snapshot."""
    state = Catalog(directory).latest()
    intact = state.entry is not None and check_entry(state.entry).ok
    if not state.exists:
        assert check_catalog_file(directory / LATEST) is None
    elif intact:
        assert check_catalog_file(directory / LATEST) is not None
    else:
        with pytest.raises(VerdictFailed, match=r"snapshot (verify|rollback)"):
            check_catalog_file(directory / LATEST)


def _check_prune(directory: Path) -> None:
    """Before any repair: prune counts and deletes only verified snapshots."""
    catalog = Catalog(directory, command="prune")
    before = {f["file"]: f["status"] for f in catalog.verify()["files"]}
    state = catalog.latest()
    try:
        change = catalog.prune(keep=3, timeout_s=1)
    except WeltklasseError:
        assert state.entry is None or before.get(state.entry.file) != "ok"
        assert {e.file for e in catalog.entries()} == set(before)
        return
    assert state.entry is not None
    assert before[state.entry.file] == "ok"
    removed = {r["file"] for r in change.removed}
    assert all(before[f] == "ok" for f in removed), (removed, before)
    remaining = {e.file for e in catalog.entries()}
    assert remaining == set(before) - removed
    older_ok = [f for f, s in before.items() if s == "ok" and f < state.entry.file]
    assert len([f for f in older_ok if f in remaining]) == min(3, len(older_ok))


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_generated_faults(kind: str, base: tuple[Path, Path], tmp_path: Path) -> None:
    source, restore = base
    counts = {"tried": 0, "harmful": 0, "detected": 0, "repaired": 0, "files_lost": 0}
    for seed in range(SEEDS):
        rng = np.random.default_rng([20261124, seed, sorted(FAULTS).index(kind)])
        work = tmp_path / f"case{seed}"
        directory = work / "snapshots"
        shutil.copytree(source, directory, symlinks=True)
        fault = FAULTS[kind](directory, rng)
        counts["tried"] += 1
        result = Catalog(directory).verify()
        if fault.harmful:
            counts["harmful"] += 1
            assert not result["ok"], f"verify said OK after {fault}"
            counts["detected"] += 1
            assert len(result["fixes"]) == len(result["problems"])
        _check_words(fault, result)
        _check_backtest_guard(directory)
        if kind == "snapshot_damage":
            _check_prune(directory)
        before = inventory(directory)
        _operator_repair(directory, restore)
        after = Catalog(directory).verify()
        assert after["ok"], f"{fault}: still {after['problems']}"
        missing = lost(before, inventory(directory))
        counts["files_lost"] += len(missing)
        assert not missing, f"{fault}: lost {missing}"
        counts["repaired"] += 1
        shutil.rmtree(work)
    print(f"catalog faults {kind}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    assert counts["detected"] == counts["harmful"]


def test_torn_final_line_is_cut_before_the_next_append(base: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    """A promote after a crash mid-append keeps the torn bytes and leaves a verifiable chain."""
    source, restore = base
    directory = tmp_path / "snapshots"
    shutil.copytree(source, directory, symlinks=True)
    torn = b'{"action":"promote","new":{"file":"2026'
    with (directory / HISTORY).open("ab") as fh:
        fh.write(torn)
    assert not Catalog(directory).verify()["ok"]
    change = Catalog(directory, clock=SimClock(1_800_000_000 * 10**9)).promote(
        restore, name="next", timeout_s=1)
    assert any("torn" in note for note in change.notes)
    kept = [q for q in change.quarantined if "torn" in q.file]
    assert len(kept) == 1
    assert (directory / kept[0].to).read_bytes() == torn
    result = Catalog(directory).verify()
    assert result["ok"], result["problems"]
    repair = [r for r in Catalog(directory).history() if r.get("action") == "repair"]
    assert repair
    assert repair[-1]["quarantined"][0]["to"].startswith(QUARANTINE + "/")
