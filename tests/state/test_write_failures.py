"""Write failures: ENOSPC, EACCES, EROFS, EIO through the FileOps seam and a real small tmpfs.

Every failure raises ``StoreWriteError`` (exit 3), is counted and logged, leaves what was written
intact (the segment is cut back to its last good length) and does not consume the sequence number.
"""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.tmpfs import mounted_tmpfs
from weltklassebot.errors import RuntimeFailure
from weltklassebot.state.jsonl_store import JsonlStore, StoreWriteError, recover

from .support import (
    CountingState,
    FaultyOps,
    config,
    fill_records,
    fill_until_rotation_due,
    open_store,
    segment_files,
)

BIG = config(max_segment_bytes=1 << 20)


def _store_with_records(
    directory: Path, ops: FaultyOps, n: int = 3
) -> tuple[JsonlStore, CountingState]:
    store, state = open_store(directory, cfg=BIG, ops=ops)
    fill_records(store, state, n)
    return store, state


@pytest.mark.parametrize(
    ("code", "hint"),
    [(errno.ENOSPC, "Free space"), (errno.EACCES, "write access"), (errno.EROFS, "read-only")],
)
def test_append_with_failing_write_raises_cuts_back_and_keeps_sequence(
    store_dir: Path, code: int, hint: str, logs: list[dict[str, Any]]
) -> None:
    ops = FaultyOps(code, partial=True)
    store, state = _store_with_records(store_dir, ops)
    segment = segment_files(store_dir)[0]
    before = segment.read_bytes()

    ops.fail["write"] = 1
    with pytest.raises(StoreWriteError) as caught:
        fill_records(store, state, 1)

    error = caught.value
    assert isinstance(error, RuntimeFailure)
    assert error.exit_code == 3
    assert error.errno == code
    assert error.seq == 5
    assert "sequence 5 was not used" in error.message
    assert hint in error.message
    assert segment.name in error.message
    assert "\n" not in error.message
    assert store.write_errors == 1
    assert segment.read_bytes() == before  # the half-written record is gone
    assert any(e["event"] == "state_write_failed" and e["log_level"] == "error" for e in logs)

    assert fill_records(store, state, 1) == [5]  # retried with the same sequence number
    store.close()
    result = recover(store_dir)
    assert (result.next_seq, result.torn_dropped) == (6, 0)


def test_append_with_failing_fsync_cuts_back_the_unsynced_record(store_dir: Path) -> None:
    ops = FaultyOps(errno.EIO)
    store, state = _store_with_records(store_dir, ops)
    size = segment_files(store_dir)[0].stat().st_size
    ops.fail["fsync"] = 1
    with pytest.raises(StoreWriteError, match="EIO"):
        fill_records(store, state, 1)
    assert segment_files(store_dir)[0].stat().st_size == size
    assert store.next_seq == 5
    store.close()


def test_append_when_cut_back_also_fails_retries_it_before_next_write(store_dir: Path) -> None:
    ops = FaultyOps(errno.EROFS, partial=True)
    store, state = _store_with_records(store_dir, ops)
    segment = segment_files(store_dir)[0]
    before = segment.read_bytes()

    ops.fail["write"] = 1
    ops.fail["truncate"] = 2  # the cut-back after the failed write, and the first retry
    with pytest.raises(StoreWriteError):
        fill_records(store, state, 1)
    assert not store.writable
    assert len(segment.read_bytes()) > len(before)  # half a record is still there

    with pytest.raises(StoreWriteError, match="cut back"):
        fill_records(store, state, 1)
    assert store.write_errors == 2

    assert fill_records(store, state, 1) == [5]
    store.close()
    assert segment.read_bytes().startswith(before)
    result = recover(store_dir)
    assert (result.next_seq, result.torn_dropped) == (6, 0)


def test_append_with_failing_batch_flush_keeps_earlier_buffered_records(store_dir: Path) -> None:
    ops = FaultyOps(errno.ENOSPC)
    store, state = open_store(
        store_dir, cfg=config(batch_records=3, max_segment_bytes=1 << 20), ops=ops
    )
    fill_records(store, state, 1)
    fill_records(store, state, 2, durable=False)  # seqs 3, 4 buffered
    ops.fail["write"] = 1
    with pytest.raises(StoreWriteError) as caught:
        fill_records(store, state, 1, durable=False)  # would fill the batch: 5 fails
    assert caught.value.seq == 5
    assert store.pending == 2
    assert store.next_seq == 5
    store.flush()
    store.close()
    assert [r.seq for r in recover(store_dir).records] == [2, 3, 4]


def test_flush_with_failure_keeps_buffer_and_close_still_releases(store_dir: Path) -> None:
    ops = FaultyOps(errno.ENOSPC)
    store, state = open_store(store_dir, cfg=config(batch_records=50), ops=ops)
    fill_records(store, state, 1)
    fill_records(store, state, 2, durable=False)
    ops.fail["write"] = 2
    with pytest.raises(StoreWriteError):
        store.flush()
    assert store.pending == 2
    with pytest.raises(StoreWriteError):
        store.close()
    again, _ = open_store(store_dir)  # the lock was released
    assert again.recovery.next_seq == 3
    again.close()


@pytest.mark.parametrize("failing", ["open_new", "write", "fsync", "rename"])
def test_rotation_with_failure_leaves_no_new_segment_and_consumes_nothing(
    store_dir: Path, failing: str
) -> None:
    ops = FaultyOps(errno.ENOSPC)
    store, state = open_store(store_dir, cfg=config(max_segment_bytes=500), ops=ops)
    fill_until_rotation_due(store, state)
    names = sorted(p.name for p in store_dir.iterdir())
    rotations, next_seq = store.rotations, store.next_seq
    ops.fail[failing] = 1
    with pytest.raises(StoreWriteError) as caught:
        fill_records(store, state, 1)
    assert caught.value.seq == next_seq
    assert sorted(p.name for p in store_dir.iterdir()) == names  # no segment, no leftover
    assert store.rotations == rotations
    assert store.next_seq == next_seq

    fill_records(store, state, 1)
    store.close()
    result = recover(store_dir)
    assert result.checkpoint is not None
    assert result.checkpoint["count"] + len(result.records) == state.count


def test_rotation_with_failing_directory_sync_takes_new_segment_back(store_dir: Path) -> None:
    ops = FaultyOps(errno.EIO)
    store, state = open_store(store_dir, cfg=config(max_segment_bytes=400), ops=ops)
    fill_until_rotation_due(store, state)
    count = len(segment_files(store_dir))
    ops.fail["fsync_dir"] = 1
    with pytest.raises(StoreWriteError, match="sync the directory"):
        fill_records(store, state, 1)
    assert len(segment_files(store_dir)) == count
    fill_records(store, state, 3)
    store.close()
    result = recover(store_dir)
    assert result.checkpoint is not None
    assert result.checkpoint["count"] + len(result.records) == state.count


def test_rotation_with_failing_directory_sync_and_unlink_adopts_new_segment(
    store_dir: Path,
) -> None:
    ops = FaultyOps(errno.EIO)
    store, state = open_store(store_dir, cfg=config(max_segment_bytes=400), ops=ops)
    fill_until_rotation_due(store, state)
    count = len(segment_files(store_dir))
    ops.fail["fsync_dir"] = 1
    ops.fail["unlink"] = 1
    with pytest.raises(StoreWriteError):
        fill_records(store, state, 1)
    assert len(segment_files(store_dir)) == count + 1  # the new, valid segment is kept
    fill_records(store, state, 2)
    store.close()
    result = recover(store_dir)
    assert result.checkpoint is not None
    assert result.checkpoint["count"] + len(result.records) == state.count


def test_prune_with_failing_unlink_is_counted_and_not_raised(
    store_dir: Path, logs: list[dict[str, Any]]
) -> None:
    ops = FaultyOps(errno.EACCES)
    store, state = open_store(
        store_dir, cfg=config(max_segment_bytes=400, retain_segments=1), ops=ops
    )
    while store.rotations < 2:
        fill_records(store, state, 1)
    ops.fail["unlink"] = 1
    rotations = store.rotations
    while store.rotations == rotations:
        fill_records(store, state, 1)
    assert store.prune_errors == 1
    assert store.write_errors == 0
    assert any(e["event"] == "state_prune_failed" for e in logs)
    while store.rotations == rotations + 1:
        fill_records(store, state, 1)
    store.close()
    assert len(segment_files(store_dir)) == 2  # caught up at the next rotation


def test_open_with_unwritable_segment_opens_read_only_and_recovers(store_dir: Path) -> None:
    store, state = open_store(store_dir)
    fill_records(store, state, 2)
    store.close()

    ops = FaultyOps(errno.EACCES)
    ops.fail["open_append"] = 1
    store, state = open_store(store_dir, state, ops=ops)
    assert not store.writable
    assert store.open_error is not None
    assert store.open_error.errno == errno.EACCES
    assert store.write_errors == 1
    assert store.recovery.next_seq == 4

    assert fill_records(store, state, 1) == [4]  # preparation retried and now succeeds
    assert store.writable
    store.close()


# -- a real filesystem that fills up or is read-only ----------------------------------------------


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs, mounted for the test (root only; skipped with the reason otherwise)."""
    with mounted_tmpfs(tmp_path / "mnt", "size=64k,mode=0750") as target:
        yield target


def _remount(target: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(target)], check=True, capture_output=True)


def test_append_on_full_tmpfs_raises_enospc_and_keeps_acknowledged_records(tmpfs: Path) -> None:
    ballast = tmpfs / "ballast"
    ballast.write_bytes(b"\0" * 16 * 1024)
    directory = tmpfs / "state"
    store, _state = open_store(directory, cfg=config(max_segment_bytes=1 << 20))
    acknowledged: list[int] = []
    big = {"blob": "z" * 700}

    def fill_the_disk() -> None:
        for index in range(1000):
            acknowledged.append(store.append("order", big, index))

    with pytest.raises(StoreWriteError) as caught:
        fill_the_disk()
    error = caught.value
    assert error.errno == errno.ENOSPC
    assert store.write_errors == 1
    failed_seq = acknowledged[-1] + 1
    assert error.seq == failed_seq

    segment = segment_files(directory)[0]
    result = recover(directory)
    assert (result.next_seq, result.torn_dropped) == (failed_seq, 0)
    assert [r.seq for r in result.records] == acknowledged
    assert segment.stat().st_size == sum(
        len(line) + 1 for line in segment.read_bytes().splitlines()
    )

    with pytest.raises(StoreWriteError):  # still full: fails again, still nothing consumed
        store.append("order", big, 0)
    ballast.unlink()
    assert store.append("order", big, 0) == failed_seq
    store.close()
    assert recover(directory).next_seq == failed_seq + 1


def test_append_on_read_only_remount_raises_erofs_then_resumes(tmpfs: Path) -> None:
    directory = tmpfs / "state"
    store, state = open_store(directory, cfg=BIG)
    fill_records(store, state, 3)
    store.close()

    _remount(tmpfs, "ro")
    try:
        store, state = open_store(directory, state, cfg=BIG)
        assert not store.writable
        assert store.open_error is not None
        assert store.open_error.errno == errno.EROFS
        assert store.recovery.next_seq == 5
        with pytest.raises(StoreWriteError) as caught:
            fill_records(store, state, 1)
        assert caught.value.errno == errno.EROFS
        assert "read-only" in caught.value.message
        assert store.write_errors == 2
    finally:
        _remount(tmpfs, "rw")
    assert fill_records(store, state, 1) == [5]
    store.close()
    result = recover(directory)
    assert (result.next_seq, result.torn_dropped, len(result.records)) == (6, 0, 4)
