"""Readers for ``state tail``: the last records, and following a live store across rotations."""

from __future__ import annotations

from pathlib import Path

import pytest

from weltklassebot.state.codec import encode_record
from weltklassebot.state.jsonl_store import StoreCorrupt
from weltklassebot.state.tail import SegmentFollower, last_records

from .support import config, fill_records, open_store, segment_files

CFG = config(max_segment_bytes=600, retain_segments=2)


def test_last_records_across_segments_returns_newest_in_order(store_dir: Path) -> None:
    store, state = open_store(store_dir, cfg=CFG)
    fill_records(store, state, 20)
    store.close()
    result = last_records(store_dir, 7)
    assert [r.seq for r in result.records] == list(range(store.next_seq - 7, store.next_seq))
    assert result.incomplete is None
    assert last_records(store_dir, 0).records == []
    everything = last_records(store_dir, 10_000).records
    assert everything[0].seq == int(segment_files(store_dir)[0].name[8:28])


def test_last_records_with_incomplete_final_line_skips_and_reports_it(store_dir: Path) -> None:
    store, state = open_store(store_dir, cfg=CFG)
    fill_records(store, state, 3)
    store.close()
    newest = segment_files(store_dir)[-1]
    newest.write_bytes(newest.read_bytes() + encode_record(99, 0, "fill", {})[:30])
    result = last_records(store_dir, 2)
    assert [r.seq for r in result.records] == [store.next_seq - 2, store.next_seq - 1]
    assert result.incomplete is not None
    assert newest.name in result.incomplete


def test_last_records_with_damaged_middle_line_raises_corrupt(store_dir: Path) -> None:
    store, state = open_store(store_dir, cfg=config(max_segment_bytes=1 << 20))
    fill_records(store, state, 4)
    store.close()
    segment = segment_files(store_dir)[0]
    segment.write_bytes(segment.read_bytes().replace(b'"n":2', b'"n":7'))
    with pytest.raises(StoreCorrupt, match="line 3"):
        last_records(store_dir, 10)


def test_follower_with_writer_rotating_and_pruning_sees_every_record_once(
    store_dir: Path,
) -> None:
    store, state = open_store(store_dir, cfg=CFG)
    fill_records(store, state, 2)
    follower = SegmentFollower(store_dir, store.next_seq - 1)
    assert follower.poll() == []
    seen: list[int] = []
    for _ in range(12):
        fill_records(store, state, 2)
        fill_records(store, state, 1, durable=False)
        seen.extend(r.seq for r in follower.poll())
    store.flush()
    seen.extend(r.seq for r in follower.poll())
    assert store.rotations > 3
    checkpoints = {int(p.name[8:28]) for p in store_dir.glob("segment-*.jsonl")}
    # every record after the starting point, checkpoints included, exactly once and in order
    assert seen == list(range(seen[0], store.next_seq))
    assert seen[0] == 4
    assert checkpoints <= set(seen)
    store.close()


def test_follower_behind_retention_skips_removed_records_and_counts_them(
    store_dir: Path,
) -> None:
    store, state = open_store(store_dir, cfg=config(max_segment_bytes=500, retain_segments=0))
    fill_records(store, state, 2)
    follower = SegmentFollower(store_dir, 0)
    fill_records(store, state, 30)  # the follower's segment is removed before it reads
    records = follower.poll()
    assert follower.skipped > 0
    assert [r.seq for r in records] == list(range(records[0].seq, store.next_seq))
    store.close()


def test_follower_with_partial_final_line_waits_for_it(store_dir: Path) -> None:
    store, state = open_store(store_dir, cfg=config(max_segment_bytes=1 << 20))
    fill_records(store, state, 1)
    store.close()
    segment = segment_files(store_dir)[0]
    line = encode_record(3, 0, "fill", {"late": True})
    follower = SegmentFollower(store_dir, 2)
    segment.write_bytes(segment.read_bytes() + line[:20])
    assert follower.poll() == []
    segment.write_bytes(segment.read_bytes() + line[20:])
    assert [r.payload for r in follower.poll()] == [{"late": True}]
