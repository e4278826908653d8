"""Reading a state directory back: verify every retained record, find the last checkpoint.

The rules (docs/state-store.md, Recovery):

- segments are read in sequence order; every line must verify (checksum, fields, sequence number
  one more than the previous record, across segment boundaries too) and every segment must start
  with a checkpoint record whose sequence number matches the segment's name (or with a
  ``quarantined`` record that ``state repair`` put in the place of a lost one);
- ``store.mark`` names the last acknowledged sequence number; every record up to it must be
  there and intact. Only lines at the end of the newest segment *above* the mark may fail: they
  are a torn (unacknowledged) write, dropped and counted, and the writer cuts the file back to
  the end of the last good record before it appends again;
- anything else is damage to acknowledged records: ``survey`` lists every problem, ``recover``
  stops with ``StoreCorrupt`` naming the first and the repair command; a newer schema version or
  an unregistered kind stops with ``StoreIncompatible``;
- the result is the last checkpoint plus the records after it (``quarantined`` records
  included, in place), and the next sequence number. Records known lost after the last
  checkpoint make the recovered state uncertain (``RecoveryResult.state_uncertain``); risk then
  recovers as HALTED.

This module only reads; ``JsonlStore.open`` applies the result (cuts the torn tail) and
``repair`` uses the survey's findings to quarantine exactly the damaged records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weltklassebot.state.codec import (
    CHECKPOINT_KIND,
    KNOWN_KINDS,
    QUARANTINE_KIND,
    LineDefect,
    Record,
    SchemaTooNew,
    apparent_fields,
    decode_line,
    normalise_kinds,
    verify_line,
)
from weltklassebot.state.errors import StoreCorrupt, StoreIncompatible
from weltklassebot.state.mark import MarkReading, read_mark
from weltklassebot.state.segment import Line, SegmentRef, iter_lines, list_directory


@dataclass(frozen=True, slots=True)
class SegmentSummary:
    """What one segment holds after verification."""

    name: str
    first_seq: int
    last_seq: int | None
    records: int
    good_bytes: int
    size: int


@dataclass(frozen=True, slots=True)
class TornTail:
    """The dropped final line(s) of the newest segment: where they start and why they failed."""

    path: Path
    line: int
    seq: int
    offset: int
    dropped_bytes: int
    reason: str
    lines: int = 1


@dataclass(frozen=True, slots=True)
class LostRange:
    """Sequence numbers a ``quarantined`` record stands for: what ``state repair`` removed."""

    first_seq: int
    through: int
    reason: str
    checkpoint_only: bool
    after_checkpoint: bool
    backup: str | None

    @property
    def count(self) -> int:
        return self.through - self.first_seq + 1


@dataclass(frozen=True, slots=True)
class DamagedLine:
    """A line that is not a usable record: damaged, duplicated or out of order."""

    segment: int
    """Index of its segment in ``Survey.segments``."""
    line: int
    offset: int
    end: int
    reason: str
    apparent_kind: str | None
    apparent_seq: int | None
    complete: bool = True
    """False for a final line without its newline: what a write cut short leaves."""


@dataclass(frozen=True, slots=True)
class Gap:
    """Sequence numbers ``first..through`` that no intact record holds, and where they were.

    ``damaged`` are the lines found where the records should be; ``segment`` and ``before`` say
    where a ``quarantined`` record takes their place (before the line starting at byte offset
    ``before``, or at the end of the segment when ``before`` is None).
    """

    first: int
    through: int
    segment: int
    before: int | None
    reason: str
    checkpoint_only: bool
    acknowledged: bool
    damaged: tuple[DamagedLine, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of ``survey`` that makes the store corrupt, in words for an operator."""

    path: Path
    line: int
    seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class RecoveryResult:
    """The last checkpoint, the records after it, and where appending continues."""

    checkpoint: dict[str, Any] | None
    checkpoint_seq: int | None
    checkpoint_ts_ns: int | None
    records: list[Record]
    torn_dropped: int
    next_seq: int
    segments: tuple[SegmentSummary, ...] = ()
    torn: TornTail | None = None
    temporaries: tuple[Path, ...] = ()
    other_files: tuple[str, ...] = ()
    kind_counts: dict[str, int] = field(default_factory=dict)
    quarantined: tuple[LostRange, ...] = ()
    mark_seq: int | None = None

    @property
    def last_seq(self) -> int:
        """Sequence number of the last good record (0 for an empty store)."""
        return self.next_seq - 1

    @property
    def first_seq(self) -> int | None:
        """Sequence number of the oldest retained record, if any."""
        for summary in self.segments:
            if summary.records:
                return summary.first_seq
        return None

    @property
    def record_count(self) -> int:
        """Number of good records in all retained segments (checkpoints included)."""
        return sum(summary.records for summary in self.segments)

    @property
    def lost(self) -> tuple[LostRange, ...]:
        """Quarantined records that recovery would have needed (after the last checkpoint)."""
        return tuple(q for q in self.quarantined if q.after_checkpoint and not q.checkpoint_only)

    @property
    def state_uncertain(self) -> bool:
        """True when records recovery needs were lost: the state after them is not known."""
        if self.lost:
            return True
        return self.checkpoint is None and bool(self.quarantined) and self.first_seq != 1


@dataclass(frozen=True, slots=True)
class SegmentScan:
    """A segment as the survey read it."""

    ref: SegmentRef
    size: int
    good_bytes: int
    records: int
    last_seq: int | None


@dataclass(frozen=True, slots=True)
class Survey:
    """Everything ``survey`` found: the recovery it yields and every problem on the way."""

    result: RecoveryResult
    segments: tuple[SegmentScan, ...]
    gaps: tuple[Gap, ...]
    extra: tuple[DamagedLine, ...]
    """Damaged lines that stand for no sequence number (inserted garbage, duplicates)."""
    mark: MarkReading
    problems: tuple[Problem, ...]
    unrepairable: tuple[Problem, ...] = ()

    @property
    def clean(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class _Marker:
    record: Record
    at_segment_start: bool
    checkpoints_before: int


LineSource = Callable[[SegmentRef], Iterator[Line]]


def recover(directory: Path, kinds: Iterable[str] | None = KNOWN_KINDS) -> RecoveryResult:
    """Verify the store in ``directory`` without changing it and return what recovery yields.

    Parameters
    ----------
    directory
        The state directory.
    kinds
        The registry of record kinds this reader understands; ``None`` accepts any well-formed
        kind (what the operator's ``state verify`` does).

    Raises
    ------
    StoreCorrupt
        An acknowledged record is missing or damaged, or the mark is missing or damaged.
    StoreIncompatible, StoreUnusable
        Newer schema or unregistered kind; directory missing or unreadable.
    """
    found = survey(directory, kinds)
    if found.problems:
        raise StoreCorrupt.of(directory, found.problems)
    return found.result


def survey(
    directory: Path,
    kinds: Iterable[str] | None = KNOWN_KINDS,
    *,
    source: LineSource | None = None,
    segments: tuple[SegmentRef, ...] | None = None,
    mark: MarkReading | None = None,
) -> Survey:
    """Read the whole store in ``directory`` and report what recovery yields and what is wrong.

    ``source``, ``segments`` and ``mark`` let ``repair`` survey the store it is about to write
    (from bytes in memory) with exactly the rules recovery will apply to it.
    """
    registry = None if kinds is None else normalise_kinds(kinds)
    listing = list_directory(directory)
    refs = listing.segments if segments is None else segments
    reading = read_mark(directory) if mark is None else mark
    scan = _Scan(directory, registry, reading, source or _read_lines)
    for index, ref in enumerate(refs):
        scan.read_segment(index, ref)
    scan.finish()
    return scan.survey(listing.temporaries, listing.others)


def _read_lines(ref: SegmentRef) -> Iterator[Line]:
    return iter_lines(ref.path)


class _Scan:
    def __init__(
        self,
        directory: Path,
        registry: frozenset[str] | None,
        mark: MarkReading,
        source: LineSource,
    ) -> None:
        self.directory = directory
        self.registry = registry
        self.mark = mark
        self.source = source
        self.expected = 1
        self.refs: list[SegmentRef] = []
        self.scans: list[SegmentScan] = []
        self.pending: list[DamagedLine] = []
        self.gaps: list[Gap] = []
        self.extra: list[DamagedLine] = []
        self.problems: list[Problem] = []
        self.kind_counts: dict[str, int] = {}
        self.checkpoint_raw: tuple[int, bytes] | None = None
        self.after: list[tuple[int, bytes]] = []
        self.markers: list[_Marker] = []
        self.checkpoints = 0
        self.unrepairable: list[Problem] = []
        self.torn: TornTail | None = None
        self.records_seen = 0

    # -- reading -------------------------------------------------------------------------------

    def read_segment(self, index: int, ref: SegmentRef) -> None:
        if index == 0:
            self.expected = ref.first_seq
        else:
            self._segment_boundary(index, ref)
        self.refs.append(ref)
        records = 0
        good_bytes = 0
        size = 0
        last_seq: int | None = None
        for line in self.source(ref):
            size = line.end
            decoded = self._classify(index, ref, line)
            if isinstance(decoded, DamagedLine):
                self.pending.append(decoded)
                continue
            seq, kind, raw = decoded
            if seq < self.expected:
                self.pending.append(
                    _damaged(index, line, f"sequence number {seq} repeats or goes back "
                             f"(expected {self.expected})")
                )
                continue
            at_start = records == 0 and not self.pending
            if seq > self.expected:
                self._gap(self.expected, seq - 1, index, line.offset, at_start=at_start,
                          reason="the lines holding them are damaged or were removed")
            elif self.pending:
                self._extra()
            if seq == ref.first_seq and kind not in (CHECKPOINT_KIND, QUARANTINE_KIND):
                self._problem(ref, line.number, seq,
                              f"the segment starts with a {kind!r} record, not a checkpoint: it "
                              "was renamed or assembled by hand; this cannot be repaired "
                              "automatically (restore the directory from backup)",
                              repairable=False)
            self._accept(seq, kind, raw, start=seq == ref.first_seq)
            records += 1
            good_bytes = line.end
            last_seq = self.expected - 1
        self.scans.append(SegmentScan(ref, size, good_bytes, records, last_seq))

    def _segment_boundary(self, index: int, ref: SegmentRef) -> None:
        previous = index - 1
        if ref.first_seq > self.expected:
            missing = ref.first_seq - self.expected
            reason = (
                f"{missing} record(s) before {ref.path.name} are missing: a segment was "
                "removed or cut short"
            )
            self._gap(self.expected, ref.first_seq - 1, previous, None, at_start=False,
                      reason=reason)
        elif ref.first_seq < self.expected:
            self._problem(
                ref, 1, ref.first_seq,
                f"the segment's name says it starts at sequence {ref.first_seq} but the previous "
                f"segment already reaches {self.expected - 1}: a segment was renamed or copied "
                "in; this cannot be repaired automatically (restore the directory from backup)",
                repairable=False,
            )
            self.expected = ref.first_seq
        elif self.pending:
            self._extra()

    def _classify(
        self, index: int, ref: SegmentRef, line: Line
    ) -> tuple[int, str, bytes] | DamagedLine:
        try:
            if not line.complete:
                raise LineDefect("the line has no newline (the write was cut short)")
            seq, kind = verify_line(line.raw)
        except LineDefect as defect:
            return _damaged(index, line, defect.reason)
        except SchemaTooNew as newer:
            raise StoreIncompatible.schema_too_new(ref.path, line.number, newer.version) from None
        if self.registry is not None and kind not in self.registry:
            raise StoreIncompatible(
                ref.path,
                line.number,
                seq,
                f"holds a record of kind {kind!r}, which this program does not know "
                f"(known: {', '.join(sorted(self.registry))})",
                "The record is not damaged: run the release that wrote it, or register the "
                "kind in the StoreConfig of the program that opens the store; do not repair.",
            )
        return seq, kind, line.raw

    def _accept(self, seq: int, kind: str, raw: bytes, *, start: bool) -> None:
        self.kind_counts[kind] = self.kind_counts.get(kind, 0) + 1
        self.records_seen += 1
        if kind == CHECKPOINT_KIND:
            self.checkpoints += 1
            self.checkpoint_raw = (seq, raw)
            self.after = []
            self.expected = seq + 1
            return
        if kind == QUARANTINE_KIND:
            record = decode_line(raw)
            through = record.payload.get("through")
            if type(through) is not int or through < seq:
                through = seq
            self.markers.append(_Marker(record, start, self.checkpoints))
            self.after.append((seq, raw))
            self.expected = through + 1
            return
        self.after.append((seq, raw))
        self.expected = seq + 1

    # -- findings ------------------------------------------------------------------------------

    def _gap(
        self, first: int, through: int, segment: int, before: int | None, *, at_start: bool,
        reason: str,
    ) -> None:
        damaged = tuple(self.pending)
        self.pending = []
        ref = self.refs[segment] if segment < len(self.refs) else None
        checkpoint_only = (
            at_start and ref is not None and first == through == ref.first_seq
        )
        acknowledged = self.mark.seq is None or first <= self.mark.seq
        self.gaps.append(
            Gap(first, through, segment, before, reason, checkpoint_only, acknowledged, damaged)
        )
        path = (ref or self.refs[-1]).path if self.refs else self.directory / "store.mark"
        line = damaged[0].line if damaged else 1
        what = f"record {first}" if first == through else f"records {first}..{through}"
        if damaged:
            text = f"acknowledged {what} damaged: {damaged[0].reason}"
            if len(damaged) > 1:
                text += f" ({len(damaged)} damaged lines)"
        else:
            text = f"acknowledged {what} missing: {reason}"
        self._problem_at(path, line, first, text)
        self.expected = through + 1

    def _extra(self) -> None:
        for damaged in self.pending:
            ref = self.refs[damaged.segment]
            self._problem_at(
                ref.path, damaged.line, self.expected,
                f"a damaged or foreign line sits between records ({damaged.reason})",
            )
        self.extra.extend(self.pending)
        self.pending = []

    def _problem(self, ref: SegmentRef, line: int, seq: int, reason: str, *,
                 repairable: bool = True) -> None:
        problem = Problem(ref.path, line, seq, reason)
        self.problems.append(problem)
        if not repairable:
            self.unrepairable.append(problem)

    def _problem_at(self, path: Path, line: int, seq: int, reason: str) -> None:
        self.problems.append(Problem(path, line, seq, reason))

    def finish(self) -> None:
        mark = self.mark
        if not self.refs:
            if mark.seq:
                self.problems.append(Problem(
                    self.directory / "store.mark", 1, mark.seq,
                    f"the high-water mark says {mark.seq} record(s) were acknowledged but no "
                    "segment remains",
                ))
            elif mark.exists and mark.problem is not None:
                self.problems.append(Problem(self.directory / "store.mark", 1, 1, mark.problem))
            return
        newest = len(self.refs) - 1
        if self.pending:
            first = self.pending[0]
            torn = len(self.pending) == 1 and not first.complete
            if mark.seq is not None and self.expected > mark.seq and not torn:
                # Complete lines cannot come from a write cut short: damage, though nothing
                # acknowledged is lost (repair drops them without a quarantined record).
                self._extra()
            elif mark.seq is not None and self.expected > mark.seq:
                ref = self.refs[first.segment]
                self.torn = TornTail(
                    path=ref.path,
                    line=first.line,
                    seq=self.expected,
                    offset=first.offset,
                    dropped_bytes=self.pending[-1].end - first.offset,
                    reason=first.reason,
                    lines=len(self.pending),
                )
                self.pending = []
            else:
                through = self.expected if mark.seq is None else max(mark.seq, self.expected)
                self._gap(self.expected, through, newest, None, at_start=False,
                          reason="the end of the newest segment is damaged")
        elif mark.seq is not None and mark.seq >= self.expected:
            self._gap(self.expected, mark.seq, newest, None, at_start=False,
                      reason=f"the high-water mark says {mark.seq} was acknowledged but the "
                      f"store ends at {self.expected - 1} (the newest segment was cut short or "
                      "removed)")
        if mark.problem is not None:
            self.problems.append(Problem(
                self.directory / "store.mark", 1, self.expected,
                f"{mark.problem}: the store cannot tell whether acknowledged records after "
                f"sequence {self.expected - 1} are missing",
            ))
        if self.checkpoint_raw is None and not self.markers and self.refs[0].first_seq > 1:
            oldest = self.refs[0]
            self.problems.append(Problem(
                oldest.path, 1, oldest.first_seq,
                "no complete checkpoint record remains in the store",
            ))

    # -- result --------------------------------------------------------------------------------

    def survey(self, temporaries: tuple[Path, ...], others: tuple[str, ...]) -> Survey:
        checkpoint: Record | None = None
        if self.checkpoint_raw is not None:
            checkpoint = _decode(self.refs, self.checkpoint_raw)
        records = [_decode(self.refs, item) for item in self.after]
        quarantined: list[LostRange] = []
        for marker in self.markers:
            record, payload = marker.record, marker.record.payload
            through = payload.get("through")
            backup = payload.get("backup")
            quarantined.append(LostRange(
                first_seq=record.seq,
                through=through if type(through) is int and through >= record.seq else record.seq,
                reason=str(payload.get("reason", "")),
                # A lost checkpoint costs nothing while an earlier one and every record after
                # it are still there: it only summarised them.
                checkpoint_only=payload.get("checkpoint_only") is True
                and marker.at_segment_start
                and marker.checkpoints_before > 0,
                after_checkpoint=marker.checkpoints_before == self.checkpoints,
                backup=backup if isinstance(backup, str) else None,
            ))
        summaries = tuple(
            SegmentSummary(
                name=s.ref.path.name,
                first_seq=s.ref.first_seq,
                last_seq=s.last_seq,
                records=s.records,
                good_bytes=s.good_bytes,
                size=s.size,
            )
            for s in self.scans
        )
        result = RecoveryResult(
            checkpoint=None if checkpoint is None else checkpoint.payload,
            checkpoint_seq=None if checkpoint is None else checkpoint.seq,
            checkpoint_ts_ns=None if checkpoint is None else checkpoint.ts_ns,
            records=records,
            torn_dropped=0 if self.torn is None else self.torn.lines,
            next_seq=self.expected,
            segments=summaries,
            torn=self.torn,
            temporaries=temporaries,
            other_files=others,
            kind_counts=dict(sorted(self.kind_counts.items())),
            quarantined=tuple(quarantined),
            mark_seq=self.mark.seq,
        )
        return Survey(
            result=result,
            segments=tuple(self.scans),
            gaps=tuple(self.gaps),
            extra=tuple(self.extra),
            mark=self.mark,
            problems=tuple(self.problems),
            unrepairable=tuple(self.unrepairable),
        )


def _damaged(index: int, line: Line, reason: str) -> DamagedLine:
    kind, seq = apparent_fields(line.raw)
    return DamagedLine(
        index, line.number, line.offset, line.end, reason, kind, seq, complete=line.complete
    )


def _decode(refs: list[SegmentRef], item: tuple[int, bytes]) -> Record:
    seq, raw = item
    try:
        return decode_line(raw, checksum_verified=True)
    except LineDefect as defect:  # verified before: only a payload the layout check skipped
        ref = next((r for r in reversed(refs) if r.first_seq <= seq), refs[0])
        raise StoreCorrupt(ref.path, 0, seq, defect.reason) from None
