"""Reading the newest records of a live store, once or by following it across rotations.

Readers take no lock and never write. A final line that is incomplete (being written, or torn by
a crash the service will cut at its next start) is not shown; any other damaged line raises
``StoreCorrupt``, as recovery would.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from weltklassebot.state.codec import LineDefect, Record, SchemaTooNew, decode_line
from weltklassebot.state.errors import StoreCorrupt, StoreIncompatible, StoreUnusable
from weltklassebot.state.segment import SegmentRef, iter_lines, list_directory


@dataclass(frozen=True, slots=True)
class TailResult:
    """The last records, oldest first, and the skipped incomplete final line, if any."""

    records: list[Record]
    incomplete: str | None


def last_records(directory: Path, count: int) -> TailResult:
    """Return the last ``count`` records, reading segments newest first until enough."""
    segments = list_directory(directory).segments
    collected: list[Record] = []
    incomplete: str | None = None
    for position, ref in enumerate(reversed(segments)):
        if len(collected) >= count:
            break
        records: list[Record] = []
        for line in iter_lines(ref.path):
            try:
                if not line.complete:
                    raise LineDefect("the line has no newline")
                records.append(decode_line(line.raw))
            except LineDefect as defect:
                if position == 0 and line.last:
                    incomplete = f"{ref.path.name} line {line.number}: {defect.reason}"
                    break
                expected = _expected(ref, records)
                raise StoreCorrupt(ref.path, line.number, expected, defect.reason) from None
            except SchemaTooNew as newer:
                raise StoreIncompatible.schema_too_new(
                    ref.path, line.number, newer.version
                ) from None
        collected[:0] = records
    return TailResult(collected[-count:] if count else [], incomplete)


class SegmentFollower:
    """Yields the records appended after a given sequence number, across segment rotations."""

    def __init__(self, directory: Path, after_seq: int) -> None:
        self.directory = directory
        self.next_seq = after_seq + 1
        self.skipped = 0  # records removed by retention before they could be read
        self._segment: SegmentRef | None = None
        self._offset = 0
        self._line = 0

    def poll(self) -> list[Record]:
        """Return the complete records written since the last poll (possibly none)."""
        found: list[Record] = []
        while True:
            if self._segment is None and not self._choose_segment():
                return found
            progressed = self._read_new(found)
            if progressed:
                continue
            if not self._advance_segment():
                return found

    def _choose_segment(self) -> bool:
        segments = list_directory(self.directory).segments
        if not segments:
            return False
        candidates = [ref for ref in segments if ref.first_seq <= self.next_seq]
        if candidates:
            self._segment = candidates[-1]
        else:
            self._segment = segments[0]
            self.skipped += segments[0].first_seq - self.next_seq
            self.next_seq = segments[0].first_seq
        self._offset = 0
        self._line = 0
        return True

    def _advance_segment(self) -> bool:
        segment = self._segment
        assert segment is not None
        segments = list_directory(self.directory).segments
        later = [ref for ref in segments if ref.first_seq > segment.first_seq]
        if not later or (later[0].first_seq > self.next_seq and segment.path.exists()):
            return False  # the writer is still on this segment
        self._segment = None
        return self._choose_segment()

    def _read_new(self, found: list[Record]) -> bool:
        segment = self._segment
        assert segment is not None
        try:
            with open(segment.path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size < self._offset:
                    raise StoreUnusable(
                        self.directory,
                        f"{segment.path.name} became shorter while it was followed (a repair?)",
                        "Start `state tail --follow` again.",
                    )
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            self._segment = None  # removed by retention: move on to what is there now
            return self._choose_segment()
        lines = data.split(b"\n")
        consumed = 0
        for index, raw in enumerate(lines[:-1]):  # the part after the last newline is incomplete
            number = self._line + 1
            try:
                record = decode_line(raw)
            except LineDefect as defect:
                if index == len(lines) - 2 and not lines[-1]:
                    break  # a damaged final line: torn, cut by the service at its next start
                raise StoreCorrupt(segment.path, number, self.next_seq, defect.reason) from None
            except SchemaTooNew as newer:
                raise StoreIncompatible.schema_too_new(
                    segment.path, number, newer.version
                ) from None
            if record.seq >= self.next_seq:
                if record.seq != self.next_seq:
                    raise StoreCorrupt(
                        segment.path,
                        number,
                        self.next_seq,
                        f"sequence number {record.seq} found where {self.next_seq} was expected",
                    )
                found.append(record)
                self.next_seq += 1
            consumed += len(raw) + 1
            self._line = number
        self._offset += consumed
        return consumed > 0


def _expected(ref: SegmentRef, records: list[Record]) -> int:
    return records[-1].seq + 1 if records else ref.first_seq
