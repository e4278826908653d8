"""Reading a state directory back: verify every retained record, find the last checkpoint.

The rules (docs/state-store.md, Recovery):

- segments are read in sequence order; every line must verify (checksum, fields, sequence number
  one more than the previous record, across segment boundaries too) and every segment must start
  with a checkpoint record whose sequence number matches the segment's name;
- only the very last line of the newest segment may fail: a line without its newline, or one that
  does not verify, is a torn write. It is dropped and counted, and the writer cuts the file back
  to the end of the last good record before it appends again;
- any other failure stops with ``StoreCorrupt`` naming file, line and sequence number; a newer
  schema version or an unregistered kind stops with ``StoreIncompatible``;
- the result is the last checkpoint plus the records after it, and the next sequence number.

This module only reads; ``JsonlStore.open`` applies the result (cuts the torn tail).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weltklassebot.state.codec import (
    CHECKPOINT_KIND,
    KNOWN_KINDS,
    LineDefect,
    Record,
    SchemaTooNew,
    decode_line,
    normalise_kinds,
    verify_line,
)
from weltklassebot.state.errors import StoreCorrupt, StoreIncompatible
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
    """The dropped final line of the newest segment: where it starts and why it failed."""

    path: Path
    line: int
    seq: int
    offset: int
    dropped_bytes: int
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


def recover(directory: Path, kinds: Iterable[str] | None = KNOWN_KINDS) -> RecoveryResult:
    """Verify the store in ``directory`` without changing it and return what recovery yields.

    Parameters
    ----------
    directory
        The state directory.
    kinds
        The registry of record kinds this reader understands; ``None`` accepts any well-formed
        kind (what the operator's ``state verify`` does).
    """
    registry = None if kinds is None else normalise_kinds(kinds)
    listing = list_directory(directory)
    scan = _Scan(registry)
    last = len(listing.segments) - 1
    for index, ref in enumerate(listing.segments):
        # The last checkpoint starts the newest segment, or the one before it when the newest
        # holds no complete record: only those two are parsed in full, older ones verified.
        scan.read_segment(ref, newest=index == last, full=index >= last - 1)
    if scan.checkpoint is None and listing.segments and listing.segments[0].first_seq > 1:
        first = listing.segments[0]
        raise StoreCorrupt(
            first.path, 1, first.first_seq, "no complete checkpoint record remains in the store"
        )
    checkpoint = scan.checkpoint
    return RecoveryResult(
        checkpoint=None if checkpoint is None else checkpoint.payload,
        checkpoint_seq=None if checkpoint is None else checkpoint.seq,
        checkpoint_ts_ns=None if checkpoint is None else checkpoint.ts_ns,
        records=scan.after,
        torn_dropped=0 if scan.torn is None else 1,
        next_seq=scan.expected,
        segments=tuple(scan.summaries),
        torn=scan.torn,
        temporaries=listing.temporaries,
        other_files=listing.others,
        kind_counts=dict(sorted(scan.kind_counts.items())),
    )


class _Scan:
    __slots__ = ("after", "checkpoint", "expected", "kind_counts", "registry", "summaries", "torn")

    def __init__(self, registry: frozenset[str] | None) -> None:
        self.registry = registry
        self.expected = 1
        self.checkpoint: Record | None = None
        self.after: list[Record] = []
        self.summaries: list[SegmentSummary] = []
        self.torn: TornTail | None = None
        self.kind_counts: dict[str, int] = {}

    def read_segment(self, ref: SegmentRef, *, newest: bool, full: bool) -> None:
        if self.summaries and ref.first_seq != self.expected:
            raise StoreCorrupt(
                ref.path,
                1,
                self.expected,
                f"the segment's name says it starts at sequence {ref.first_seq} but the previous "
                f"segment ends at {self.expected - 1}: a segment is missing or was renamed",
            )
        self.expected = ref.first_seq
        records = 0
        good_bytes = 0
        size = 0
        for line in iter_lines(ref.path):
            size = line.end
            decoded = self._decode(ref, line, newest=newest, full=full)
            if decoded is None:  # torn tail, recorded; it is the last line
                break
            seq, kind, record = decoded
            if seq != self.expected:
                raise StoreCorrupt(
                    ref.path,
                    line.number,
                    self.expected,
                    f"sequence number {seq} found where {self.expected} was expected",
                )
            if records == 0 and kind != CHECKPOINT_KIND:
                raise StoreCorrupt(
                    ref.path,
                    line.number,
                    seq,
                    f"the segment starts with a {kind!r} record, not a checkpoint",
                )
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
            if kind == CHECKPOINT_KIND:
                self.checkpoint = record
                self.after = []
            elif record is not None:
                self.after.append(record)
            self.kind_counts[kind] = self.kind_counts.get(kind, 0) + 1
            records += 1
            good_bytes = line.end
            self.expected += 1
        if records == 0 and not newest:
            raise StoreCorrupt(ref.path, 1, ref.first_seq, "the segment holds no complete record")
        self.summaries.append(
            SegmentSummary(
                name=ref.path.name,
                first_seq=ref.first_seq,
                last_seq=self.expected - 1 if records else None,
                records=records,
                good_bytes=good_bytes,
                size=size,
            )
        )

    def _decode(
        self, ref: SegmentRef, line: Line, *, newest: bool, full: bool
    ) -> tuple[int, str, Record | None] | None:
        try:
            if not line.complete:
                raise LineDefect("the line has no newline (the write was cut short)")
            if not full:
                seq, kind = verify_line(line.raw)
                return seq, kind, None
            record = decode_line(line.raw)
            return record.seq, record.kind, record
        except LineDefect as defect:
            if newest and line.last:
                self.torn = TornTail(
                    path=ref.path,
                    line=line.number,
                    seq=self.expected,
                    offset=line.offset,
                    dropped_bytes=line.end - line.offset,
                    reason=defect.reason,
                )
                return None
            raise StoreCorrupt(ref.path, line.number, self.expected, defect.reason) from None
        except SchemaTooNew as newer:
            raise StoreIncompatible.schema_too_new(ref.path, line.number, newer.version) from None
