"""``history.jsonl``: the append-only, hash-chained record of every change to the directory.

Each line is a JSON record carrying the SHA-256 of the line before it, so an edited or truncated
history is detected by ``verify``. When ``latest.parquet`` does not match the last record (a
command killed between the swap and its record, or a hand-made change), the next mutating command
appends a ``reconcile`` record first.
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
from weltklassebot.data.catalog.naming import Entry
from weltklassebot.fsutil import fsync_dir

HISTORY = "history.jsonl"
HISTORY_SCHEMA_VERSION = 1


@dataclass
class Change:
    """Result of promote / rollback / prune, also the history record's content."""

    action: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    changed: bool = True
    removed: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        return {"action": self.action, "changed": self.changed, "old": self.old, "new": self.new,
                "removed": self.removed, "notes": self.notes, **self.details}


def ref(entry: Entry | None, sha: str | None = None) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {"file": entry.file, "sha256": sha if sha is not None else entry.recorded_sha256()}


def read_history(directory: Path) -> list[dict[str, Any]]:
    """Every record of ``directory/history.jsonl``; a damaged line reads as ``unreadable``."""
    path = directory / HISTORY
    if not path.exists():
        return []
    records: list[dict[str, Any]] = []
    with path.open("r", encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                records.append({"line": number, "action": "unreadable", "raw": line[:200]})
                continue
            records.append(record)
    return records


def append_history(directory: Path, change: Change, *, clock: Clock, command: str) -> None:
    """Append ``change`` as a record chained to the line before it, durably."""
    path = directory / HISTORY
    previous = _last_line(path)
    record: dict[str, Any] = {
        "schema_version": HISTORY_SCHEMA_VERSION,
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
    record.update({k: v for k, v in change.details.items() if k not in record})
    record["prev_sha256"] = (hashlib.sha256(previous.encode()).hexdigest()
                             if previous is not None else None)
    line = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(directory)


def reconcile(directory: Path, *, clock: Clock, command: str) -> list[str]:
    """Make history explain the current ``latest.parquet`` (after an interrupted command)."""
    state = read_latest(directory)
    current = state.target if state.is_symlink else None
    records = [r for r in read_history(directory) if r.get("action") != "unreadable"]
    recorded = None
    for record in reversed(records):
        if "new" in record and record.get("action") != "prune":
            new = record.get("new")
            recorded = new.get("file") if isinstance(new, dict) else None
            break
    if current == recorded or (current is None and not records):
        return []
    entry = state.entry
    change = Change(
        action="reconcile",
        old={"file": recorded} if recorded else None,
        new={"file": current, "sha256": entry.recorded_sha256() if entry else None}
        if current else None,
        details={"note": "latest.parquet did not match the last history record (an "
                         "interrupted command or a change made by hand); recorded as found"},
    )
    append_history(directory, change, clock=clock, command=command)
    return [f"history reconciled: latest.parquet points to {current or 'nothing'}, the last "
            f"record said {recorded or 'nothing'} (an interrupted command or a hand-made "
            "change)"]


def verify_chain(directory: Path) -> list[str]:
    """Problems with the hash chain of ``directory/history.jsonl`` (edits, truncation)."""
    path = directory / HISTORY
    if not path.exists():
        return []
    problems: list[str] = []
    previous: str | None = None
    with path.open("r", encoding="utf-8") as fh:
        for number, raw in enumerate(fh, start=1):
            line = raw.rstrip("\n")
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                problems.append(f"{HISTORY} line {number} is not valid JSON (damaged)")
                previous = line
                continue
            want = hashlib.sha256(previous.encode()).hexdigest() if previous is not None \
                else None
            if record.get("prev_sha256") != want:
                problems.append(f"{HISTORY} line {number} does not chain to the line before "
                                "it: the history was edited or truncated")
            previous = line
    return problems


def mismatch(directory: Path) -> str | None:
    """A warning when ``latest.parquet`` is not where the last history record left it."""
    state = read_latest(directory)
    current = state.target if state.is_symlink else None
    records = [r for r in read_history(directory)
               if r.get("action") not in ("unreadable", "prune")]
    if not records:
        return None
    new = records[-1].get("new")
    recorded = new.get("file") if isinstance(new, dict) else None
    if recorded != current:
        return (f"latest.parquet points to {current or 'nothing'} but the last history record "
                f"says {recorded or 'nothing'}; the next promote, rollback or prune records "
                "the difference")
    return None


def _last_line(path: Path) -> str | None:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            end = fh.tell()
            if end == 0:
                return None
            block = min(end, 1 << 16)
            while True:
                fh.seek(end - block)
                data = fh.read(block)
                stripped = data.rstrip(b"\n")
                if b"\n" in stripped or block == end:
                    return stripped.rsplit(b"\n", 1)[-1].decode("utf-8")
                block = min(end, block * 4)
    except FileNotFoundError:
        return None
