"""The store's contract: sequence numbers, durability batching, rotation, retention, recovery."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from weltklassebot.core.clock import SimClock
from weltklassebot.errors import ConfigError, RuntimeFailure, UnusableInput, VerdictFailed
from weltklassebot.state.codec import KNOWN_KINDS, SCHEMA_VERSION, encode_record
from weltklassebot.state.jsonl_store import (
    JsonlStore,
    RecoveryResult,
    StoreConfig,
    StoreCorrupt,
    StoreIncompatible,
    StoreLocked,
    StoreUnusable,
    StoreWriteError,
    recover,
)
from weltklassebot.state.segment import segment_name

from .support import (
    CountingState,
    config,
    fill_records,
    open_store,
    payload,
    segment_files,
    set_mark,
    ts_for,
)


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def test_append_with_fresh_store_starts_with_checkpoint_at_sequence_one(store_dir: Path) -> None:
    store, state = open_store(store_dir)
    assert store.recovery.checkpoint is None
    assert store.recovery.next_seq == 1

    seqs = fill_records(store, state, 3)
    store.close()

    assert seqs == [2, 3, 4]
    (segment,) = segment_files(store_dir)
    assert segment.name == segment_name(1)
    records = lines_of(segment)
    assert [r["seq"] for r in records] == [1, 2, 3, 4]
    assert records[0]["kind"] == "checkpoint"
    assert records[0]["payload"] == {"count": 0, "last": 0}
    assert all(r["v"] == SCHEMA_VERSION for r in records)


def test_open_with_existing_store_recovers_checkpoint_and_records_after_it(
    store_dir: Path,
) -> None:
    store, state = open_store(store_dir)
    fill_records(store, state, 40)
    store.close()
    assert store.rotations > 1

    again, _ = open_store(store_dir, CountingState())
    result = again.recovery
    again.close()

    assert isinstance(result, RecoveryResult)
    assert result.checkpoint is not None
    assert result.checkpoint_seq is not None
    # The checkpoint reflects every record before it; the records after it complete the state.
    assert result.checkpoint["last"] == result.checkpoint_seq - 1
    assert [r.seq for r in result.records] == list(range(result.checkpoint_seq + 1, store.next_seq))
    first_index = result.checkpoint["count"] + 1
    for index, record in enumerate(result.records, start=first_index):
        assert (record.payload, record.ts_ns, record.kind) == (
            payload(index),
            ts_for(index),
            "fill",
        )
    assert result.checkpoint["count"] + len(result.records) == 40
    assert result.torn_dropped == 0
    assert result.next_seq == store.next_seq


def test_append_after_reopen_continues_the_sequence(store_dir: Path) -> None:
    cfg = config(max_segment_bytes=1 << 20)
    store, state = open_store(store_dir, cfg=cfg)
    fill_records(store, state, 5)
    store.close()
    store, state = open_store(store_dir, state, cfg=cfg)
    assert fill_records(store, state, 2) == [7, 8]
    store.close()
    assert recover(store_dir).next_seq == 9


def test_append_with_durable_false_batches_until_count_or_flush(store_dir: Path) -> None:
    store, state = open_store(store_dir, cfg=config(batch_records=4, max_segment_bytes=1 << 20))
    fill_records(store, state, 1)  # creates the segment
    size = segment_files(store_dir)[0].stat().st_size

    fill_records(store, state, 3, durable=False)
    assert store.pending == 3
    assert segment_files(store_dir)[0].stat().st_size == size  # still in memory

    fill_records(store, state, 1, durable=False)  # the 4th: batch full, written and synced
    assert store.pending == 0
    assert recover(store_dir).next_seq == 7

    fill_records(store, state, 2, durable=False)
    store.flush()
    assert store.pending == 0
    assert recover(store_dir).next_seq == 9
    fill_records(store, state, 1, durable=False)
    store.close()
    assert recover(store_dir).next_seq == 10


def test_append_durable_writes_buffered_records_before_it_in_order(store_dir: Path) -> None:
    store, state = open_store(store_dir, cfg=config(batch_records=100, max_segment_bytes=1 << 20))
    fill_records(store, state, 2, durable=False)
    fill_records(store, state, 1, durable=True)
    assert store.pending == 0
    assert [r.seq for r in recover(store_dir).records] == [2, 3, 4]
    store.close()


def test_append_with_size_limit_rotates_without_splitting_records(store_dir: Path) -> None:
    cfg = config(max_segment_bytes=600, retain_segments=100)
    store, state = open_store(store_dir, cfg=cfg)
    fill_records(store, state, 60)
    store.close()

    segments = segment_files(store_dir)
    assert len(segments) > 5
    expected_seq = 1
    for segment in segments:
        data = segment.read_bytes()
        assert data.endswith(b"\n")
        assert len(data) <= 600
        records = lines_of(segment)
        assert segment.name == segment_name(records[0]["seq"])
        assert records[0]["kind"] == "checkpoint"
        assert records[0]["payload"]["last"] == records[0]["seq"] - 1
        for record in records:
            assert record["seq"] == expected_seq
            expected_seq += 1
    assert store.rotations == len(segments)


def test_append_with_record_larger_than_limit_writes_it_whole(store_dir: Path) -> None:
    store, _state = open_store(store_dir, cfg=config(max_segment_bytes=300))
    big = {"blob": "y" * 1000}
    store.append("order", big, 1)
    store.append("order", big, 2)
    store.close()
    segments = segment_files(store_dir)
    assert len(segments) == 2
    assert [r.payload for r in recover(store_dir).records] == [big]


def test_append_with_age_limit_on_event_clock_rotates(store_dir: Path) -> None:
    store, _ = open_store(
        store_dir, cfg=config(max_segment_age_ns=1_000, max_segment_bytes=1 << 20)
    )
    store.append("cursor", {"i": 0}, 10_000)
    store.append("cursor", {"i": 1}, 10_500)
    assert len(segment_files(store_dir)) == 1
    store.append("cursor", {"i": 2}, 11_000)  # 1 000 ns after the checkpoint's timestamp
    store.close()
    assert [p.name for p in segment_files(store_dir)] == [segment_name(1), segment_name(4)]


def test_append_with_age_limit_on_injected_clock_rotates(store_dir: Path) -> None:
    clock = SimClock(0)
    cfg = config(max_segment_age_ns=5_000, max_segment_bytes=1 << 20)
    store, _ = open_store(store_dir, cfg=cfg, clock=clock)
    store.append("cursor", {"i": 0}, 0)
    store.append("cursor", {"i": 1}, 0)
    clock.advance_to(4_999)
    store.append("cursor", {"i": 2}, 0)
    assert len(segment_files(store_dir)) == 1
    clock.advance_to(5_000)
    store.append("cursor", {"i": 3}, 0)
    store.close()
    assert len(segment_files(store_dir)) == 2


def test_append_with_age_limit_after_reopen_counts_from_the_checkpoint(store_dir: Path) -> None:
    cfg = config(max_segment_age_ns=1_000, max_segment_bytes=1 << 20)
    store, _ = open_store(store_dir, cfg=cfg)
    store.append("cursor", {}, 100)
    store.append("cursor", {}, 200)
    store.close()
    store, _ = open_store(store_dir, cfg=cfg)
    store.append("cursor", {}, 1_100)
    store.close()
    assert len(segment_files(store_dir)) == 2


def test_rotation_with_retention_keeps_that_many_old_segments(store_dir: Path) -> None:
    store, state = open_store(store_dir, cfg=config(max_segment_bytes=500, retain_segments=2))
    fill_records(store, state, 80)
    rotations = store.rotations
    store.close()

    segments = segment_files(store_dir)
    assert rotations > 5
    assert len(segments) == 3  # the active one and two older
    result = recover(store_dir)
    assert result.checkpoint is not None
    assert result.checkpoint["count"] + len(result.records) == 80  # nothing recovery needs is gone


def test_rotation_with_zero_retention_keeps_only_active_segment(store_dir: Path) -> None:
    store, state = open_store(store_dir, cfg=config(max_segment_bytes=500, retain_segments=0))
    fill_records(store, state, 30)
    store.close()
    assert len(segment_files(store_dir)) == 1
    assert recover(store_dir).next_seq == store.next_seq


def test_checkpoint_starts_new_segment_with_current_state(store_dir: Path) -> None:
    store, state = open_store(store_dir, cfg=config(max_segment_bytes=1 << 20))
    fill_records(store, state, 3)
    seq = store.checkpoint(ts_for(99))
    store.close()
    assert seq == 5
    result = recover(store_dir)
    assert (result.checkpoint, result.checkpoint_seq, result.records) == (
        {"count": 3, "last": 4},
        5,
        [],
    )


def test_append_with_unregistered_kind_raises_value_error(store_dir: Path) -> None:
    store, _ = open_store(store_dir)
    with pytest.raises(ValueError, match="not registered"):
        store.append("telemetry", {}, 0)
    with pytest.raises(ValueError, match="call checkpoint"):
        store.append("checkpoint", {}, 0)
    assert store.next_seq == 1
    store.close()


def test_append_with_bad_arguments_raises_and_consumes_nothing(store_dir: Path) -> None:
    store, _ = open_store(store_dir)
    store.append("fill", {}, 0)
    with pytest.raises(TypeError):
        store.append("fill", {}, 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.append("fill", {}, -1)
    with pytest.raises(TypeError):
        store.append("fill", [1], 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="canonical JSON"):
        store.append("fill", {"x": float("nan")}, 0)
    assert store.append("fill", {}, 0) == 3
    store.close()


def test_config_with_extra_kind_accepts_it_and_recovery_needs_it(store_dir: Path) -> None:
    cfg = config().with_kinds("telemetry")
    store = JsonlStore.open(store_dir, cfg, dict)
    store.append("telemetry", {"x": 1}, 0)
    store.close()

    with pytest.raises(StoreIncompatible, match="'telemetry'") as caught:
        JsonlStore.open(store_dir, config(), dict)
    assert isinstance(caught.value, UnusableInput)
    assert caught.value.exit_code == 2
    assert "not damaged" in caught.value.message


def test_open_with_future_schema_version_raises_incompatible(store_dir: Path) -> None:
    store, state = open_store(store_dir)
    fill_records(store, state, 2)
    store.close()
    segment = segment_files(store_dir)[-1]
    newer = json.dumps({"v": SCHEMA_VERSION + 1, "seq": 4, "layout": "new"}) + "\n"
    with segment.open("a") as handle:
        handle.write(newer)
    with pytest.raises(StoreIncompatible, match=f"schema version {SCHEMA_VERSION + 1}") as caught:
        open_store(store_dir)
    assert "line 4" in caught.value.message


def test_open_with_hand_edited_middle_line_raises_corrupt_naming_file_line_seq(
    store_dir: Path,
) -> None:
    store, state = open_store(store_dir, cfg=config(max_segment_bytes=1 << 20))
    fill_records(store, state, 5)
    store.close()
    segment = segment_files(store_dir)[0]
    data = segment.read_bytes().replace(b'"id":"fill-2"', b'"id":"fill-9"')
    segment.write_bytes(data)

    with pytest.raises(StoreCorrupt) as caught:
        open_store(store_dir)
    error = caught.value
    assert isinstance(error, VerdictFailed)
    assert error.exit_code == 1
    assert (error.path, error.line, error.seq) == (segment, 3, 3)
    assert segment.name in error.message
    assert "line 3" in error.message
    assert f"`python -m cli state repair {store_dir}`" in error.message
    assert "\n" not in error.message
    # the store was not touched and is not locked by the failed open
    assert segment.read_bytes() == data
    open_failure = pytest.raises(StoreCorrupt)
    with open_failure:
        open_store(store_dir)


def test_open_with_hand_edited_line_in_old_segment_raises_corrupt(store_dir: Path) -> None:
    store, state = open_store(store_dir, cfg=config(max_segment_bytes=600, retain_segments=10))
    fill_records(store, state, 30)
    store.close()
    oldest = segment_files(store_dir)[0]  # verified by checksum only, never parsed
    lines = oldest.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"pad":"', b'"pad":"y')
    oldest.write_bytes(b"".join(lines))
    with pytest.raises(StoreCorrupt, match="checksum mismatch") as caught:
        open_store(store_dir)
    assert (caught.value.path, caught.value.line) == (oldest, 2)


def test_open_with_unregistered_kind_in_old_segment_raises_incompatible(store_dir: Path) -> None:
    cfg = config(max_segment_bytes=600, retain_segments=10)
    store = JsonlStore.open(store_dir, cfg.with_kinds("telemetry"), dict)
    store.append("telemetry", {}, 0)
    for _ in range(20):
        store.append("fill", payload(1), 0)
    store.close()
    assert len(segment_files(store_dir)) > 3
    with pytest.raises(StoreIncompatible, match="telemetry"):
        JsonlStore.open(store_dir, cfg, dict)


def test_open_with_truncated_older_segment_raises_corrupt(store_dir: Path) -> None:
    store, state = open_store(store_dir, cfg=config(max_segment_bytes=600, retain_segments=10))
    fill_records(store, state, 30)
    store.close()
    older = segment_files(store_dir)[0]
    older.write_bytes(older.read_bytes()[:-20])
    with pytest.raises(StoreCorrupt, match=older.name):
        open_store(store_dir)


def test_open_with_missing_middle_segment_raises_corrupt(store_dir: Path) -> None:
    store, state = open_store(store_dir, cfg=config(max_segment_bytes=600, retain_segments=10))
    fill_records(store, state, 30)
    store.close()
    segments = segment_files(store_dir)
    segments[1].unlink()
    with pytest.raises(StoreCorrupt, match="a segment was removed") as caught:
        open_store(store_dir)
    assert caught.value.seq == int(segments[1].name[8:28])


def test_open_with_duplicated_line_raises_corrupt(store_dir: Path) -> None:
    store, state = open_store(store_dir, cfg=config(max_segment_bytes=1 << 20))
    fill_records(store, state, 3)
    store.close()
    segment = segment_files(store_dir)[0]
    lines = segment.read_bytes().splitlines(keepends=True)
    segment.write_bytes(b"".join([*lines[:3], lines[2], *lines[3:]]))
    with pytest.raises(StoreCorrupt, match="sequence number 3 repeats or goes back"):
        open_store(store_dir)


def test_open_with_segment_not_starting_with_checkpoint_raises_corrupt(store_dir: Path) -> None:
    store_dir.mkdir()
    (store_dir / segment_name(1)).write_bytes(encode_record(1, 0, "fill", {}))
    with pytest.raises(StoreCorrupt, match="not a checkpoint"):
        recover(store_dir)


def test_open_with_renamed_segment_raises_corrupt(store_dir: Path) -> None:
    store_dir.mkdir()
    (store_dir / segment_name(5)).write_bytes(encode_record(1, 0, "checkpoint", {}))
    with pytest.raises(StoreCorrupt, match="sequence number 1 repeats or goes back"):
        recover(store_dir)


def test_open_with_torn_last_line_drops_counts_and_cuts_it(
    store_dir: Path, logs: list[dict[str, Any]]
) -> None:
    store, state = open_store(store_dir, cfg=config(max_segment_bytes=1 << 20))
    fill_records(store, state, 4)
    store.close()
    segment = segment_files(store_dir)[0]
    good = segment.read_bytes()
    segment.write_bytes(good + encode_record(6, 0, "fill", payload(6))[:25])

    store, state = open_store(store_dir, state, cfg=config(max_segment_bytes=1 << 20))
    assert store.recovery.torn_dropped == 1
    assert store.torn_dropped == 1
    assert store.recovery.torn is not None
    assert (store.recovery.torn.line, store.recovery.torn.seq) == (6, 6)
    assert segment.read_bytes() == good  # cut back before any append
    assert store.recovery.next_seq == 6
    assert fill_records(store, state, 1) == [6]
    store.close()
    assert recover(store_dir).torn_dropped == 0
    assert any(
        e["event"] == "state_torn_tail_dropped" and e["log_level"] == "warning" for e in logs
    )


def test_open_with_complete_but_damaged_last_line_is_damage_when_acknowledged(
    store_dir: Path,
) -> None:
    store, state = open_store(store_dir, cfg=config(max_segment_bytes=1 << 20))
    fill_records(store, state, 3)
    store.close()
    segment = segment_files(store_dir)[0]
    data = bytearray(segment.read_bytes())
    data[-10] = ord("0") if data[-10] != ord("0") else ord("1")
    segment.write_bytes(bytes(data))
    with pytest.raises(StoreCorrupt, match="acknowledged record 4 damaged") as caught:
        recover(store_dir)
    assert caught.value.seq == 4
    set_mark(store_dir, 3)  # unacknowledged, but a complete damaged line is no torn write
    with pytest.raises(StoreCorrupt, match="damaged or foreign line"):
        recover(store_dir)


def test_open_with_newest_segment_holding_only_a_torn_checkpoint_replaces_it(
    store_dir: Path,
) -> None:
    store, state = open_store(store_dir, cfg=config(max_segment_bytes=1 << 20))
    fill_records(store, state, 3)
    store.close()
    torn = store_dir / segment_name(5)
    torn.write_bytes(encode_record(5, 0, "checkpoint", {"count": 3, "last": 4})[:40])

    result = recover(store_dir)
    assert (result.torn_dropped, result.next_seq, result.checkpoint_seq) == (1, 5, 1)

    store, state = open_store(store_dir, state, cfg=config(max_segment_bytes=1 << 20))
    assert not torn.exists()
    assert fill_records(store, state, 1) == [6]  # 5 is the new segment's checkpoint
    store.close()
    assert recover(store_dir).checkpoint_seq == 5


def test_open_with_leftover_temporary_removes_it(store_dir: Path) -> None:
    store, state = open_store(store_dir)
    fill_records(store, state, 2)
    store.close()
    leftover = store_dir / (segment_name(4) + ".tmp")
    leftover.write_bytes(b"half a checkpoint")
    assert recover(store_dir).temporaries == (leftover,)
    store, _ = open_store(store_dir)
    assert not leftover.exists()
    store.close()


def test_open_with_second_writer_raises_locked(store_dir: Path) -> None:
    store, _ = open_store(store_dir)
    with pytest.raises(StoreLocked, match=f"process {os.getpid()}") as caught:
        open_store(store_dir)
    assert isinstance(caught.value, RuntimeFailure)
    store.close()
    again, _ = open_store(store_dir)  # released on close
    again.close()


def test_open_with_file_instead_of_directory_raises_unusable(tmp_path: Path) -> None:
    target = tmp_path / "state"
    target.write_text("not a directory")
    with pytest.raises(StoreUnusable, match="not a directory") as caught:
        open_store(target)
    assert caught.value.exit_code == 2


def test_open_with_missing_directory_creates_it_without_world_write(tmp_path: Path) -> None:
    directory = tmp_path / "a" / "state"
    old = os.umask(0)
    try:
        store, state = open_store(directory)
        fill_records(store, state, 1)
        store.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o750
    assert stat.S_IMODE(directory.parent.stat().st_mode) == 0o750
    for path in directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_segment_bytes": 0},
        {"batch_records": 0},
        {"retain_segments": -1},
        {"max_segment_age_ns": 0},
        {"file_mode": 0o666},
        {"dir_mode": 0o777},
        {"kinds": ["Bad"]},
    ],
)
def test_store_config_with_invalid_value_raises_config_error(overrides: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        StoreConfig(**overrides)


def test_store_config_default_registry_holds_product_kinds() -> None:
    assert StoreConfig().kinds == KNOWN_KINDS
    assert {
        "checkpoint",
        "risk_transition",
        "fill",
        "order",
        "cursor",
        "operator_command",
        "run_started",
        "run_closed",
    } <= KNOWN_KINDS


def test_checkpoint_provider_returning_non_dict_raises_type_error(store_dir: Path) -> None:
    store = JsonlStore.open(store_dir, config(), list)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="provider returned list"):
        store.append("fill", {}, 0)
    store.close()


def test_close_then_append_raises(store_dir: Path) -> None:
    with JsonlStore.open(store_dir, config(), dict) as store:
        store.append("fill", {}, 0)
    store.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        store.append("fill", {}, 0)


def test_write_error_type_maps_to_runtime_failure() -> None:
    assert issubclass(StoreWriteError, RuntimeFailure)
    assert issubclass(StoreCorrupt, VerdictFailed)
    assert issubclass(StoreUnusable, UnusableInput)
