"""Repair a damaged store by quarantining exactly what is damaged, keeping a backup.

``plan_repair`` reads the store (``recovery.survey``) and works out, without changing anything,
what a repair removes and what store results:

- every damaged line, and every run of missing sequence numbers (a deleted segment, a newest
  segment cut short below the high-water mark), is replaced by one ``quarantined`` record that
  stands for those sequence numbers and says why, so the sequence stays contiguous and every
  intact record is kept where it is;
- damaged lines that stand for no sequence number (inserted garbage, duplicates) are removed;
- a torn tail (lines above the high-water mark) is dropped, as the service would;
- a missing or damaged ``store.mark`` is rewritten, and because the store can then no longer
  tell whether acknowledged records after its end were lost, a ``quarantined`` record says so;
- with ``truncate_at=SEQ`` every record from SEQ on is removed as well (one ``quarantined``
  record stands for them): the operator's explicit, older repair path.

The plan's ``after`` is the survey of the store exactly as the repair will write it, so what
is shown before is what the store then holds. Records lost after the last checkpoint make the
recovered state uncertain, and risk recovers HALTED (fail safe) until an operator resumes.

``apply_repair`` writes the plan: a full copy of every segment it changes or removes (and the
mark) goes to ``repair-backup-<first seq>-<stamp>/`` with a ``repair.json`` first; each
changed segment is then replaced atomically (temporary file, fsync, rename, directory fsync),
removed segments are moved into the backup, newest first, and the mark is rewritten last. A
crash part-way leaves segments that are each old or new, never half written; running the
repair again finishes it. It holds the store's lock: the service must be stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weltklassebot.errors import UsageError
from weltklassebot.fsutil import adopt_directory_owner
from weltklassebot.state.codec import (
    CHECKPOINT_KIND,
    QUARANTINE_KIND,
    LineDefect,
    SchemaTooNew,
    decode_line,
    encode_record,
    verify_line,
)
from weltklassebot.state.errors import StoreUnusable, describe_os_error
from weltklassebot.state.fileops import FileOps
from weltklassebot.state.lock import StoreLock
from weltklassebot.state.mark import MARK_NAME, MarkReading, encode_mark
from weltklassebot.state.recovery import (
    DamagedLine,
    Gap,
    LostRange,
    RecoveryResult,
    Survey,
    recover,
    survey,
)
from weltklassebot.state.segment import (
    BACKUP_PREFIX,
    TEMPORARY_SUFFIX,
    Line,
    SegmentRef,
    iter_lines,
    lines_of_bytes,
    segment_name,
)

ATTENTION_KINDS = frozenset({"risk_transition", "operator_command"})
"""Kinds whose loss an operator must see loudly: they decide whether trading may go on."""


@dataclass(frozen=True, slots=True)
class Removal:
    """One thing the repair takes out of the store, in words and numbers for the operator."""

    segment: str
    line: int | None
    first_seq: int | None
    """First sequence number it stands for; ``None`` for lines that stand for none."""
    through: int | None
    lines: int
    bytes: int
    reason: str
    kinds: dict[str, int]
    """Kinds of the removed records: exact for intact records, as read for damaged lines."""
    unknown: int
    """Records whose kind cannot be told (their bytes are gone or unreadable)."""
    acknowledged: bool
    torn: bool = False
    kinds_verified: bool = False
    """True when ``kinds`` come from intact records; else as read from damaged bytes."""

    @property
    def records(self) -> int:
        return 0 if self.first_seq is None or self.through is None else (
            self.through - self.first_seq + 1
        )

    @property
    def attention(self) -> bool:
        """True when a risk transition or operator command is, or may be, among the removed."""
        return bool(ATTENTION_KINDS & set(self.kinds)) or (self.unknown > 0 and not self.torn)


@dataclass(frozen=True, slots=True)
class RepairPlan:
    """What a repair will do, computed without changing anything."""

    directory: Path
    before: Survey
    removals: tuple[Removal, ...]
    writes: dict[str, bytes]
    """Segment name -> its full new content (changed or new segments)."""
    moves: tuple[str, ...]
    """Segments moved whole into the backup (``--truncate-at`` only)."""
    mark_seq: int
    after: Survey
    stamp: str
    backup_name: str
    truncate_at: int | None = None

    @property
    def needed(self) -> bool:
        return bool(self.writes or self.moves) or self.before.mark.seq != self.mark_seq

    @property
    def attention(self) -> tuple[Removal, ...]:
        return tuple(r for r in self.removals if r.attention)


@dataclass(frozen=True, slots=True)
class RepairResult:
    """What the repair did, where the backup is, and the store as verified afterwards."""

    plan: RepairPlan
    backup: Path | None
    after: RecoveryResult
    files: tuple[dict[str, Any], ...] = field(default=())


def plan_repair(
    directory: Path, stamp: str, *, truncate_at: int | None = None
) -> RepairPlan:
    """Work out what ``apply_repair`` would do to the store in ``directory``.

    ``stamp`` (normally the UTC time) names the backup folder the plan's records point to.

    Raises
    ------
    UsageError
        ``truncate_at`` is outside the store or would remove every checkpoint; the damage
        cannot be repaired automatically (a renamed segment): the message says what to do.
    StoreIncompatible, StoreUnusable
        Newer schema or unknown layout (never repaired); directory unusable.
    """
    before = survey(directory, kinds=None)
    if before.unrepairable:
        problem = before.unrepairable[0]
        raise UsageError(
            f"state store {directory}: {problem.path.name} line {problem.line}: "
            f"{problem.reason}. Nothing was changed."
        )
    builder = _Builder(directory, before, stamp)
    if truncate_at is not None:
        builder.choose_cut(truncate_at)
    builder.place_gaps()
    if builder.cut is not None:
        builder.truncate()
    builder.drop_extra_and_torn()
    builder.unknown_tail()
    plan = builder.plan(truncate_at)
    if plan.after.result.lost and not builder.ends_with_marker():
        # The records removed sit where they were, before later intact records (a risk
        # transition, a resume) that were written without knowing of the loss. One more
        # quarantined record at the end holds the recovered state fail-safe from here on.
        builder.hold_at_end(plan.after.result.lost)
        plan = builder.plan(truncate_at)
    if plan.after.problems:
        problem = plan.after.problems[0]
        raise UsageError(
            f"state store {directory}: the damage cannot be repaired automatically "
            f"({problem.path.name} line {problem.line}: {problem.reason}). Nothing was changed; "
            "restore the directory from backup, or cut it with --truncate-at."
        )
    return plan


def apply_repair(plan: RepairPlan, *, ops: FileOps | None = None) -> RepairResult:
    """Write ``plan`` (from ``plan_repair`` on the same, unchanged store)."""
    ops = ops or FileOps()
    directory = plan.directory
    lock = StoreLock.acquire(directory, 0o640)
    try:
        if not lock.held:
            raise StoreUnusable(
                directory,
                "the state directory cannot be locked for repair (read-only or no permission)",
                "Run the repair on a writable filesystem; nothing was changed.",
            )
        current = plan_repair(directory, plan.stamp, truncate_at=plan.truncate_at)
        if current.writes != plan.writes or current.moves != plan.moves:
            raise UsageError(
                f"state store {directory}: the store changed since the repair plan was shown "
                "(is the service running?). Nothing was changed; run the repair again."
            )
        if not plan.needed:
            return RepairResult(plan, None, recover(directory, kinds=None))
        backup = _backup_directory(directory, plan)
        files = _write_backup(directory, plan, backup, ops)
        _apply(directory, plan, backup, ops)
    finally:
        lock.release()
    return RepairResult(plan, backup, recover(directory, kinds=None), files)


# -- planning ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _SegmentEdit:
    ref: SegmentRef
    drop_from: int | None = None
    """Byte offset from which every line is removed (``--truncate-at``)."""
    drop: set[int] = field(default_factory=set)
    """Byte offsets of lines removed."""
    insert: dict[int | None, list[bytes]] = field(default_factory=dict)
    """Lines inserted before the line at an offset (``None``: at the end)."""


class _Builder:
    def __init__(self, directory: Path, before: Survey, stamp: str) -> None:
        self.directory = directory
        self.before = before
        self.stamp = stamp
        self.refs = [s.ref for s in before.segments]
        self.edits: dict[int, _SegmentEdit] = {}
        self.removals: list[Removal] = []
        self.moves: list[int] = []
        self.end = before.result.next_seq
        """Sequence number after the last one the repaired store stands for."""
        self.cut: int | None = None
        self.extra_segments: dict[str, bytes] = {}

    def edit(self, index: int) -> _SegmentEdit:
        if index not in self.edits:
            self.edits[index] = _SegmentEdit(self.refs[index])
        return self.edits[index]

    # -- what goes -----------------------------------------------------------------------------

    def choose_cut(self, seq: int) -> None:
        refs = self.refs
        if not refs:
            raise UsageError(f"state store {self.directory}: the store holds no segment; "
                             "nothing to cut.")
        last = self.before.result.last_seq
        if seq < refs[0].first_seq:
            raise UsageError(
                f"state store {self.directory}: sequence {seq} is older than the oldest retained "
                f"record ({refs[0].first_seq}); choose a sequence number from `state verify`."
            )
        if seq > last:
            raise UsageError(
                f"state store {self.directory}: the store ends at sequence {last}, so there is "
                f"nothing to cut at {seq}; `state verify` shows the sequence numbers."
            )
        if seq == refs[0].first_seq:
            raise UsageError(
                f"state store {self.directory}: cutting at {seq} would remove every checkpoint "
                "and leave no state to recover. Choose a later sequence number, or move the "
                "whole directory aside and start afresh (or restore it from backup)."
            )
        for gap in self.before.gaps:
            if gap.first < seq <= gap.through:
                seq = gap.first  # a cut inside a damaged run takes the whole run
        self.cut = seq

    def truncate(self) -> None:
        refs = self.refs
        seq = self.cut
        assert seq is not None
        last = self.before.result.last_seq
        index = max(i for i, ref in enumerate(refs) if ref.first_seq <= seq)
        kinds: Counter[str] = Counter()
        lines = 0
        size = 0
        offset: int | None = None
        started = False
        for position in range(index, len(refs)):
            for line in iter_lines(refs[position].path):
                found = _intact(line)
                if not started:
                    if found is None or found[0] < seq:
                        continue
                    started = True
                    offset = line.offset if position == index else None
                if found is None:
                    continue  # damaged lines after the cut are removed with it anyway
                kinds[found[1]] += 1
                lines += 1
                size += line.end - line.offset
        if offset is None or refs[index].first_seq == seq:
            cut_segment, cut_offset = index - 1, None  # the segment goes whole
            first_moved = index
        else:
            cut_segment, cut_offset = index, offset
            first_moved = index + 1
        self.moves = list(range(first_moved, len(refs)))
        if cut_offset is not None:
            self.edit(cut_segment).drop_from = cut_offset
        through = max(last, self.before.mark.seq or 0)
        marker_ts = self._ts_before(cut_segment, cut_offset)
        self.edit(cut_segment).insert.setdefault(None, []).append(
            self._marker(seq, through, marker_ts, "removed by state repair --truncate-at "
                         f"{seq}", checkpoint_only=False, damaged=0, kinds=dict(kinds))
        )
        self.removals.append(Removal(
            segment=refs[index].path.name, line=None, first_seq=seq, through=through,
            lines=lines, bytes=size, reason=f"--truncate-at {seq}: intact records removed "
            "on the operator's request", kinds=dict(kinds),
            unknown=max(0, through - seq + 1 - sum(kinds.values())), acknowledged=True,
            kinds_verified=True,
        ))
        self.end = through + 1

    def place_gaps(self) -> None:
        for gap in self.before.gaps:
            if self.cut is not None and gap.first >= self.cut:
                continue  # removed by the cut
            edit = self.edit(gap.segment)
            for damaged in gap.damaged:
                self.edit(damaged.segment).drop.add(damaged.offset)
            ts = self._ts_before(gap.segment, gap.before)
            kinds = Counter(d.apparent_kind for d in gap.damaged if d.apparent_kind)
            marker = self._marker(
                gap.first, gap.through, ts, gap.reason, checkpoint_only=gap.checkpoint_only,
                damaged=len(gap.damaged), kinds=dict(kinds),
            )
            edit.insert.setdefault(gap.before, []).append(marker)
            self.removals.append(_gap_removal(self.refs, gap, dict(kinds)))

    def drop_extra_and_torn(self) -> None:
        for damaged in self.before.extra:
            if damaged.segment in self.moves:
                continue
            self.edit(damaged.segment).drop.add(damaged.offset)
            kinds = {damaged.apparent_kind: 1} if damaged.apparent_kind else {}
            self.removals.append(Removal(
                segment=self.refs[damaged.segment].path.name, line=damaged.line,
                first_seq=None, through=None, lines=1, bytes=damaged.end - damaged.offset,
                reason=f"a line that stands for no sequence number ({damaged.reason})",
                kinds=kinds, unknown=0, acknowledged=False,
            ))
        torn = self.before.result.torn
        if torn is not None and self.cut is None:
            index = len(self.refs) - 1
            edit = self.edit(index)
            for line in iter_lines(self.refs[index].path):
                if line.offset >= torn.offset:
                    edit.drop.add(line.offset)
            self.removals.append(Removal(
                segment=torn.path.name, line=torn.line, first_seq=None, through=None,
                lines=torn.lines, bytes=torn.dropped_bytes,
                reason=f"torn tail above the high-water mark, never acknowledged ({torn.reason})",
                kinds={}, unknown=0, acknowledged=False, torn=True,
            ))

    def unknown_tail(self) -> None:
        mark = self.before.mark
        if mark.problem is None or not self.refs:
            if not self.refs and mark.seq:
                # Every segment is gone: one new segment stands for what the mark acknowledged.
                name = segment_name(mark.seq)
                self.extra_segments[name] = self._marker(
                    mark.seq, mark.seq, 0, f"every segment is gone; the high-water mark says "
                    f"records up to {mark.seq} were acknowledged", checkpoint_only=False,
                    damaged=0, kinds={},
                )
                self.removals.append(Removal(
                    segment=name, line=None, first_seq=None, through=None, lines=0, bytes=0,
                    reason="every segment is missing", kinds={}, unknown=1, acknowledged=True,
                ))
                self.end = mark.seq + 1
            return
        seq = self.end
        index = len(self.refs) - 1
        if index in self.moves:
            index = min(self.moves) - 1
        ts = self._ts_before(index, None)
        self.edit(index).insert.setdefault(None, []).append(self._marker(
            seq, seq, ts, f"{mark.problem}; acknowledged records after sequence {seq - 1} may "
            "have been lost", checkpoint_only=False, damaged=0, kinds={},
        ))
        self.removals.append(Removal(
            segment=self.refs[index].path.name, line=None, first_seq=seq, through=seq,
            lines=0, bytes=0, reason=f"{mark.problem}: whether records after {seq - 1} were "
            "acknowledged and lost cannot be known", kinds={}, unknown=1, acknowledged=True,
        ))
        self.end = seq + 1

    def ends_with_marker(self) -> bool:
        return self.cut is not None or (
            self.before.mark.problem is not None and bool(self.refs)
        )

    def hold_at_end(self, lost: tuple[LostRange, ...]) -> None:
        seq = self.end
        index = len(self.refs) - 1
        spans = ", ".join(
            str(q.first_seq) if q.first_seq == q.through else f"{q.first_seq}..{q.through}"
            for q in lost
        )
        ts = self._ts_before(index, None)
        self.edit(index).insert.setdefault(None, []).append(self._marker(
            seq, seq, ts, f"records {spans} after the last checkpoint were quarantined: the "
            "state after them is not known", checkpoint_only=False, damaged=0, kinds={},
        ))
        self.end = seq + 1

    # -- what results --------------------------------------------------------------------------

    def plan(self, truncate_at: int | None) -> RepairPlan:
        writes: dict[str, bytes] = {}
        for index, edit in sorted(self.edits.items()):
            if index in self.moves:
                continue
            writes[self.refs[index].path.name] = _rewrite(edit)
        writes.update(self.extra_segments)
        mark_seq = self.end - 1
        moved = {self.refs[i].path.name for i in self.moves}
        kept = [ref for ref in self.refs if ref.path.name not in moved]
        kept += [SegmentRef(int(name[8:28]), self.directory / name) for name in
                 self.extra_segments]
        kept.sort(key=lambda ref: ref.first_seq)

        def source(ref: SegmentRef) -> Iterator[Line]:
            data = writes.get(ref.path.name)
            if data is None:
                return iter_lines(ref.path)
            return lines_of_bytes(data)

        after = survey(
            self.directory, kinds=None, source=source, segments=tuple(kept),
            mark=MarkReading(mark_seq, None, True),
        )
        return RepairPlan(
            directory=self.directory,
            before=self.before,
            removals=tuple(self.removals),
            writes=writes,
            moves=tuple(self.refs[i].path.name for i in self.moves),
            mark_seq=mark_seq,
            after=after,
            stamp=self.stamp,
            backup_name=self.backup_name(),
            truncate_at=truncate_at,
        )

    # -- helpers -------------------------------------------------------------------------------

    def _marker(
        self, first: int, through: int, ts_ns: int, reason: str, *, checkpoint_only: bool,
        damaged: int, kinds: dict[str, int],
    ) -> bytes:
        payload = {
            "through": through,
            "reason": reason,
            "checkpoint_only": checkpoint_only,
            "damaged_lines": damaged,
            "kinds_seen": dict(sorted(kinds.items())),
            "backup": self.backup_name(),
        }
        return encode_record(first, ts_ns, QUARANTINE_KIND, payload)

    def backup_name(self) -> str:
        label = self.cut if self.cut is not None else min(
            (g.first for g in self.before.gaps), default=self.before.result.next_seq
        )
        return f"{BACKUP_PREFIX}{label}-{self.stamp}"

    def _ts_before(self, index: int, offset: int | None) -> int:
        # A quarantined record carries the time of the intact record before it, so record
        # times never go back.
        if index < 0 or index >= len(self.refs):
            return 0
        ts = 0
        for line in iter_lines(self.refs[index].path):
            if offset is not None and line.offset >= offset:
                break
            if _intact(line) is not None:
                ts = decode_line(line.raw).ts_ns
        return ts


def _gap_removal(refs: list[SegmentRef], gap: Gap, kinds: dict[str, int]) -> Removal:
    damaged: tuple[DamagedLine, ...] = gap.damaged
    segment = refs[damaged[0].segment if damaged else gap.segment].path.name
    known = 1 if gap.checkpoint_only else 0
    if gap.checkpoint_only:
        kinds = {CHECKPOINT_KIND: 1}
    records = gap.through - gap.first + 1
    return Removal(
        segment=segment,
        line=damaged[0].line if damaged else None,
        first_seq=gap.first,
        through=gap.through,
        lines=len(damaged),
        bytes=sum(d.end - d.offset for d in damaged),
        reason=gap.reason + (f" ({damaged[0].reason})" if damaged else ""),
        kinds=kinds,
        unknown=max(0, records - known - (0 if gap.checkpoint_only else sum(kinds.values()))),
        acknowledged=gap.acknowledged,
    )


def _intact(line: Line) -> tuple[int, str] | None:
    if not line.complete:
        return None
    try:
        return verify_line(line.raw)
    except (LineDefect, SchemaTooNew):
        return None


def _rewrite(edit: _SegmentEdit) -> bytes:
    out: list[bytes] = []
    for line in iter_lines(edit.ref.path):
        if edit.drop_from is not None and line.offset >= edit.drop_from:
            break
        out.extend(edit.insert.get(line.offset, ()))
        if line.offset in edit.drop:
            continue
        out.append(line.raw + b"\n")
    out.extend(edit.insert.get(None, ()))
    return b"".join(out)


# -- applying ----------------------------------------------------------------------------------


def _backup_directory(directory: Path, plan: RepairPlan) -> Path:
    candidate = directory / plan.backup_name
    try:
        candidate.mkdir(mode=0o750)
    except FileExistsError:
        raise UsageError(
            f"state store {directory}: the backup folder {candidate.name} already exists (a "
            "repair ran within the same second). Nothing was changed; run the repair again."
        ) from None
    except OSError as exc:
        raise StoreUnusable(
            directory,
            f"the backup folder {candidate.name} cannot be created: {describe_os_error(exc)}",
            "Free space or fix permissions, then run the repair again; nothing was changed.",
        ) from None
    adopt_directory_owner(candidate)
    return candidate


def _write_backup(
    directory: Path, plan: RepairPlan, backup: Path, ops: FileOps
) -> tuple[dict[str, Any], ...]:
    files: list[dict[str, Any]] = []
    try:
        names = sorted({*plan.writes, *plan.moves})
        for name in names:
            source = directory / name
            if not source.exists():
                continue  # a segment the repair creates
            data = source.read_bytes()
            action = "moved" if name in plan.moves else "rewritten"
            if action == "rewritten":  # moved segments go into the backup whole, later
                _write_new(backup / name, data, ops)
            files.append({
                "name": name, "action": action, "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            })
        mark = directory / MARK_NAME
        if mark.exists():
            _write_new(backup / MARK_NAME, mark.read_bytes(), ops)
        manifest = {
            "truncate_at": plan.truncate_at,
            "mark_before": plan.before.mark.seq,
            "mark_after": plan.mark_seq,
            "removed": [removal_json(r) for r in plan.removals],
            "files": files,
            "restore": "stop the service, move the store's segments and store.mark aside, "
            "copy these files back",
        }
        text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
        _write_new(backup / "repair.json", text.encode("utf-8"), ops)
        ops.fsync_dir(backup)
    except OSError as exc:
        raise StoreUnusable(
            directory,
            f"the backup could not be written: {describe_os_error(exc)}",
            f"Nothing in the store was changed (a partial backup is in {backup.name}); free "
            "space or fix permissions and run the repair again.",
        ) from None
    return tuple(files)


def _apply(directory: Path, plan: RepairPlan, backup: Path, ops: FileOps) -> None:
    try:
        for name, data in sorted(plan.writes.items()):
            temporary = directory / (name + TEMPORARY_SUFFIX)
            _write_new(temporary, data, ops, replace=True)
            ops.rename(temporary, directory / name)
            ops.fsync_dir(directory)
        for name in sorted(plan.moves, reverse=True):  # newest first: the store stays a prefix
            ops.rename(directory / name, backup / name)
            ops.fsync_dir(directory)
        ops.fsync_dir(backup)
        temporary = directory / (MARK_NAME + TEMPORARY_SUFFIX)
        _write_new(temporary, encode_mark(plan.mark_seq), ops, replace=True)
        ops.rename(temporary, directory / MARK_NAME)
        ops.fsync_dir(directory)
    except OSError as exc:
        raise StoreUnusable(
            directory,
            f"the repair stopped part-way: {describe_os_error(exc)}",
            f"Everything it changed is kept in {backup.name}; fix the cause and run the repair "
            "again (segments already repaired are left as they are).",
        ) from None


def _write_new(path: Path, data: bytes, ops: FileOps, *, replace: bool = False) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_TRUNC if replace else os.O_EXCL)
    fd = os.open(path, flags, 0o640)
    try:
        ops.write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    adopt_directory_owner(path)


def removal_json(removal: Removal) -> dict[str, Any]:
    """The JSON form of a removal, as ``repair.json`` and ``state repair --json`` show it."""
    return {
        "segment": removal.segment,
        "line": removal.line,
        "first_seq": removal.first_seq,
        "through": removal.through,
        "records": removal.records,
        "lines": removal.lines,
        "bytes": removal.bytes,
        "reason": removal.reason,
        "kinds": removal.kinds,
        "unknown_kinds": removal.unknown,
        "acknowledged": removal.acknowledged,
        "torn": removal.torn,
        "kinds_verified": removal.kinds_verified,
        "attention": removal.attention,
    }
