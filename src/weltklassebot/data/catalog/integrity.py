"""A snapshot's bytes against its SHA-256 sidecar, and the check made before a catalog file is used.

``check_entry`` re-hashes one snapshot and says precisely what is wrong: a missing sidecar, a
sidecar that holds no SHA-256 and different bytes are three different findings with three
different fixes. ``check_catalog_file`` is what ``backtest`` calls on its ``--data-snapshot``
before reading it: a file served by a catalog (``latest.parquet`` of a snapshot directory, or
any file with a ``.sha256`` sidecar beside it) is used only if it matches its sidecar. The
SHA-256 it returns is the one the run records, so the file is hashed once either way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from weltklassebot.data.catalog.latest import LATEST, SNAPSHOT, read_latest
from weltklassebot.data.catalog.lock import LOCK
from weltklassebot.data.catalog.naming import SIDECAR, SNAPSHOT_RE, Entry, read_sidecar
from weltklassebot.errors import VerdictFailed
from weltklassebot.fsutil import sha256_file

OK = "ok"
MISMATCH = "MISMATCH"
NO_SIDECAR = "no sidecar"
BAD_SIDECAR = "bad sidecar"
UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Check:
    """One snapshot checked against its sidecar."""

    file: str
    status: str
    actual: str | None
    recorded: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK

    def problem(self) -> str | None:
        """What is wrong, in words that do not claim more than is known."""
        if self.status == NO_SIDECAR:
            return (f"{self.file}: its sidecar {self.file}{SIDECAR} is missing, so its bytes "
                    "cannot be checked (the file itself may be intact)")
        if self.status == BAD_SIDECAR:
            return (f"{self.file}: its sidecar {self.file}{SIDECAR} does not hold a SHA-256 "
                    "(the sidecar is damaged; the file itself may be intact)")
        if self.status == MISMATCH:
            return (f"{self.file}: SHA-256 {self.actual} differs from the {self.recorded} its "
                    "sidecar records (the file or its sidecar was changed: bit rot or "
                    "tampering)")
        if self.status == UNREADABLE:
            return f"{self.file}: cannot be read ({self.error})"
        return None


def check_file(path: Path, sidecar: Path) -> Check:
    """Hash ``path`` and compare it with ``sidecar``."""
    recorded = read_sidecar(sidecar)
    try:
        actual: str | None = sha256_file(path)
    except OSError as exc:
        return Check(path.name, UNREADABLE, None, recorded, exc.strerror or str(exc))
    if recorded is None:
        return Check(path.name, NO_SIDECAR, actual, None)
    if recorded == "":
        return Check(path.name, BAD_SIDECAR, actual, recorded)
    return Check(path.name, OK if actual == recorded else MISMATCH, actual, recorded)


def check_entry(entry: Entry) -> Check:
    return check_file(entry.path, entry.sidecar)


def is_catalog_dir(directory: Path) -> bool:
    """True for a directory a mutating snapshot command has worked in (it leaves these files)."""
    from weltklassebot.data.catalog.history import HEAD, HISTORY

    return any(os.path.lexists(directory / name) for name in (HISTORY, HEAD, LOCK))


def check_catalog_file(path: Path) -> str | None:
    """Refuse (exit 1) a catalog file whose bytes do not match its SHA-256 sidecar.

    Returns the verified SHA-256, or ``None`` when ``path`` is not a catalog file (or does not
    exist: the reader reports that). A catalog file is ``latest.parquet`` in a snapshot
    directory, or any file with a ``.sha256`` sidecar beside it (after following links).
    """
    directory = path.parent
    catalog = is_catalog_dir(directory)
    if path.name == LATEST and catalog:
        state = read_latest(directory)
        if not state.exists:
            return None
        if state.kind != SNAPSHOT:
            raise VerdictFailed(
                f"{path}: {state.describe()}, so it was not used. Run `python -m cli snapshot "
                f"verify --dir {directory}` to see the directory's state, and `python -m cli "
                f"snapshot rollback --dir {directory} --to FILE` to point latest.parquet at a "
                "verified snapshot (a file found in its place is moved to quarantine/, not "
                "deleted)."
            )
    if not path.exists():
        return None
    resolved = path.resolve()
    sidecar = resolved.with_name(resolved.name + SIDECAR)
    snapshot_named = SNAPSHOT_RE.match(resolved.name) is not None
    if not os.path.lexists(sidecar) and not (snapshot_named and is_catalog_dir(resolved.parent)):
        return None
    check = check_file(resolved, sidecar)
    if check.ok:
        return check.actual
    shown = f"{path} (-> {resolved})" if resolved != path.absolute() else str(path)
    where = resolved.parent
    raise VerdictFailed(
        f"refusing to run on {shown}: {check.problem()}. Nothing was run. Run `python -m cli "
        f"snapshot verify --dir {where}` to see which snapshots are intact, then `python -m cli "
        f"snapshot rollback --dir {where}` (or `--to FILE`) to serve a verified one, or restore "
        "the file and its sidecar from a replica."
    )
