"""One state-store record as one line of bytes, and back (docs/state-store.md, Record format).

A record line is the canonical JSON of the record body with the checksum field spliced in before
the closing brace, then a newline::

    body = json.dumps({"kind", "payload", "seq", "ts", "v"}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    line = body[:-1] + ',"sha256":"' + sha256(body).hexdigest() + '"}' + "\\n"

The checksum covers the exact bytes of the body, so verifying a line needs no re-serialisation:
cut the fixed-length checksum suffix, put the ``}`` back and hash.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, NoReturn

SCHEMA_VERSION: Final = 1
CHECKPOINT_KIND: Final = "checkpoint"
QUARANTINE_KIND: Final = "quarantined"
"""Written only by ``state repair`` in place of records it removed; its payload names the
sequence numbers it stands for (``seq`` .. ``payload["through"]``) and why."""
STORE_KINDS: Final = frozenset({CHECKPOINT_KIND, QUARANTINE_KIND})
"""Kinds only the store itself writes: ``append`` refuses them."""
KNOWN_KINDS: Final = frozenset(
    {
        CHECKPOINT_KIND,
        QUARANTINE_KIND,
        "risk_transition",
        "fill",
        "order",
        "cursor",
        "operator_command",
        "run_started",
        "run_closed",
        "engine_state",
    }
)

_KIND_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
_SUFFIX_HEAD: Final = b',"sha256":"'
_DIGEST_LEN: Final = 64
_SUFFIX_LEN: Final = len(_SUFFIX_HEAD) + _DIGEST_LEN + 2  # ,"sha256":"<64 hex>"}
_HEX: Final = frozenset(b"0123456789abcdef")
_BODY_KEYS: Final = frozenset({"kind", "payload", "seq", "ts", "v"})
# With sorted keys a body starts with its kind and ends with seq, ts and v: a verified line can be
# read without parsing its payload.
_HEAD_RE: Final = re.compile(rb'\{"kind":"([a-z][a-z0-9_]{0,63})","payload":\{')
_APPARENT_KIND_RE: Final = re.compile(rb'"kind":"([a-z][a-z0-9_]{0,63})"')
_APPARENT_SEQ_RE: Final = re.compile(rb'"seq":([1-9][0-9]{0,18})[,}]')
_TAIL_RE: Final = re.compile(rb'\},"seq":([1-9][0-9]*),"ts":(0|[1-9][0-9]*),"v":([1-9][0-9]*)\}\Z')


@dataclass(frozen=True, slots=True)
class Record:
    """One verified record: sequence number, caller's timestamp, kind and JSON payload."""

    seq: int
    ts_ns: int
    kind: str
    payload: dict[str, Any]
    version: int = SCHEMA_VERSION


class LineDefect(Exception):
    """A line that is not a valid record; ``reason`` says why in words for an operator."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SchemaTooNew(Exception):
    """A line written by a newer release (schema version above ours)."""

    def __init__(self, version: int) -> None:
        super().__init__(f"schema version {version}")
        self.version = version


def check_kind_name(name: str) -> str:
    """Return ``name`` if it is a valid kind name (lower-case identifier, at most 64 chars)."""
    if not isinstance(name, str) or _KIND_RE.fullmatch(name) is None:
        raise ValueError(
            f"record kind {name!r} is not a valid name: use a lower-case identifier of at most "
            "64 characters (letters, digits, underscore, starting with a letter)"
        )
    return name


def normalise_kinds(kinds: Iterable[str]) -> frozenset[str]:
    """Return the kind registry for ``kinds``, always including the store's own kinds."""
    if isinstance(kinds, str):
        raise TypeError("kinds must be a collection of names, not one string")
    return frozenset(check_kind_name(k) for k in kinds) | STORE_KINDS


def encode_record(seq: int, ts_ns: int, kind: str, payload: dict[str, Any]) -> bytes:
    """Return the record line (with its trailing newline) for the given fields."""
    try:
        body = json.dumps(
            {"kind": kind, "payload": payload, "seq": seq, "ts": ts_ns, "v": SCHEMA_VERSION},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
            allow_nan=False,
        ).encode("ascii")
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"payload of a {kind!r} record is not canonical JSON ({exc}); use str keys and "
            "str/int/float/bool/None/list/dict values, no NaN or infinity"
        ) from exc
    digest = hashlib.sha256(body).hexdigest().encode("ascii")
    return b"".join((body[:-1], _SUFFIX_HEAD, digest, b'"}\n'))


def decode_line(raw: bytes, *, checksum_verified: bool = False) -> Record:
    """Return the record in ``raw`` (one line, its newline already removed).

    Raises ``LineDefect`` when the line is damaged and ``SchemaTooNew`` when it was written by a
    newer release. Kinds are not checked here: the registry belongs to the reader.
    ``checksum_verified`` skips hashing again a line ``verify_line`` already accepted.
    """
    body = raw[:-_SUFFIX_LEN] + b"}" if checksum_verified else _verified_body(raw)
    try:
        fields = json.loads(body)
    except ValueError:
        _raise_defect(raw, "the checksummed body is not valid JSON")
    if not isinstance(fields, dict) or fields.keys() != _BODY_KEYS:
        _raise_defect(raw, "the record does not have exactly the fields kind, payload, seq, ts, v")
    version, seq, ts_ns = fields["v"], fields["seq"], fields["ts"]
    kind, payload = fields["kind"], fields["payload"]
    if not _is_int(version) or version < 1:
        _raise_defect(raw, f"schema version {version!r} is not a positive integer")
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(version)
    if not _is_int(seq) or seq < 1:
        _raise_defect(raw, f"sequence number {seq!r} is not a positive integer")
    if not _is_int(ts_ns) or ts_ns < 0:
        _raise_defect(raw, f"timestamp {ts_ns!r} is not a non-negative integer of nanoseconds")
    if not isinstance(kind, str) or _KIND_RE.fullmatch(kind) is None:
        _raise_defect(raw, f"kind {kind!r} is not a valid kind name")
    if not isinstance(payload, dict):
        _raise_defect(raw, "the payload is not a JSON object")
    return Record(seq=seq, ts_ns=ts_ns, kind=kind, payload=payload, version=version)


def verify_line(raw: bytes) -> tuple[int, str]:
    """Return ``(seq, kind)`` of the line ``raw`` after checking its checksum and layout.

    The payload is not parsed: for records recovery will not return (those before the last
    checkpoint) the checksum is the proof that the bytes are the ones written. Raises what
    ``decode_line`` raises.
    """
    body = _verified_body(raw)
    head = _HEAD_RE.match(body)
    tail = _TAIL_RE.search(body)
    if head is None or tail is None:
        record = decode_line(raw)  # names the precise defect, or accepts an unusual layout
        return record.seq, record.kind
    version = int(tail.group(3))
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(version)
    return int(tail.group(1)), head.group(1).decode("ascii")


def _verified_body(raw: bytes) -> bytes:
    if len(raw) <= _SUFFIX_LEN or not raw.endswith(b'"}'):
        _raise_defect(raw, "the line does not end with a checksum field")
    head = raw[-_SUFFIX_LEN : -_SUFFIX_LEN + len(_SUFFIX_HEAD)]
    digest = raw[-_DIGEST_LEN - 2 : -2]
    if head != _SUFFIX_HEAD or not _HEX.issuperset(digest):
        _raise_defect(raw, "the line does not end with a checksum field")
    body = raw[:-_SUFFIX_LEN] + b"}"
    if hashlib.sha256(body).hexdigest().encode("ascii") != digest:
        # A line in this layout whose checksum fails is damaged, whatever its "v" now says:
        # a newer release's records verify (the checksum covers whatever body they have).
        raise LineDefect("checksum mismatch (the line was changed after it was written)")
    return body


def _is_int(value: object) -> bool:
    return type(value) is int


def _raise_defect(raw: bytes, reason: str) -> NoReturn:
    # A layout this release does not know may still say which version wrote it: report that
    # instead of a damaged line, so an old binary on a new store says "upgrade", not "corrupt".
    try:
        fields = json.loads(raw)
    except ValueError:
        fields = None
    if isinstance(fields, dict):
        version = fields.get("v")
        if type(version) is int and version > SCHEMA_VERSION:
            raise SchemaTooNew(version)
    raise LineDefect(reason)


def apparent_fields(raw: bytes) -> tuple[str | None, int | None]:
    """Best-effort ``(kind, seq)`` read from a damaged line, for operators' eyes only.

    A damaged line cannot be trusted, so these are never used to decide anything; ``state
    repair`` shows them so that an operator sees what was probably lost.
    """
    kind = _APPARENT_KIND_RE.search(raw)
    seq = _APPARENT_SEQ_RE.search(raw)
    return (
        None if kind is None else kind.group(1).decode("ascii"),
        None if seq is None else int(seq.group(1)),
    )
