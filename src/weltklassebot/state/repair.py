"""Cut a damaged store back to a sequence number, keeping a backup of everything removed.

``truncate_at(directory, seq, stamp)`` removes the record with sequence ``seq`` and every record
after it, so the last record kept is ``seq - 1``. Before anything changes it copies the segment it
cuts into ``repair-backup-<seq>-<stamp>/`` inside the state directory and moves every later
segment there, with a ``repair.json`` that lists each file, its size and SHA-256. Segments are
moved newest first, so a crash mid-repair leaves a shorter but consistent store; the store is
verified afterwards. The repair holds the store's lock: the service must be stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from weltklassebot.errors import UsageError
from weltklassebot.state.codec import (
    CHECKPOINT_KIND,
    LineDefect,
    SchemaTooNew,
    decode_line,
)
from weltklassebot.state.errors import StoreIncompatible, StoreUnusable, describe_os_error
from weltklassebot.state.fileops import FileOps
from weltklassebot.state.lock import StoreLock
from weltklassebot.state.recovery import RecoveryResult, recover
from weltklassebot.state.segment import BACKUP_PREFIX, SegmentRef, iter_lines, list_directory


@dataclass(frozen=True, slots=True)
class BackedUpFile:
    """A segment the repair changed: ``truncated`` (copied, then cut) or ``moved`` whole."""

    name: str
    action: str
    original_bytes: int
    kept_bytes: int
    removed_lines: int
    sha256: str


@dataclass(frozen=True, slots=True)
class RepairResult:
    """What the repair cut, where the backup is, and the store as verified afterwards."""

    directory: Path
    truncate_at: int
    backup: Path
    files: tuple[BackedUpFile, ...]
    after: RecoveryResult

    @property
    def removed_lines(self) -> int:
        """Lines (records, or damaged lines) moved out of the store."""
        return sum(f.removed_lines for f in self.files)


@dataclass(frozen=True, slots=True)
class _Cut:
    index: int
    offset: int


def truncate_at(
    directory: Path, seq: int, stamp: str, *, ops: FileOps | None = None
) -> RepairResult:
    """Remove the record ``seq`` and everything after it from the store in ``directory``.

    Parameters
    ----------
    directory
        The state directory (the service must be stopped).
    seq
        First sequence number to remove; the store then ends at ``seq - 1``.
    stamp
        Text for the backup folder's name, normally the UTC time of the repair.

    Raises
    ------
    UsageError
        ``seq`` would keep a damaged record, remove every checkpoint, or cut nothing.
    StoreLocked
        The service (or another repair) holds the store.
    """
    ops = ops or FileOps()
    lock = StoreLock.acquire(directory, 0o640)
    try:
        if not lock.held:
            raise StoreUnusable(
                directory,
                "the state directory cannot be locked for repair (read-only or no permission)",
                "Run the repair as the service user on a writable filesystem.",
            )
        segments = list_directory(directory).segments
        cut = _find_cut(directory, segments, seq)
        backup = _backup_directory(directory, seq, stamp)
        files = _back_up_and_cut(directory, segments, cut, backup, seq, ops)
    finally:
        lock.release()
    return RepairResult(directory, seq, backup, files, recover(directory, kinds=None))


def _find_cut(directory: Path, segments: tuple[SegmentRef, ...], seq: int) -> _Cut:
    if not segments:
        raise UsageError(f"state store {directory}: the store holds no segment; nothing to cut.")
    if seq < segments[0].first_seq:
        raise UsageError(
            f"state store {directory}: sequence {seq} is older than the oldest retained record "
            f"({segments[0].first_seq}); choose a sequence number from `state verify`."
        )
    expected = segments[0].first_seq
    for index, ref in enumerate(segments):
        if ref.first_seq != expected and expected < seq:
            raise _damaged(directory, ref.path, 1, expected, seq, "a segment is missing")
        if expected == seq:
            return _checked_cut(directory, index, 0)
        first = True
        for line in iter_lines(ref.path):
            if expected == seq:
                return _checked_cut(directory, index, line.offset)
            try:
                if not line.complete:
                    raise LineDefect("the line has no newline")
                record = decode_line(line.raw)
            except LineDefect as defect:
                reason = defect.reason
                raise _damaged(directory, ref.path, line.number, expected, seq, reason) from None
            except SchemaTooNew as newer:
                raise StoreIncompatible.schema_too_new(
                    ref.path, line.number, newer.version
                ) from None
            if record.seq != expected or (first and record.kind != CHECKPOINT_KIND):
                raise _damaged(
                    directory, ref.path, line.number, expected, seq, "out of order or misplaced"
                )
            first = False
            expected += 1
        if first and index < len(segments) - 1:
            raise _damaged(directory, ref.path, 1, expected, seq, "empty segment")
    raise UsageError(
        f"state store {directory}: the store ends at sequence {expected - 1}, so there is nothing "
        f"to cut at {seq}; `state verify` names the sequence number to cut at."
    )


def _checked_cut(directory: Path, index: int, offset: int) -> _Cut:
    if index == 0 and offset == 0:
        raise UsageError(
            f"state store {directory}: cutting there would remove every checkpoint and leave no "
            "state to recover. Choose a later sequence number, or move the whole directory aside "
            "and start afresh (or restore it from backup)."
        )
    return _Cut(index, offset)


def _damaged(
    directory: Path, path: Path, line: int, expected: int, seq: int, reason: str
) -> UsageError:
    # Only reached for damage before the cut point: the cut would keep it.
    return UsageError(
        f"state store {directory}: {path.name} line {line} (sequence {expected}) is damaged "
        f"({reason}), before sequence {seq}; cutting at {seq} would keep it. "
        f"Run the repair with --truncate-at {expected}."
    )


def _backup_directory(directory: Path, seq: int, stamp: str) -> Path:
    base = directory / f"{BACKUP_PREFIX}{seq}-{stamp}"
    candidate, attempt = base, 1
    while True:
        try:
            candidate.mkdir(mode=0o750)
        except FileExistsError:
            attempt += 1
            candidate = base.with_name(f"{base.name}-{attempt}")
            continue
        except OSError as exc:
            raise StoreUnusable(
                directory,
                f"the backup folder {candidate.name} cannot be created: {describe_os_error(exc)}",
                "Free space or fix permissions, then run the repair again; nothing was changed.",
            ) from None
        return candidate


def _back_up_and_cut(
    directory: Path,
    segments: tuple[SegmentRef, ...],
    cut: _Cut,
    backup: Path,
    seq: int,
    ops: FileOps,
) -> tuple[BackedUpFile, ...]:
    files: list[BackedUpFile] = []
    moved = segments[cut.index + (1 if cut.offset else 0) :]
    try:
        if cut.offset:
            ref = segments[cut.index]
            copy = backup / ref.path.name
            with open(ref.path, "rb") as source:
                _write_private(copy, source.read())
            files.append(_describe(copy, "truncated", cut.offset))
        files.extend(_describe(ref.path, "moved", 0) for ref in moved)
        manifest = {
            "truncate_at": seq,
            "last_kept_seq": seq - 1,
            "files": [asdict(f) for f in files],
            "restore": "stop the service, move the store's segments aside, copy these back",
        }
        text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
        _write_private(backup / "repair.json", text.encode("utf-8"))
        ops.fsync_dir(backup)
        for ref in reversed(moved):  # newest first: the store stays a contiguous prefix
            ops.rename(ref.path, backup / ref.path.name)
            ops.fsync_dir(directory)
        ops.fsync_dir(backup)
        if cut.offset:
            ops.truncate_path(segments[cut.index].path, cut.offset)
    except OSError as exc:
        raise StoreUnusable(
            directory,
            f"the repair stopped part-way: {describe_os_error(exc)}",
            f"Everything removed so far is in {backup.name}; fix the cause and run the repair "
            "again (it refuses nothing that is already done).",
        ) from None
    return tuple(files)


def _describe(path: Path, action: str, kept: int) -> BackedUpFile:
    data = path.read_bytes()
    removed = data[kept:]
    lines = removed.count(b"\n") + (1 if removed and not removed.endswith(b"\n") else 0)
    return BackedUpFile(
        name=path.name,
        action=action,
        original_bytes=len(data),
        kept_bytes=kept,
        removed_lines=lines,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _write_private(path: Path, data: bytes) -> None:
    # Backups hold the same data as the store: same permissions (0640), durable before use.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
    try:
        FileOps().write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
