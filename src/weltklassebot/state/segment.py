"""Segment files: their names, the directory listing, and reading their lines.

A segment is named after the sequence number of its first record, zero-padded to 20 digits
(``segment-00000000000000000001.jsonl``), so the directory listing alone orders the segments and
names the active (newest) one; nothing has to be opened to find it.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from weltklassebot.state.errors import StoreUnusable, describe_os_error

SEGMENT_SUFFIX: Final = ".jsonl"
TEMPORARY_SUFFIX: Final = ".tmp"
LOCK_NAME: Final = "store.lock"
BACKUP_PREFIX: Final = "repair-backup-"
_SEGMENT_RE: Final = re.compile(r"segment-(\d{20})\.jsonl")
_READ_CHUNK: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class SegmentRef:
    """A segment file and the sequence number its name says it starts with."""

    first_seq: int
    path: Path


@dataclass(frozen=True, slots=True)
class DirectoryListing:
    """What a state directory holds: segments in order, leftovers and foreign names."""

    segments: tuple[SegmentRef, ...]
    temporaries: tuple[Path, ...]
    others: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a segment: 1-based number, byte offset, bytes without the newline."""

    number: int
    offset: int
    raw: bytes
    complete: bool
    last: bool

    @property
    def end(self) -> int:
        """Byte offset just after this line (and its newline, when it has one)."""
        return self.offset + len(self.raw) + (1 if self.complete else 0)


def segment_name(first_seq: int) -> str:
    """Return the file name of the segment whose first record has sequence ``first_seq``."""
    return f"segment-{first_seq:020d}{SEGMENT_SUFFIX}"


def list_directory(directory: Path) -> DirectoryListing:
    """List ``directory``; raise ``StoreUnusable`` when it is missing or cannot be read."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        raise StoreUnusable(
            directory,
            "the state directory does not exist",
            "Check the path (or WELTKLASSE_STATE_DIR); the service creates it on first start.",
        ) from None
    except NotADirectoryError:
        raise StoreUnusable(
            directory,
            "the path is not a directory",
            "Point the command at the state directory, not at a file inside it.",
        ) from None
    except OSError as exc:
        raise StoreUnusable(
            directory,
            f"the state directory cannot be listed: {describe_os_error(exc)}",
            "Run the command as the service user, or fix the directory's permissions.",
        ) from None
    segments: list[SegmentRef] = []
    temporaries: list[Path] = []
    others: list[str] = []
    for name in sorted(names):
        match = _SEGMENT_RE.fullmatch(name)
        if match is not None:
            segments.append(SegmentRef(int(match.group(1)), directory / name))
        elif name.endswith(SEGMENT_SUFFIX + TEMPORARY_SUFFIX) and name.startswith("segment-"):
            temporaries.append(directory / name)
        elif name != LOCK_NAME:
            others.append(name)
    segments.sort(key=lambda ref: ref.first_seq)
    return DirectoryListing(tuple(segments), tuple(temporaries), tuple(others))


def iter_lines(path: Path) -> Iterator[Line]:
    """Yield the lines of the segment at ``path``; the last may lack its newline (torn)."""
    try:
        handle = open(path, "rb", buffering=_READ_CHUNK)  # noqa: SIM115 - closed in finally
    except OSError as exc:
        raise _unreadable(path, exc) from None
    try:
        yield from _lines(handle, os.fstat(handle.fileno()).st_size)
    except OSError as exc:
        raise _unreadable(path, exc) from None
    finally:
        handle.close()


def lines_of_bytes(data: bytes) -> Iterator[Line]:
    """The lines of a segment's bytes held in memory (a segment a repair is about to write)."""
    return _lines(io.BytesIO(data), len(data))


def _lines(raws: Iterable[bytes], size: int) -> Iterator[Line]:
    offset = 0
    for number, raw in enumerate(raws, start=1):
        complete = raw.endswith(b"\n")
        body = raw[:-1] if complete else raw
        end = offset + len(raw)
        yield Line(number, offset, body, complete, end >= size)
        offset = end


def _unreadable(path: Path, exc: OSError) -> StoreUnusable:
    return StoreUnusable(
        path.parent,
        f"segment {path.name} cannot be read: {describe_os_error(exc)}",
        "Run the command as the service user, or fix the file's permissions; "
        "if the disk reports errors (dmesg), restore the directory from backup.",
    )
