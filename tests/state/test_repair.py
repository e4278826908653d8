"""Repair: cut a damaged store at a sequence number, keeping a backup of everything removed."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from weltklassebot.errors import UsageError
from weltklassebot.state.jsonl_store import StoreCorrupt, StoreLocked, recover
from weltklassebot.state.repair import truncate_at

from .support import config, fill_records, open_store, segment_files

CFG = config(max_segment_bytes=700, retain_segments=10)


def build(directory: Path, n: int = 14) -> list[Path]:
    store, state = open_store(directory, cfg=CFG)
    fill_records(store, state, n)
    store.close()
    segments = segment_files(directory)
    assert len(segments) >= 3
    return segments


def damage(path: Path, line: int) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    lines[line - 1] = lines[line - 1].replace(b'"n":', b'"N":')
    path.write_bytes(b"".join(lines))


def test_truncate_at_damaged_record_keeps_backup_and_leaves_verified_store(
    store_dir: Path,
) -> None:
    segments = build(store_dir)
    middle = segments[1]
    originals = {p.name: p.read_bytes() for p in segments}
    damage(middle, 3)
    damaged_bytes = middle.read_bytes()
    with pytest.raises(StoreCorrupt) as caught:
        recover(store_dir)
    seq = caught.value.seq

    result = truncate_at(store_dir, seq, "20261124T000000Z")

    assert result.after.last_seq == seq - 1
    assert result.after.torn_dropped == 0
    assert result.backup == store_dir / f"repair-backup-{seq}-20261124T000000Z"
    assert [p.name for p in segment_files(store_dir)] == [segments[0].name, middle.name]
    kept = middle.read_bytes()
    assert damaged_bytes.startswith(kept)
    assert kept.count(b"\n") == 2
    # the backup holds the full cut segment and every later one, byte for byte
    assert (result.backup / middle.name).read_bytes() == damaged_bytes
    for later in segments[2:]:
        assert (result.backup / later.name).read_bytes() == originals[later.name]
    manifest = json.loads((result.backup / "repair.json").read_text())
    assert manifest["truncate_at"] == seq
    assert manifest["last_kept_seq"] == seq - 1
    assert {f["name"]: f["action"] for f in manifest["files"]} == {
        middle.name: "truncated",
        **{later.name: "moved" for later in segments[2:]},
    }
    assert manifest["files"][0]["sha256"] == hashlib.sha256(damaged_bytes).hexdigest()
    assert result.removed_lines == damaged_bytes.count(b"\n") - 2 + sum(
        originals[p.name].count(b"\n") for p in segments[2:]
    )

    store, state = open_store(store_dir, cfg=CFG)  # the service starts again and goes on
    assert store.recovery.next_seq == seq
    assert fill_records(store, state, 1) == [seq]
    store.close()


def test_truncate_at_first_record_of_a_segment_moves_that_segment_whole(store_dir: Path) -> None:
    segments = build(store_dir)
    seq = int(segments[2].name[8:28])
    result = truncate_at(store_dir, seq, "t")
    assert [f.action for f in result.files] == ["moved"] * (len(segments) - 2)
    assert segment_files(store_dir) == segments[:2]
    assert result.after.next_seq == seq


def test_truncate_at_torn_tail_removes_it(store_dir: Path) -> None:
    segments = build(store_dir)
    newest = segments[-1]
    newest.write_bytes(newest.read_bytes() + b'{"kind":"fi')
    torn = recover(store_dir).torn
    assert torn is not None
    result = truncate_at(store_dir, torn.seq, "t")
    assert result.after.torn is None
    assert result.after.next_seq == torn.seq


def test_truncate_at_after_damage_is_refused_naming_the_damage(store_dir: Path) -> None:
    segments = build(store_dir)
    damage(segments[1], 2)
    before = {p.name: p.read_bytes() for p in segment_files(store_dir)}
    last = int(segments[-1].name[8:28])
    with pytest.raises(UsageError, match=r"--truncate-at \d+") as caught:
        truncate_at(store_dir, last, "t")
    assert segments[1].name in caught.value.message
    assert {p.name: p.read_bytes() for p in segment_files(store_dir)} == before
    assert not list(store_dir.glob("repair-backup-*"))


@pytest.mark.parametrize("which", ["first", "beyond", "before"])
def test_truncate_at_useless_sequence_is_refused(store_dir: Path, which: str) -> None:
    store, state = open_store(store_dir, cfg=config(max_segment_bytes=500, retain_segments=1))
    fill_records(store, state, 20)
    store.close()
    oldest = int(segment_files(store_dir)[0].name[8:28])
    seq = {"first": oldest, "beyond": store.next_seq + 5, "before": oldest - 1}[which]
    with pytest.raises(UsageError):
        truncate_at(store_dir, seq, "t")
    assert recover(store_dir).next_seq == store.next_seq


def test_truncate_at_while_service_holds_the_store_raises_locked(store_dir: Path) -> None:
    build(store_dir)
    store, _ = open_store(store_dir, cfg=CFG)
    with pytest.raises(StoreLocked):
        truncate_at(store_dir, 5, "t")
    store.close()


def test_truncate_at_with_existing_backup_name_uses_a_new_folder(store_dir: Path) -> None:
    segments = build(store_dir)
    seq = int(segments[-1].name[8:28]) + 1
    taken = store_dir / f"repair-backup-{seq}-t"
    taken.mkdir()
    result = truncate_at(store_dir, seq, "t")
    assert result.backup == store_dir / f"repair-backup-{seq}-t-2"
    assert not any(taken.iterdir())


def test_truncate_at_with_open_umask_writes_no_world_writable_backup(store_dir: Path) -> None:
    segments = build(store_dir)
    seq = int(segments[-1].name[8:28]) + 1
    old = os.umask(0)
    try:
        result = truncate_at(store_dir, seq, "t")
    finally:
        os.umask(old)
    assert stat.S_IMODE(result.backup.stat().st_mode) == 0o750
    for path in result.backup.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path
