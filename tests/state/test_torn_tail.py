"""Torn tails: cut the newest segment at every byte offset; recovery drops exactly the torn part."""

from __future__ import annotations

from pathlib import Path

import pytest

from weltklassebot.state.jsonl_store import StoreCorrupt, recover

from .support import CountingState, config, fill_records, open_store, segment_files, set_mark

CFG = config(max_segment_bytes=700, retain_segments=5)


def build_store(directory: Path) -> tuple[Path, bytes, list[int], CountingState]:
    """A store of several segments; return the newest segment, its bytes and its line ends."""
    store, state = open_store(directory, cfg=CFG)
    fill_records(store, state, 12)
    store.close()
    newest = segment_files(directory)[-1]
    data = newest.read_bytes()
    ends = [i + 1 for i, byte in enumerate(data) if byte == ord("\n")]
    assert len(ends) >= 3, "the newest segment needs a checkpoint and at least two records"
    return newest, data, ends, state


def test_recover_with_unacknowledged_tail_cut_at_every_offset_drops_only_torn_tail(
    store_dir: Path,
) -> None:
    newest, data, ends, _ = build_store(store_dir)
    first_seq = int(newest.name[8:28])
    acknowledged = first_seq + len(ends) - 3  # the last two records were still being written
    set_mark(store_dir, acknowledged)
    for offset in range(ends[-3], len(data) + 1):
        newest.write_bytes(data[:offset])
        result = recover(store_dir)
        complete = sum(1 for end in ends if end <= offset)
        at_boundary = offset in ends
        assert result.torn_dropped == (0 if at_boundary else 1), offset
        assert result.next_seq == first_seq + complete, offset
        if result.torn is not None:
            assert result.torn.offset == max(e for e in ends if e <= offset)
            assert result.torn.dropped_bytes == offset - result.torn.offset
        assert result.checkpoint_seq == first_seq
        assert len(result.records) == complete - 1


def test_recover_with_acknowledged_records_cut_at_every_offset_raises_corrupt(
    store_dir: Path,
) -> None:
    newest, data, _ends, _ = build_store(store_dir)
    for offset in range(len(data)):  # 0 and 10 bytes included: nothing acknowledged may vanish
        newest.write_bytes(data[:offset])
        with pytest.raises(StoreCorrupt, match="acknowledged") as caught:
            recover(store_dir)
        assert f"state repair {store_dir}" in caught.value.message, offset
    newest.write_bytes(data)
    assert recover(store_dir).torn_dropped == 0


def test_open_with_unacknowledged_tail_cut_at_every_offset_appends_cleanly(
    store_dir: Path,
) -> None:
    newest, data, ends, state = build_store(store_dir)
    first_seq = int(newest.name[8:28])
    for offset in range(ends[-3], len(data) + 1):
        newest.write_bytes(data[:offset])
        set_mark(store_dir, first_seq + len(ends) - 3)
        kept = max(e for e in ends if e <= offset)
        store, _ = open_store(store_dir, CountingState(state.count, state.last), cfg=CFG)
        assert store.recovery.torn_dropped == (0 if offset == kept else 1)
        assert newest.read_bytes() == data[:kept]
        seq = store.append("order", {"after": offset}, 0)
        store.close()
        assert seq == store.recovery.next_seq
        after = recover(store_dir)
        assert (after.torn_dropped, after.next_seq, after.mark_seq) == (0, seq + 1, seq)
        assert after.records[-1].payload == {"after": offset}


def test_recover_with_damaged_last_line_is_torn_only_when_unacknowledged_and_incomplete(
    store_dir: Path,
) -> None:
    newest, data, ends, _ = build_store(store_dir)
    last_seq = int(newest.name[8:28]) + len(ends) - 1
    for position in range(ends[-2], ends[-1] - 1):  # every byte of the last line but its newline
        damaged = bytearray(data)
        damaged[position] ^= 0x01
        newest.write_bytes(bytes(damaged))
        set_mark(store_dir, last_seq)  # acknowledged: damage, never a torn tail
        with pytest.raises(StoreCorrupt, match="acknowledged"):
            recover(store_dir)
        set_mark(store_dir, last_seq - 1)  # not acknowledged, but complete: not a torn write
        with pytest.raises(StoreCorrupt, match="damaged or foreign line"):
            recover(store_dir)
    newest.write_bytes(data[:-1])  # the same line without its newline: a write cut short
    result = recover(store_dir)
    assert result.torn_dropped == 1
    assert result.torn is not None
    assert result.torn.offset == ends[-2]


def test_recover_with_damaged_byte_in_earlier_line_raises_corrupt(store_dir: Path) -> None:
    newest, data, ends, _ = build_store(store_dir)
    line_number = len(ends) - 1
    for position in range(ends[-3], ends[-2] - 1):  # the last line but one, newline excluded
        damaged = bytearray(data)
        damaged[position] ^= 0x01
        newest.write_bytes(bytes(damaged))
        with pytest.raises(StoreCorrupt) as caught:
            recover(store_dir)
        assert (caught.value.path, caught.value.line) == (newest, line_number), position


def test_recover_with_torn_line_then_more_data_raises_corrupt(store_dir: Path) -> None:
    newest, data, ends, _ = build_store(store_dir)
    newest.write_bytes(data[: ends[-2] - 5] + b"\n" + data[ends[-2] :])
    with pytest.raises(StoreCorrupt, match=newest.name):
        recover(store_dir)
