"""Record encoding: the exact bytes of a line, checksum verification, version and kind checks."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weltklassebot.state.codec import (
    SCHEMA_VERSION,
    LineDefect,
    SchemaTooNew,
    check_kind_name,
    decode_line,
    encode_record,
    normalise_kinds,
    verify_line,
)

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)
PAYLOADS = st.dictionaries(st.text(), JSON_VALUES, max_size=6)


def test_encode_record_with_known_fields_gives_documented_bytes() -> None:
    body = b'{"kind":"fill","payload":{"a":"x","b":1},"seq":1,"ts":5,"v":1}'
    digest = hashlib.sha256(body).hexdigest()

    line = encode_record(1, 5, "fill", {"b": 1, "a": "x"})

    assert line == body[:-1] + b',"sha256":"' + digest.encode() + b'"}\n'
    assert json.loads(line)["sha256"] == digest
    # the example in docs/state-store.md, pinned
    assert digest == "2ee629f50e219c158e6affb41b30ac3d099892db6462a507729870ca1ac03c9b"


def test_encode_record_with_non_ascii_text_escapes_it() -> None:
    line = encode_record(2, 0, "order", {"note": "Grüße €"})
    assert line.isascii()
    assert decode_line(line[:-1]).payload == {"note": "Grüße €"}


@settings(max_examples=200, deadline=None)
@given(
    seq=st.integers(1, 2**63),
    ts_ns=st.integers(0, 2**63),
    kind=st.sampled_from(["fill", "cursor", "risk_transition"]),
    payload=PAYLOADS,
)
def test_decode_line_with_any_encoded_record_round_trips(
    seq: int, ts_ns: int, kind: str, payload: dict[str, Any]
) -> None:
    line = encode_record(seq, ts_ns, kind, payload)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    record = decode_line(line[:-1])
    assert (record.seq, record.ts_ns, record.kind, record.payload) == (seq, ts_ns, kind, payload)
    assert record.version == SCHEMA_VERSION


@settings(max_examples=200, deadline=None)
@given(seq=st.integers(1, 2**63), ts_ns=st.integers(0, 2**63), payload=PAYLOADS)
def test_verify_line_with_any_encoded_record_reads_seq_and_kind(
    seq: int, ts_ns: int, payload: dict[str, Any]
) -> None:
    line = encode_record(seq, ts_ns, "risk_transition", payload)[:-1]
    assert verify_line(line) == (seq, "risk_transition")


def test_verify_line_with_payload_mimicking_the_tail_reads_the_real_fields() -> None:
    tricky = {"z": '},"seq":999,"ts":1,"v":1}', "kind": "checkpoint"}
    line = encode_record(5, 7, "order", tricky)[:-1]
    assert verify_line(line) == (5, "order")


@settings(max_examples=150, deadline=None)
@given(payload=PAYLOADS, position=st.integers(0, 10_000), flip=st.integers(1, 255))
def test_decode_line_with_any_changed_byte_raises_defect(
    payload: dict[str, Any], position: int, flip: int
) -> None:
    raw = bytearray(encode_record(7, 9, "fill", payload)[:-1])
    index = position % len(raw)
    raw[index] ^= flip
    with pytest.raises((LineDefect, SchemaTooNew)):
        decode_line(bytes(raw))
    with pytest.raises((LineDefect, SchemaTooNew)):
        verify_line(bytes(raw))


def test_decode_line_with_edited_payload_reports_checksum_mismatch() -> None:
    line = encode_record(3, 10, "fill", {"qty": "1"})[:-1]
    edited = line.replace(b'"qty":"1"', b'"qty":"2"')
    with pytest.raises(LineDefect, match="checksum mismatch"):
        decode_line(edited)


@pytest.mark.parametrize(
    "raw",
    [b"", b"{}", b"not json at all", b'{"kind":"fill"}', b'{"sha256":"00"}'],
)
def test_decode_line_with_garbage_raises_defect(raw: bytes) -> None:
    with pytest.raises(LineDefect):
        decode_line(raw)


def test_decode_line_with_future_version_raises_schema_too_new() -> None:
    body = json.dumps(
        {"kind": "fill", "payload": {}, "seq": 1, "ts": 0, "v": SCHEMA_VERSION + 1},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    digest = hashlib.sha256(body).hexdigest().encode()
    line = body[:-1] + b',"sha256":"' + digest + b'"}'
    with pytest.raises(SchemaTooNew) as caught:
        decode_line(line)
    assert caught.value.version == SCHEMA_VERSION + 1
    with pytest.raises(SchemaTooNew):
        verify_line(line)


def test_decode_line_with_future_layout_still_names_its_version() -> None:
    newer = json.dumps({"v": SCHEMA_VERSION + 1, "crc32": 12345, "seq": 1}).encode()
    with pytest.raises(SchemaTooNew):
        decode_line(newer)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seq", 0),
        ("seq", "1"),
        ("ts", -1),
        ("ts", 1.5),
        ("v", 0),
        ("kind", "Bad Kind"),
        ("payload", [1]),
    ],
)
def test_decode_line_with_invalid_field_raises_defect(field: str, value: object) -> None:
    fields: dict[str, object] = {"kind": "fill", "payload": {}, "seq": 1, "ts": 0, "v": 1}
    fields[field] = value
    body = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    line = body[:-1] + b',"sha256":"' + hashlib.sha256(body).hexdigest().encode() + b'"}'
    with pytest.raises(LineDefect):
        decode_line(line)


@pytest.mark.parametrize("payload", [{"x": float("nan")}, {"x": object()}, {"x": float("inf")}])
def test_encode_record_with_non_json_payload_raises_type_error(payload: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="not canonical JSON"):
        encode_record(1, 0, "fill", payload)


@pytest.mark.parametrize("name", ["", "Fill", "1fill", "fill-x", "a" * 65, "fill "])
def test_check_kind_name_with_invalid_name_raises(name: str) -> None:
    with pytest.raises(ValueError, match="not a valid name"):
        check_kind_name(name)


def test_normalise_kinds_with_any_registry_includes_the_store_kinds() -> None:
    assert normalise_kinds(["fill"]) == frozenset({"fill", "checkpoint", "quarantined"})
    with pytest.raises(TypeError):
        normalise_kinds("fill")
