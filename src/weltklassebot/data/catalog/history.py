"""``history.jsonl``: the append-only, hash-chained record of every change to the directory.

Each line is a JSON record carrying its sequence number (``seq``, the line number) and the SHA-256
of the line before it (``prev_sha256``), so an edited, inserted or removed line breaks the chain.
Removing whole lines from the *end* keeps the chain intact, so the chain's head lives in a second
file, ``history.head`` (the last ``seq`` and the SHA-256 of the last line), replaced atomically and
fsync'd after every append: a history shorter than its head was truncated.

Before appending, a mutating command (holding the directory lock) repairs the history:

- a torn final line (bytes after the last newline: a command died mid-append, or the file was cut)
  is completed if it is a whole record that chains, otherwise its bytes are written to
  ``quarantine/`` and cut, so the next record never lands on a torn line;
- any other damage (a broken chain, removed trailing lines, a missing or wrong head) cannot be
  undone, so the damaged history and head are moved to ``quarantine/`` and a new history starts
  with a ``history_restart`` record naming them, their SHA-256 and the problems found.

When ``latest.parquet`` does not match the last record (a command killed between the swap and its
record, or a hand-made change), the next mutating command appends a ``reconcile`` record.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weltklassebot.core.clock import Clock
from weltklassebot.core.timeutil import ns_to_iso
from weltklassebot.data.catalog.latest import read_latest
from weltklassebot.data.catalog.lock import whoami
from weltklassebot.data.catalog.naming import TMP_PREFIX, Entry
from weltklassebot.data.catalog.quarantine import (
    Quarantined,
    move_to_quarantine,
    write_to_quarantine,
)
from weltklassebot.fsutil import adopt_directory_owner, fsync_dir, write_and_sync

HISTORY = "history.jsonl"
HEAD = "history.head"
HISTORY_SCHEMA_VERSION = 2
HEAD_SCHEMA_VERSION = 1
MOVES = ("promote", "rollback", "reconcile")
"""Actions whose ``new`` says where ``latest.parquet`` points afterwards."""


@dataclass
class Change:
    """Result of promote / rollback / prune / repair, also the history record's content."""

    action: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    changed: bool = True
    removed: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    quarantined: list[Quarantined] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        return {"action": self.action, "changed": self.changed, "old": self.old, "new": self.new,
                "removed": self.removed, "notes": self.notes,
                "quarantined": [q.to_json_dict() for q in self.quarantined], **self.details}


def ref(entry: Entry | None, sha: str | None = None) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {"file": entry.file, "sha256": sha if sha is not None else entry.recorded_sha256()}


def _sha(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


@dataclass(frozen=True)
class _Scan:
    lines: list[bytes]
    """Complete lines, without their newline."""
    torn: bytes
    """Bytes after the last newline."""


def _scan(path: Path) -> _Scan | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    body, newline, torn = data.rpartition(b"\n")
    if not newline:
        return _Scan([], data)
    return _Scan(body.split(b"\n"), torn)


def read_history(directory: Path) -> list[dict[str, Any]]:
    """Every record of ``directory/history.jsonl``; a damaged line reads as ``unreadable``."""
    scan = _scan(directory / HISTORY)
    if scan is None:
        return []
    lines = scan.lines + ([scan.torn] if scan.torn else [])
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            record = None
        if not isinstance(record, dict):
            records.append({"line": number, "action": "unreadable",
                            "raw": line[:200].decode("utf-8", "replace")})
            continue
        records.append(record)
    return records


def read_head(directory: Path) -> tuple[dict[str, Any] | None, str | None]:
    """``history.head`` as ``(head, None)``, ``(None, None)`` if absent, or ``(None, problem)``."""
    try:
        text = (directory / HEAD).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{HEAD} cannot be read ({exc})"
    try:
        head = json.loads(text)
    except json.JSONDecodeError:
        head = None
    # Only the exact bytes this program writes are accepted, so any change to the head shows.
    if (not isinstance(head, dict) or set(head) != {"schema_version", "seq", "sha256"}
            or not isinstance(head["seq"], int) or isinstance(head["seq"], bool)
            or head["seq"] < 0 or _head_text(head["seq"], head["sha256"]) != text):
        return None, f"{HEAD} is damaged (it does not hold the history's last seq and SHA-256)"
    return head, None


def _head_text(seq: int, sha: object) -> str:
    return json.dumps({"schema_version": HEAD_SCHEMA_VERSION, "seq": seq, "sha256": sha},
                      sort_keys=True) + "\n"


@dataclass
class HistoryCheck:
    """What ``verify`` says about the history: problems fail it, warnings do not."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    lines: int = 0
    exists: bool = False
    torn: str | None = None
    """The torn-tail problem, if any (also in ``problems``)."""


def check_history(directory: Path) -> HistoryCheck:
    """The hash chain, sequence numbers, torn bytes, and the file against its recorded head."""
    result = HistoryCheck()
    scan = _scan(directory / HISTORY)
    head, head_problem = read_head(directory)
    if head_problem:
        result.problems.append(head_problem)
    if scan is None:
        if head is not None and head["seq"] > 0:
            result.problems.append(f"{HISTORY} is missing but {HEAD} records {head['seq']} "
                                   "line(s): the history was deleted")
        return result
    result.exists = True
    result.lines = len(scan.lines)
    previous: bytes | None = None
    versioned = False
    for number, line in enumerate(scan.lines, start=1):
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            record = None
        if not isinstance(record, dict):
            result.problems.append(f"{HISTORY} line {number} is not a valid record (damaged)")
            previous = line
            continue
        want = _sha(previous) if previous is not None else None
        if record.get("prev_sha256") != want:
            result.problems.append(f"{HISTORY} line {number} does not chain to the line before "
                                   "it: the history was edited, or lines were removed or "
                                   "inserted")
        if "seq" in record:
            versioned = True
            if record["seq"] != number:
                result.problems.append(f"{HISTORY} line {number} carries seq {record['seq']}: "
                                       "lines were removed or inserted before it")
        previous = line
    if scan.torn:
        result.torn = (
            f"{HISTORY} ends in {len(scan.torn)} byte(s) after its last complete line (a torn "
            "final line: a command was interrupted while appending, or the file was cut); the "
            "next promote, rollback or prune, or `snapshot repair`, moves them to quarantine/"
        )
        result.problems.append(result.torn)
    count = len(scan.lines)
    if head is None:
        if head_problem is None and versioned:
            result.problems.append(f"{HEAD} is missing, so removed trailing lines of {HISTORY} "
                                   "cannot be ruled out")
        elif head_problem is None and count:
            result.warnings.append(f"{HEAD} does not exist yet (history written by an older "
                                   "version): removed trailing lines are detectable once the "
                                   "next promote, rollback or prune records it")
        return result
    recorded = head["seq"]
    if count < recorded:
        result.problems.append(
            f"{HISTORY} has {count} complete line(s) but {HEAD} records {recorded}: the last "
            f"{recorded - count} record(s) were removed or cut (truncated history)")
    elif count == recorded:
        last = _sha(scan.lines[-1]) if count else None
        if last != head.get("sha256"):
            result.problems.append(f"{HISTORY} line {count} (the last) is not the one recorded "
                                   f"in {HEAD}: it was edited or replaced")
    elif count == recorded + 1 and (
            recorded == 0 or _sha(scan.lines[recorded - 1]) == head.get("sha256")):
        result.warnings.append(f"{HISTORY} line {count} is not yet recorded in {HEAD} (a "
                               "command was interrupted right after appending it); the next "
                               "promote, rollback or prune records it")
    else:
        result.problems.append(f"{HISTORY} has {count} line(s) but {HEAD} records {recorded} "
                               "ending in another line: lines were added or replaced")
    return result


def repair_history(directory: Path, *, clock: Clock) -> tuple[list[str], list[Quarantined],
                                                               dict[str, Any] | None]:
    """Make the history safe to append to (under the lock); nothing is deleted.

    Returns notes, what was moved to ``quarantine/``, and, if the history had to start over,
    what the new first record must say about the old one.
    """
    path = directory / HISTORY
    notes: list[str] = []
    moved: list[Quarantined] = []
    scan = _scan(path)
    check = check_history(directory)
    if scan is not None and scan.torn and check.problems == [check.torn]:
        # Only the tail is torn: everything acknowledged is intact, the torn bytes are not.
        if _completes_chain(scan):
            _append_bytes(directory, b"\n")
            notes.append(f"{HISTORY}: its last record lacked only its newline; completed it")
        else:
            kept = write_to_quarantine(
                directory, "history-torn.jsonl", scan.torn,
                f"{len(scan.torn)} torn byte(s) at the end of {HISTORY}",
                "a partial final line: a command was interrupted while appending, or the file "
                "was cut", clock)
            size = path.stat().st_size - len(scan.torn)
            fd = os.open(path, os.O_WRONLY)
            try:
                os.ftruncate(fd, size)
                os.fsync(fd)
            finally:
                os.close(fd)
            moved.append(kept)
            notes.append(f"{HISTORY} ended in a torn line: {kept.describe()}, then cut it")
        check = check_history(directory)
    if not check.problems:
        return notes, moved, None
    restart: dict[str, Any] = {"problems": check.problems, "lines": check.lines}
    for name, what in ((HISTORY, "history"), (HEAD, "history head")):
        if os.path.lexists(directory / name):
            sha = hashlib.sha256((directory / name).read_bytes()).hexdigest()
            item = move_to_quarantine(directory, name, f"damaged {what}: "
                                      + "; ".join(check.problems), clock)
            restart[name] = {"moved_to": item.to, "sha256": sha}
            moved.append(item)
    notes.append(f"the history was damaged ({'; '.join(check.problems)}); kept it in "
                 f"quarantine/ and started a new history whose first record names it")
    return notes, moved, restart


def _completes_chain(scan: _Scan) -> bool:
    """True if the torn bytes are a whole record chaining to the last complete line."""
    try:
        record = json.loads(scan.torn)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    if not isinstance(record, dict):
        return False
    want = _sha(scan.lines[-1]) if scan.lines else None
    return bool(record.get("prev_sha256") == want
                and record.get("seq", len(scan.lines) + 1) == len(scan.lines) + 1)


def _append_bytes(directory: Path, data: bytes) -> None:
    path = directory / HISTORY
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        write_and_sync(fd, data)
    finally:
        os.close(fd)
    if created:
        adopt_directory_owner(path, directory)
        fsync_dir(directory)


def _write_head(directory: Path, seq: int, last: bytes | None) -> None:
    """Replace ``history.head`` atomically: written, fsync'd, renamed, directory fsync'd."""
    text = _head_text(seq, _sha(last) if last is not None else None)
    tmp = directory / f"{TMP_PREFIX}{HEAD}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    adopt_directory_owner(tmp, directory)
    os.replace(tmp, directory / HEAD)
    fsync_dir(directory)


def append_history(directory: Path, change: Change, *, clock: Clock, command: str) -> None:
    """Append ``change`` as record ``seq``, chained to the line before it, then record the head.

    The caller holds the lock and has run ``repair_history``, so the file ends in a newline.
    """
    scan = _scan(directory / HISTORY)
    lines = scan.lines if scan is not None else []
    if scan is not None and scan.torn:
        raise RuntimeError(f"{HISTORY} ends in a torn line; repair_history must run first")
    previous = lines[-1] if lines else None
    record: dict[str, Any] = {
        "schema_version": HISTORY_SCHEMA_VERSION,
        "seq": len(lines) + 1,
        "when": ns_to_iso(clock.now_ns()),
        "who": whoami(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "command": command,
        "action": change.action,
        "old": change.old,
        "new": change.new,
    }
    if change.removed:
        record["removed"] = change.removed
    if change.quarantined:
        record["quarantined"] = [q.to_json_dict() for q in change.quarantined]
    if change.notes:
        record["notes"] = change.notes
    record.update({k: v for k, v in change.details.items() if k not in record})
    record["prev_sha256"] = _sha(previous) if previous is not None else None
    line = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    _append_bytes(directory, line + b"\n")
    _write_head(directory, len(lines) + 1, line)


def last_move(records: list[dict[str, Any]]) -> tuple[bool, str | None]:
    """``(found, file)``: where the last promote/rollback/reconcile left ``latest.parquet``."""
    for record in reversed(records):
        if record.get("action") in MOVES:
            new = record.get("new")
            return True, new.get("file") if isinstance(new, dict) else None
    return False, None


def reconcile(directory: Path, *, clock: Clock, command: str) -> list[str]:
    """Make history explain the current ``latest.parquet`` (after an interrupted command)."""
    state = read_latest(directory)
    current = state.target if state.is_symlink else None
    found, recorded = last_move(read_history(directory))
    if current == recorded:
        return []
    entry = state.entry
    change = Change(
        action="reconcile",
        old={"file": recorded} if recorded else None,
        new={"file": current, "sha256": entry.recorded_sha256() if entry else None}
        if current else None,
        details={"note": "latest.parquet did not match the last history record (an "
                         "interrupted command, a change made by hand, or a history that "
                         "started over); recorded as found: " + state.describe()},
    )
    append_history(directory, change, clock=clock, command=command)
    said = recorded or ("nothing" if found else "nothing (no record of latest.parquet)")
    return [f"history reconciled: {state.describe()}; the last record said {said}"]


def mismatch(directory: Path) -> str | None:
    """A warning when ``latest.parquet`` is not where the last history record left it."""
    state = read_latest(directory)
    current = state.target if state.is_symlink else None
    found, recorded = last_move(read_history(directory))
    if not found or recorded == current:
        return None
    return (f"{state.describe()}, but the last history record says {recorded or 'nothing'}; "
            "the next promote, rollback or prune records the difference")
