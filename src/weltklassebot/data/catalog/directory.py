"""``Catalog``: the commands on one snapshot directory (promote, rollback, prune, verify, list).

Each mutating command holds the directory lock, first removes what an interrupted command left and
reconciles the history, then changes the directory so that every step is atomic: a file with a
final snapshot name is complete, and ``latest.parquet`` never points at a partial file.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from weltklassebot.core.clock import Clock, WallClock
from weltklassebot.core.timeutil import ns_to_iso
from weltklassebot.data.catalog.faults import fault_point
from weltklassebot.data.catalog.footer import footer_facts
from weltklassebot.data.catalog.history import (
    Change,
    append_history,
    read_history,
    reconcile,
    ref,
    repair_history,
)
from weltklassebot.data.catalog.intake import copy_with_hash, validate_copy
from weltklassebot.data.catalog.integrity import Check, check_entry
from weltklassebot.data.catalog.latest import (
    LATEST,
    MISSING,
    NOT_A_FILE,
    REGULAR_FILE,
    LatestState,
    read_latest,
    swap_latest,
)
from weltklassebot.data.catalog.lock import snapshot_lock, whoami
from weltklassebot.data.catalog.naming import (
    SIDECAR,
    SNAPSHOT_RE,
    TMP_PREFIX,
    Entry,
    check_name,
    entry_at,
    is_orphan_sidecar,
    list_entries,
    snapshot_file_name,
    write_sidecar,
)
from weltklassebot.data.catalog.prune import check_keep, to_remove
from weltklassebot.data.catalog.quarantine import Quarantined, move_to_quarantine
from weltklassebot.data.catalog.verify import verify as verify_directory
from weltklassebot.errors import RuntimeFailure, UnusableInput, UsageError, VerdictFailed
from weltklassebot.fsutil import adopt_directory_owner, fsync_dir, fsync_file

FREE_SPACE_MARGIN = 1 << 20


class Catalog:
    """Operations on one snapshot directory."""

    def __init__(self, directory: Path, *, origin: str = "--dir", clock: Clock | None = None,
                 command: str = "", on_wait: Callable[[str], None] | None = None) -> None:
        self.dir = Path(directory)
        self.origin = origin
        self.clock: Clock = clock if clock is not None else WallClock()
        self.command = command
        self.on_wait = on_wait

    # ---- directory checks ------------------------------------------------------------------

    def require_dir(self, *, writable: bool) -> None:
        where = f"snapshot directory {self.dir} (from {self.origin})"
        if not self.dir.exists():
            raise UsageError(
                f"{where} does not exist. Create it (e.g. `mkdir -p {self.dir}`, owned by the "
                "service user), or point --dir / WELTKLASSE_SNAPSHOT_DIR / [snapshots] "
                "snapshot_dir in the config at the right place."
            )
        if not self.dir.is_dir():
            raise UsageError(f"{where} is not a directory.")
        if not os.access(self.dir, os.R_OK | os.X_OK):
            raise UsageError(f"{where} cannot be read by user {whoami()}. Fix its permissions "
                             "or run as the service user.")
        if writable and not os.access(self.dir, os.W_OK):
            raise UsageError(
                f"{where} is not writable by user {whoami()}, so nothing was changed. Run as "
                "the user that owns it (e.g. `sudo -u weltklassebot ...`) or fix its "
                "permissions."
            )

    # ---- reading ---------------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        """Snapshots, oldest first (the time-stamp prefix sorts chronologically)."""
        return list_entries(self.dir)

    def entry(self, file: str) -> Entry | None:
        return entry_at(self.dir, file)

    def latest(self) -> LatestState:
        return read_latest(self.dir)

    def history(self) -> list[dict[str, Any]]:
        return read_history(self.dir)

    # ---- locking ---------------------------------------------------------------------------

    def locked(self, timeout_s: float) -> contextlib.AbstractContextManager[None]:
        return snapshot_lock(self.dir, timeout_s, command=self.command, clock=self.clock,
                             on_wait=self.on_wait)

    # ---- maintenance under the lock --------------------------------------------------------

    def _clean_leftovers(self) -> tuple[list[str], list[Quarantined]]:
        """Clear what an interrupted command left.

        ``.tmp-`` files are this program's own unfinished work (copies whose source still
        exists, links never swapped in) and are removed. A sidecar whose snapshot is gone may
        also mean a snapshot was removed by hand, so it is kept in ``quarantine/``.
        """
        removed: list[str] = []
        moved: list[Quarantined] = []
        for child in sorted(self.dir.iterdir(), key=lambda p: p.name):
            name = child.name
            if name.startswith(TMP_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    child.unlink()
                removed.append(name)
            elif is_orphan_sidecar(self.dir, name):
                moved.append(move_to_quarantine(self.dir, name, "a sidecar whose snapshot is "
                                                "gone (an interrupted promote or prune, or a "
                                                "snapshot removed by hand)", self.clock))
        if removed:
            fsync_dir(self.dir)
        return removed, moved

    def _append_history(self, change: Change) -> None:
        append_history(self.dir, change, clock=self.clock, command=self.command)

    def _record_move(self, change: Change, before: LatestState) -> None:
        """Record a change of ``latest.parquet`` from ``before``, saying what was there."""
        if before.broken:
            change.notes.append(f"before: {before.describe()}")
        self._append_history(change)

    def _start(self, *, clear_latest: bool) -> tuple[list[str], list[Quarantined]]:
        """Under the lock: clear leftovers, repair the history, reconcile it with the link.

        With ``clear_latest`` (promote, rollback: commands that replace the link), anything
        but a link at ``latest.parquet`` is moved to ``quarantine/`` first, never replaced.
        Everything moved is recorded in a ``repair`` record before the command's own record.
        """
        notes: list[str] = []
        removed, moved = self._clean_leftovers()
        if removed:
            notes.append("removed unfinished work of an interrupted command: "
                         + ", ".join(removed))
        history_notes, history_moved, restart = repair_history(self.dir, clock=self.clock)
        notes.extend(history_notes)
        moved.extend(history_moved)
        if clear_latest:
            state = self.latest()
            if state.kind in (REGULAR_FILE, NOT_A_FILE):
                moved.append(move_to_quarantine(self.dir, LATEST, state.describe(), self.clock))
        for item in moved:
            notes.append(item.describe())
        if moved or restart is not None:
            details: dict[str, Any] = {}
            if restart is not None:
                details["restarted_from"] = restart
            action = "history_restart" if restart is not None else "repair"
            self._append_history(Change(action=action, old=None, new=None, quarantined=moved,
                                        notes=list(notes), details=details))
        notes.extend(reconcile(self.dir, clock=self.clock, command=self.command))
        return notes, moved

    # ---- promote ---------------------------------------------------------------------------

    def promote(self, src: Path, *, name: str | None, timeout_s: float) -> Change:
        from weltklassebot.data.reader import open_snapshot
        from weltklassebot.data.schema import KIND_BARS

        self.require_dir(writable=True)
        src = Path(src)
        snapshot = open_snapshot(src)
        if snapshot.kind != KIND_BARS:
            raise UnusableInput(
                f"snapshot {src} holds trade ticks (ts, price, size, side), but the snapshot "
                "directory serves OHLCV bars to backtests and the live service. Promote a bars "
                "snapshot (aggregate the trades into bars first)."
            )
        if name is None:
            name = snapshot.meta.name if snapshot.meta is not None and snapshot.meta.name else None
        if name is None:
            stem = src.stem
            match = SNAPSHOT_RE.match(src.name)
            stem = match.group(2) if match else stem
            if stem == "latest":
                target = src.resolve()
                match = SNAPSHOT_RE.match(target.name)
                stem = match.group(2) if match else target.stem
            name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.") or "snapshot"
        check_name(name)
        size = src.stat().st_size
        with self.locked(timeout_s):
            notes, moved = self._start(clear_latest=True)
            free = shutil.disk_usage(self.dir).free
            if free < size + FREE_SPACE_MARGIN:
                raise RuntimeFailure(
                    f"not enough free space in {self.dir}: promoting {src} needs "
                    f"{_mib(size + FREE_SPACE_MARGIN)} and {_mib(free)} is free; nothing was "
                    "changed. Free space (e.g. `python -m cli snapshot prune --keep 3`) and try "
                    "again."
                )
            fault_point("space_checked")
            state = self.latest()
            entries = self.entries()
            created = self.clock.now_ns() // 1000 * 1000
            if entries and created <= entries[-1].created_ns:
                created = entries[-1].created_ns + 1000
                notes.append("the clock is behind the newest snapshot's time; named 1 us after it")
            final = snapshot_file_name(created, name)
            tmp = self.dir / f"{TMP_PREFIX}{final}"
            try:
                sha = copy_with_hash(src, tmp)
                adopt_directory_owner(tmp, self.dir)
                fault_point("copied")
                report = validate_copy(src, tmp)
                fault_point("validated")
                current = state.entry
                if current is not None and current.recorded_sha256() == sha:
                    tmp.unlink()
                    return Change(action="promote", old=ref(current), new=ref(current),
                                  changed=False, quarantined=moved,
                                  notes=[*notes, f"{src} has the same bytes as the current "
                                         f"latest snapshot {current.file}; nothing changed"])
                os.chmod(tmp, 0o444)
                fsync_file(tmp)
                fault_point("file_synced")
                sidecar_tmp = self.dir / f"{TMP_PREFIX}{final}{SIDECAR}"
                write_sidecar(sidecar_tmp, sha, final)
                adopt_directory_owner(sidecar_tmp, self.dir)
                fault_point("sidecar_written")
                os.replace(sidecar_tmp, self.dir / (final + SIDECAR))
                fault_point("sidecar_renamed")
                os.replace(tmp, self.dir / final)
                fsync_dir(self.dir)
                fault_point("renamed")
            except OSError as exc:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise RuntimeFailure(f"promoting {src} into {self.dir} failed: "
                                     f"{exc.strerror or exc}. latest.parquet was not changed."
                                     ) from exc
            except BaseException:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise
            swap_latest(self.dir, final, "")
            new_entry = self.entry(final)
            change = Change(
                action="promote", old=_old_ref(state), new=ref(new_entry, sha), notes=notes,
                quarantined=moved, details={"source": str(src.resolve()), "rows": report.rows,
                         "validation_warnings": list(report.warnings)},
            )
            self._record_move(change, state)
            fault_point("history_written")
            return change

    # ---- rollback --------------------------------------------------------------------------

    def resolve_file(self, to: str) -> Entry:
        candidate = Path(to)
        if candidate.name == LATEST:
            raise UsageError("--to must name a snapshot file, not latest.parquet.")
        if candidate.parent not in (Path("."), Path("")):
            try:
                inside = candidate.resolve().parent == self.dir.resolve()
            except OSError:
                inside = False
            if not inside:
                raise UsageError(f"{to} is not in the snapshot directory {self.dir}. Promote it "
                                 "first with `python -m cli snapshot promote`.")
        entry = self.entry(candidate.name)
        if entry is None:
            names = [e.file for e in self.entries()][-5:]
            raise UsageError(f"no snapshot {candidate.name} in {self.dir}. Newest snapshots: "
                             f"{', '.join(names) or 'none'} (`python -m cli snapshot list`).")
        return entry

    def rollback(self, *, to: str | None, timeout_s: float) -> Change:
        self.require_dir(writable=True)
        with self.locked(timeout_s):
            before = self.latest()
            if to is None and before.entry is None and not (
                    before.kind == MISSING and before.target is not None
                    and SNAPSHOT_RE.match(os.path.basename(before.target))):
                raise UsageError(
                    f"{before.describe()}, so there is no 'previous' snapshot; nothing was "
                    "changed. Name the one to serve with --to FILE (see `python -m cli "
                    "snapshot verify` for the intact ones)."
                )
            if to is not None:
                self.resolve_file(to)  # refuse an unknown name before changing anything
            notes, moved = self._start(clear_latest=True)
            state = self.latest()
            if to is not None:
                target = self.resolve_file(to)
            else:
                current = (state.entry.file if state.entry is not None
                           else os.path.basename(str(state.target)))
                older = [e for e in self.entries() if e.file < current]
                if not older:
                    raise UsageError(
                        f"latest.parquet points to {state.target}, the oldest snapshot in "
                        f"{self.dir}; there is nothing older to roll back to."
                    )
                target = older[-1]
            check = check_entry(target)
            if not check.ok:
                raise VerdictFailed(
                    f"refusing to roll back to {check.problem()}; latest.parquet was not "
                    "changed. Pick another snapshot with --to (`python -m cli snapshot verify` "
                    "lists the intact ones)."
                )
            if state.entry is not None and state.entry.file == target.file:
                return Change(action="rollback", old=ref(state.entry), new=ref(target),
                              changed=False, quarantined=moved,
                              notes=[*notes, f"latest.parquet already points to {target.file}"])
            swap_latest(self.dir, target.file, "rollback_")
            change = Change(action="rollback", old=_old_ref(state), new=ref(target, check.actual),
                            notes=notes, quarantined=moved)
            self._record_move(change, state)
            fault_point("rollback_history_written")
            return change

    # ---- prune -----------------------------------------------------------------------------

    def prune(self, *, keep: int, timeout_s: float, dry_run: bool = False) -> Change:
        """Delete verified snapshots older than latest beyond the newest ``keep`` verified ones.

        Only snapshots whose bytes match their sidecar count as kept; one that fails its check
        is neither counted nor deleted (it is reported; ``snapshot repair`` quarantines it).
        """
        check_keep(keep)
        self.require_dir(writable=not dry_run)
        with self.locked(timeout_s) if not dry_run else contextlib.nullcontext():
            state = self.latest()
            if state.entry is None:
                fix = ("Promote a snapshot or roll back to one (`python -m cli snapshot rollback "
                       "--to FILE`) first." if not state.exists else
                       "Repair it with `python -m cli snapshot rollback` (to the previous "
                       "snapshot) or `rollback --to FILE`; anything found in its place is "
                       "moved to quarantine/, not deleted.")
                error = UsageError if not state.exists else VerdictFailed
                raise error(f"{state.describe()}, so prune cannot tell which snapshots are in "
                            f"use; nothing was deleted. {fix}")
            current = check_entry(state.entry)
            if not current.ok:
                raise VerdictFailed(
                    f"latest.parquet points to {current.problem()}; prune deleted nothing, so "
                    "that every older snapshot stays available. Roll back to an intact "
                    "snapshot first (`python -m cli snapshot verify`, then `rollback --to "
                    "FILE`)."
                )
            notes, moved = ([], []) if dry_run else self._start(clear_latest=False)
            state = self.latest()
            if state.entry is None:  # changed between the look and the lock
                raise VerdictFailed(f"{state.describe()}; nothing was deleted. Run `python -m "
                                    "cli snapshot verify`.")
            entries = self.entries()
            checks = {e.file: check_entry(e) for e in entries if e.file < state.entry.file}
            verified = [e for e in entries if e.file in checks and checks[e.file].ok]
            unverified = [checks[e.file] for e in entries
                          if e.file in checks and not checks[e.file].ok]
            doomed = to_remove(verified, state.entry, keep)
            removed = [{"file": e.file, "sha256": checks[e.file].actual} for e in doomed]
            for check in unverified:
                notes.append(f"not counted and not deleted: {check.problem()}; `python -m cli "
                             "snapshot repair` moves it to quarantine/")
            change = Change(action="prune", old=ref(state.entry), new=ref(state.entry),
                            changed=bool(doomed) and not dry_run, removed=removed, notes=notes,
                            quarantined=moved,
                            details={"keep": keep, "kept": len(verified) - len(doomed),
                                     "unverified": [c.file for c in unverified],
                                     "dry_run": dry_run})
            if dry_run or not doomed:
                return change
            for number, entry in enumerate(doomed):
                entry.path.unlink()
                with contextlib.suppress(FileNotFoundError):
                    entry.sidecar.unlink()
                fault_point(f"prune_removed_{number}")
            fsync_dir(self.dir)
            self._append_history(change)
            return change

    # ---- verify and repair -----------------------------------------------------------------

    def verify(self) -> dict[str, Any]:
        return verify_directory(self)

    def repair_plan(self) -> list[str]:
        """What ``repair`` would do, read-only (printed before asking for confirmation)."""
        self.require_dir(writable=False)
        plan: list[str] = []
        result = self.verify()
        state = self.latest()
        for child in sorted(self.dir.iterdir(), key=lambda p: p.name):
            if child.name.startswith(TMP_PREFIX):
                plan.append(f"remove {child.name} (unfinished work of an interrupted command)")
            elif is_orphan_sidecar(self.dir, child.name):
                plan.append(f"move {child.name} to quarantine/ (a sidecar without its snapshot)")
        from weltklassebot.data.catalog.history import check_history

        chain = check_history(self.dir)
        if chain.problems == [chain.torn]:
            plan.append(f"cut the torn end of history.jsonl into quarantine/ ({chain.torn})")
        elif chain.problems:
            plan.append("move history.jsonl and history.head to quarantine/ and start a new "
                        "history whose first record names them (" + "; ".join(chain.problems)
                        + ")")
        if state.kind in (REGULAR_FILE, NOT_A_FILE):
            plan.append(f"move latest.parquet to quarantine/ ({state.describe()})")
        for check in self._damaged():
            plan.append(f"move {check.file} and its sidecar to quarantine/ ({check.problem()})")
        if not plan and not result["ok"]:
            plan.append("nothing that repair may change")
        return plan

    def _damaged(self) -> list[Check]:
        """Snapshots that fail their check, except the one ``latest.parquet`` serves."""
        state = self.latest()
        in_use = state.entry.file if state.entry is not None else None
        checks = (check_entry(e) for e in self.entries() if e.file != in_use)
        return [c for c in checks if not c.ok]

    def repair(self, *, timeout_s: float) -> Change:
        """Quarantine whatever makes ``verify`` fail, except the snapshot in use; delete nothing.

        Repairs the history (torn bytes, damage), moves a non-link ``latest.parquet`` and every
        snapshot that fails its check (with its sidecar) to ``quarantine/``, and records it all.
        What only an operator can decide (which snapshot to serve) is left to ``rollback``.
        """
        from weltklassebot.data.catalog.history import HISTORY

        self.require_dir(writable=True)
        with self.locked(timeout_s):
            notes, moved = self._start(clear_latest=True)
            extra: list[Quarantined] = []
            for check in self._damaged():
                reason = check.problem() or check.status
                extra.append(move_to_quarantine(self.dir, check.file, reason, self.clock))
                if os.path.lexists(self.dir / (check.file + SIDECAR)):
                    extra.append(move_to_quarantine(self.dir, check.file + SIDECAR,
                                                    f"sidecar of {check.file}", self.clock))
            notes.extend(item.describe() for item in extra)
            if extra or not (self.dir / HISTORY).exists():
                why = [item.describe() for item in extra] or [
                    "no history existed; this record starts one"]
                self._append_history(Change(action="repair", old=None, new=None,
                                            quarantined=extra, notes=why))
            state = self.latest()
            return Change(action="repair", old=ref(state.entry), new=ref(state.entry),
                          changed=bool(moved or extra or notes), notes=notes,
                          quarantined=[*moved, *extra])

    # ---- describe --------------------------------------------------------------------------

    def describe(self, entry: Entry) -> dict[str, Any]:
        """Facts for ``list``: rows, symbols, time range, recorded SHA-256 (from the footer)."""
        info: dict[str, Any] = {
            "file": entry.file, "name": entry.name, "created": ns_to_iso(entry.created_ns),
            "size": entry.path.stat().st_size, "sha256": entry.recorded_sha256(),
        }
        try:
            info.update(footer_facts(entry.path))
        except Exception as exc:  # list shows an unreadable file, it never fails on one
            info["error"] = f"unreadable: {exc}"
        return info


def _old_ref(state: LatestState) -> dict[str, Any] | None:
    """What ``latest.parquet`` was before a swap, for the history (a broken link included)."""
    if state.entry is not None:
        return ref(state.entry)
    if state.target is not None:
        return {"file": state.target, "sha256": None, "found": state.kind}
    return None


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"
