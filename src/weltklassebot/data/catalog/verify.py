"""``snapshot verify``: the whole directory checked, read-only.

Every snapshot against its sidecar, ``latest.parquet`` (what exactly is there), leftovers of
interrupted commands, and the history: its hash chain, sequence numbers, torn bytes, and its
length against ``history.head``. Problems fail the check (exit 1); warnings do not. Each problem
carries the command that repairs it (``fixes``).
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING, Any

from weltklassebot.data.catalog.history import HISTORY, check_history, mismatch
from weltklassebot.data.catalog.integrity import check_entry
from weltklassebot.data.catalog.latest import ABSENT, SNAPSHOT
from weltklassebot.data.catalog.naming import TMP_PREFIX, is_orphan_sidecar
from weltklassebot.data.catalog.quarantine import QUARANTINE

if TYPE_CHECKING:
    from weltklassebot.data.catalog.directory import Catalog

ROLLBACK_FIX = "python -m cli snapshot rollback --to FILE"
REPAIR_FIX = "python -m cli snapshot repair"


def verify(catalog: Catalog) -> dict[str, Any]:
    """Check every snapshot, ``latest.parquet``, leftovers and the history; change nothing."""
    directory = catalog.dir
    catalog.require_dir(writable=False)
    problems: list[str] = []
    warnings: list[str] = []
    fixes: list[str] = []
    files: list[dict[str, Any]] = []
    state = catalog.latest()
    checks = {entry.file: check_entry(entry) for entry in catalog.entries()}
    intact = [file for file, check in checks.items() if check.ok]
    repair_fix = f"{REPAIR_FIX} --dir {directory} --yes"
    rollback_fix = (f"python -m cli snapshot rollback --dir {directory} --to {intact[-1]}"
                    if intact else ROLLBACK_FIX)
    for entry in catalog.entries():
        check = checks[entry.file]
        problem = check.problem()
        if problem:
            problems.append(problem)
            in_use = state.entry is not None and state.entry.file == entry.file
            fixes.append(rollback_fix if in_use else repair_fix)
        mode = stat.S_IMODE(entry.path.stat().st_mode)
        if mode & 0o222:
            warnings.append(f"{entry.file} is writable (mode {mode:o}); snapshots should be "
                            "read-only (chmod 0444)")
        files.append({"file": entry.file, "status": check.status, "sha256": check.actual,
                      "recorded_sha256": check.recorded})
    latest: dict[str, Any] = {"target": state.target, "kind": state.kind,
                              "ok": state.kind == SNAPSHOT, "description": state.describe()}
    if state.kind == ABSENT:
        latest["ok"] = None
        if files:
            problems.append(f"{state.describe()}, although the directory holds "
                            f"{len(files)} snapshot(s)")
            fixes.append(rollback_fix)
        else:
            warnings.append(f"{state.describe()} (no snapshot promoted yet)")
    elif state.kind != SNAPSHOT:
        problems.append(f"{state.describe()} (rollback moves anything found in its place to "
                        "quarantine/, never deletes it)")
        fixes.append(rollback_fix)
    elif not state.relative:
        warnings.append(f"latest.parquet is an absolute link ({state.target}); it breaks if "
                        "the directory is moved or mounted elsewhere. The next promote or "
                        "rollback writes a relative one")
    for child in sorted(directory.iterdir(), key=lambda p: p.name):
        name = child.name
        if name.startswith(TMP_PREFIX):
            warnings.append(f"{name}: unfinished work of an interrupted command; the next "
                            "promote, rollback or prune removes it")
        elif is_orphan_sidecar(directory, name):
            warnings.append(f"{name}: sidecar without its snapshot (an interrupted command, or "
                            "a snapshot removed by hand); the next promote, rollback or prune "
                            "moves it to quarantine/")
    chain = check_history(directory)
    problems.extend(chain.problems)
    fixes.extend(repair_fix for _ in chain.problems)
    warnings.extend(chain.warnings)
    if not chain.exists and not chain.problems and files:
        problems.append(f"{HISTORY} does not exist although the directory holds {len(files)} "
                        "snapshot(s): the history was deleted, or the first promote was "
                        "interrupted")
        fixes.append(repair_fix)
    last = mismatch(directory)
    if last:
        warnings.append(last)
    quarantine = directory / QUARANTINE
    kept = sorted(os.listdir(quarantine)) if quarantine.is_dir() else []
    return {"dir": str(directory), "ok": not problems, "files": files, "latest": latest,
            "problems": problems, "fixes": fixes, "warnings": warnings,
            "quarantine": kept}
