"""Errors of the state store, each mapped to its DESIGN section 3 exit status.

::

    StoreCorrupt        (VerdictFailed, exit 1)   damaged record anywhere but the torn tail
    StoreUnusable       (UnusableInput, exit 2)   directory missing, not a directory, unreadable
    StoreIncompatible   (UnusableInput, exit 2)   future schema version or unknown record kind
    StoreWriteError     (RuntimeFailure, exit 3)  ENOSPC, EACCES, EROFS, EIO, ... while writing
    StoreLocked         (RuntimeFailure, exit 3)  another process holds the store's lock

Every message is one paragraph naming the file, the line and sequence number where they are known,
and what the operator does next.
"""

from __future__ import annotations

import errno as errno_codes
import os
from pathlib import Path
from typing import Any

from weltklassebot.errors import RuntimeFailure, UnusableInput, VerdictFailed
from weltklassebot.state.codec import SCHEMA_VERSION


def repair_command(directory: Path) -> str:
    """The exact command that quarantines a store's damaged records (docs/state-store.md)."""
    return f"python -m cli state repair {directory}"


def repair_hint(directory: Path) -> str:
    """Return the operator's repair path for a damaged store."""
    return (
        f"Stop the service, then run `{repair_command(directory)}`: it shows exactly which "
        "records it will quarantine (with a backup inside the state directory) and the state "
        "that results, and asks before it changes anything; intact records are kept "
        "(docs/state-store.md, Repair)."
    )


class StoreCorrupt(VerdictFailed):
    """Acknowledged records are missing or damaged; start-up must stop."""

    def __init__(
        self, path: Path, line: int, seq: int, reason: str, *, more: int = 0,
        problems: tuple[Any, ...] = (),
    ) -> None:
        self.path = path
        self.line = line
        self.seq = seq
        self.reason = reason
        self.problems = problems
        also = f" ({more} more problem(s): `state verify` lists them all)" if more else ""
        super().__init__(
            f"state store {path.parent if path.name else path}: {path.name} line {line} "
            f"(sequence {seq}) is corrupt: {reason}{also}. The store refuses to open rather "
            "than run on a state it cannot vouch for. " + repair_hint(path.parent)
        )

    @classmethod
    def of(cls, directory: Path, problems: tuple[Any, ...]) -> StoreCorrupt:
        """The error for a survey's problems (``recovery.Problem``), naming the first."""
        first = problems[0]
        return cls(
            first.path, first.line, first.seq, first.reason, more=len(problems) - 1,
            problems=problems,
        )


class StoreUnusable(UnusableInput):
    """The state directory cannot be used at all (missing, not a directory, unreadable)."""

    def __init__(self, directory: Path, problem: str, action: str) -> None:
        self.directory = directory
        super().__init__(f"state store {directory}: {problem}. {action}")


class StoreIncompatible(UnusableInput):
    """A well-formed record this release cannot interpret: newer schema or unregistered kind."""

    def __init__(self, path: Path, line: int, seq: int | None, problem: str, action: str) -> None:
        self.path = path
        self.line = line
        self.seq = seq
        where = f"{path.name} line {line}" + (f" (sequence {seq})" if seq is not None else "")
        super().__init__(f"state store {path.parent}: {where} {problem}. {action}")

    @classmethod
    def schema_too_new(cls, path: Path, line: int, version: int) -> StoreIncompatible:
        """Return the error for a record written with a newer schema version than this reads."""
        return cls(
            path,
            line,
            None,
            f"was written with schema version {version}, newer than version "
            f"{SCHEMA_VERSION} that this release reads",
            f"Use a release that reads schema version {version} (the one that wrote the store); "
            "the record is not damaged, so do not repair it.",
        )


class StoreWriteError(RuntimeFailure):
    """Writing the store failed; callers move risk to HALTED and retry on the next record.

    Nothing already written is damaged: the segment is cut back to its last good length and the
    failed record's sequence number is not consumed.
    """

    def __init__(self, operation: str, path: Path, exc: OSError, *, seq: int | None) -> None:
        self.operation = operation
        self.path = path
        self.errno = exc.errno
        self.seq = seq
        code = errno_codes.errorcode.get(exc.errno or 0, "EUNKNOWN")
        detail = exc.strerror or str(exc)
        lost = "" if seq is None else f" and sequence {seq} was not used"
        super().__init__(
            f"state store {path.parent}: could not {operation} {path.name}: {code} ({detail}). "
            f"Records already written are intact{lost}; trading stays HALTED until the store "
            f"can write again. {_write_action(exc.errno, path.parent)}"
        )


class StoreLocked(RuntimeFailure):
    """Another process holds the store's lock: one writer per state directory."""

    def __init__(self, directory: Path, holder: str) -> None:
        self.directory = directory
        self.holder = holder
        super().__init__(
            f"state store {directory}: the store is locked by {holder}. Only one process may "
            "write a state directory: stop the other process (e.g. `systemctl stop weltklassebot`) "
            "or point this one at another state directory."
        )


def _write_action(code: int | None, directory: Path) -> str:
    if code in (errno_codes.ENOSPC, errno_codes.EDQUOT):
        return (
            f"Free space on the volume holding {directory} (`df -h {directory}`); "
            "the next record retries the write."
        )
    if code in (errno_codes.EACCES, errno_codes.EPERM):
        return (
            f"Give the service user write access to {directory} and its files "
            "(`ls -ln` shows the owner); the next record retries the write."
        )
    if code == errno_codes.EROFS:
        return (
            f"The filesystem holding {directory} is read-only: check `dmesg` for disk errors and "
            "remount it read-write; the next record retries the write."
        )
    return (
        f"Check the disk holding {directory} (`dmesg`, `df -h`); the next record retries the write."
    )


def describe_os_error(exc: OSError) -> str:
    """Return ``ENOENT (No such file or directory)`` style text for messages."""
    code = errno_codes.errorcode.get(exc.errno or 0, "EUNKNOWN")
    return f"{code} ({exc.strerror or os.strerror(exc.errno or 0)})"
