"""The high-water mark: the last sequence number the store has acknowledged.

A record is *acknowledged* once ``append`` has returned for it (durable records) or its batch has
been written and synced. Right after every such sync the writer overwrites ``store.mark`` with the
highest acknowledged sequence number. Recovery compares the mark with what the segments hold: a
record at or below the mark that is missing or fails its checksum is damage to an acknowledged
record (corruption, exit 1), never a torn tail; only what lies above the mark may be dropped as a
torn write.

The mark is written *after* the data it names is synced, so it never runs ahead of the data. It
is rewritten in place (one small ``pwrite``, no extra ``fsync`` on the hot path: a process crash
keeps the page cache, so the mark survives ``kill -9`` exactly); it is synced at open, rotation
and close. After a power loss it can lag behind the data, which only narrows what is checked,
never reports damage that is not there.

File format: one line of ASCII, padded with spaces to ``MARK_BYTES`` (so every rewrite is the
same size and overwrites the whole previous mark), checksummed like a record::

    {"seq":N,"v":1,"sha256":"<sha256 of {"seq":N,"v":1}>"}<spaces>\\n
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

MARK_NAME: Final = "store.mark"
MARK_BYTES: Final = 128
MARK_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class MarkReading:
    """What ``store.mark`` says: the acknowledged sequence number, or why it says nothing."""

    seq: int | None
    problem: str | None
    """``None`` when the mark is present and valid; else why it cannot be used."""
    exists: bool


def encode_mark(seq: int) -> bytes:
    """Return the mark file's exact bytes for acknowledged sequence ``seq``."""
    body = json.dumps({"seq": seq, "v": MARK_VERSION}, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(body.encode("ascii")).hexdigest()
    text = body[:-1] + f',"sha256":"{digest}"}}'
    return text.encode("ascii").ljust(MARK_BYTES - 1, b" ") + b"\n"


def read_mark(directory: Path) -> MarkReading:
    """Read ``store.mark`` in ``directory`` without changing anything."""
    path = directory / MARK_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return MarkReading(None, "the high-water mark file store.mark is missing", False)
    except OSError as exc:
        return MarkReading(None, f"store.mark cannot be read ({exc.strerror or exc})", True)
    return MarkReading(*_parse(data), True)


def _parse(data: bytes) -> tuple[int | None, str | None]:
    damaged = "the high-water mark file store.mark is damaged"
    try:
        fields = json.loads(data.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        return None, damaged + " (not a JSON line)"
    if not isinstance(fields, dict) or set(fields) != {"seq", "v", "sha256"}:
        return None, damaged + " (unexpected fields)"
    seq, version = fields["seq"], fields["v"]
    if type(seq) is not int or seq < 0 or type(version) is not int:
        return None, damaged + " (bad field types)"
    if version > MARK_VERSION:
        return None, f"store.mark was written with version {version}, newer than this release"
    if encode_mark(seq) != data:
        return None, damaged + " (checksum mismatch)"
    return seq, None
