"""``snapshot verify``: the whole directory checked, read-only.

Every snapshot against its sidecar, read-only modes, ``latest.parquet``, leftovers of interrupted
commands and the history's hash chain. Problems fail the check; warnings do not.
"""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING, Any

from weltklassebot.data.catalog.history import mismatch, verify_chain
from weltklassebot.data.catalog.naming import SIDECAR, TMP_PREFIX, is_orphan_sidecar
from weltklassebot.fsutil import sha256_file

if TYPE_CHECKING:
    from weltklassebot.data.catalog.directory import Catalog


def verify(catalog: Catalog) -> dict[str, Any]:
    """Check every snapshot against its sidecar, ``latest.parquet``, leftovers and the history."""
    directory = catalog.dir
    catalog.require_dir(writable=False)
    problems: list[str] = []
    warnings: list[str] = []
    files: list[dict[str, Any]] = []
    for entry in catalog.entries():
        recorded = entry.recorded_sha256()
        try:
            actual = sha256_file(entry.path)
        except OSError as exc:
            actual = None
            problems.append(f"{entry.file}: cannot be read ({exc.strerror})")
        status = "ok"
        if recorded is None:
            status = "no sidecar"
            problems.append(f"{entry.file}: no {entry.file}{SIDECAR} holding its SHA-256")
        elif recorded == "":
            status = "bad sidecar"
            problems.append(f"{entry.file}{SIDECAR} does not hold a SHA-256")
        elif actual is not None and actual != recorded:
            status = "MISMATCH"
            problems.append(f"{entry.file}: SHA-256 {actual} differs from the recorded "
                            f"{recorded} (bit rot or tampering)")
        mode = stat.S_IMODE(entry.path.stat().st_mode)
        if mode & 0o222:
            warnings.append(f"{entry.file} is writable (mode {mode:o}); snapshots should be "
                            "read-only (chmod 0444)")
        files.append({"file": entry.file, "status": status, "sha256": actual,
                      "recorded_sha256": recorded})
    state = catalog.latest()
    latest: dict[str, Any] = {"target": state.target, "ok": state.entry is not None}
    if not state.exists and not state.is_symlink:
        warnings.append("latest.parquet does not exist (no snapshot promoted yet)")
        latest["ok"] = None
    elif not state.is_symlink:
        problems.append("latest.parquet is not a symlink; it must be a relative link to a "
                        "snapshot in this directory")
    elif state.entry is None:
        problems.append(f"latest.parquet points to {state.target}, which is not a snapshot "
                        "in this directory (dangling); repair with `snapshot rollback`")
    for child in sorted(directory.iterdir(), key=lambda p: p.name):
        name = child.name
        if name.startswith(TMP_PREFIX):
            warnings.append(f"{name}: left by an interrupted command; the next promote, "
                            "rollback or prune removes it")
        elif is_orphan_sidecar(directory, name):
            warnings.append(f"{name}: sidecar without its snapshot (an interrupted "
                            "command); the next promote, rollback or prune removes it")
    chain = verify_chain(directory)
    problems.extend(chain)
    last = mismatch(directory)
    if last:
        warnings.append(last)
    return {"dir": str(directory), "ok": not problems, "files": files, "latest": latest,
            "problems": problems, "warnings": warnings}
