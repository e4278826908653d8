"""Repair: quarantine exactly what is damaged, keep every intact record, never undo a halt."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from weltklassebot.errors import UsageError
from weltklassebot.risk.recovery import recover_risk
from weltklassebot.risk.state import RiskState, RiskTransition
from weltklassebot.state.errors import StoreCorrupt, StoreUnusable
from weltklassebot.state.fileops import FileOps
from weltklassebot.state.jsonl_store import JsonlStore, StoreConfig
from weltklassebot.state.mark import MARK_NAME
from weltklassebot.state.recovery import RecoveryResult, recover
from weltklassebot.state.repair import apply_repair, plan_repair

from .faults import _intact_lines
from .support import segment_files

CFG = StoreConfig(max_segment_bytes=700, max_segment_age_ns=None, retain_segments=20)
TS = 1_700_000_000_000_000_000


class RiskModel:
    """The caller's state: a risk state that checkpoints carry, as the service's would."""

    def __init__(self) -> None:
        self.state = RiskState.ACTIVE

    def snapshot(self) -> dict[str, Any]:
        return {"risk": {"state": self.state.value, "equity": 0, "peak_equity": 0}}


def fills(store: JsonlStore, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        store.append("fill", {"n": i, "pad": "p" * (i % 17)}, TS + i)


def halt(store: JsonlStore, model: RiskModel, ts: int) -> None:
    transition = RiskTransition(
        ts_ns=ts, from_state=model.state, to_state=RiskState.HALTED, reason="kill_switch",
        detail="operator halt", source="operator",
    )
    store.append("risk_transition", transition.to_payload(), ts)
    model.state = RiskState.HALTED


def halted_store(directory: Path) -> list[Path]:
    """Old fills, then a halt, then enough records that later checkpoints carry HALTED."""
    model = RiskModel()
    store = JsonlStore.open(directory, CFG, model.snapshot)
    fills(store, 8)
    halt(store, model, TS + 100)
    fills(store, 10, start=200)
    store.close()
    segments = segment_files(directory)
    assert len(segments) >= 4
    return segments


def risk_of(result: RecoveryResult) -> RiskState:
    return recover_risk(
        result.checkpoint, result.records, checkpoint_ts_ns=result.checkpoint_ts_ns
    ).state


def flip(path: Path, line: int) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = lines[line - 1].replace(b'"n":', b'"N":', 1).replace(
        b'"detail":"', b'"detail":"X', 1
    )
    path.write_bytes(b"\n".join(lines))


def test_flip_in_an_older_segment_costs_one_record_and_keeps_the_halt(store_dir: Path) -> None:
    segments = halted_store(store_dir)
    assert risk_of(recover(store_dir)) is RiskState.HALTED
    before = _intact_lines(store_dir)
    flip(segments[0], 2)
    with pytest.raises(StoreCorrupt) as caught:
        recover(store_dir)
    assert "state repair" in caught.value.message

    plan = plan_repair(store_dir, "20261130T000000Z")
    assert [(r.first_seq, r.through) for r in plan.removals] == [(2, 2)]
    assert list(plan.writes) == [segments[0].name]  # no later segment is touched
    result = apply_repair(plan)

    after = recover(store_dir)
    assert risk_of(after) is RiskState.HALTED  # the halt is in a later, intact checkpoint
    assert not after.state_uncertain
    kept = _intact_lines(store_dir)
    assert set(before) - set(kept) == {2}
    assert all(kept[seq] == raw for seq, raw in before.items() if seq != 2)
    assert result.backup is not None
    assert (result.backup / segments[0].name).exists()
    manifest = json.loads((result.backup / "repair.json").read_text())
    assert manifest["removed"][0]["first_seq"] == 2
    assert plan_repair(store_dir, "again").needed is False  # idempotent


def test_lost_halt_after_the_last_checkpoint_recovers_halted_never_active(
    store_dir: Path,
) -> None:
    model = RiskModel()
    store = JsonlStore.open(store_dir, StoreConfig(max_segment_age_ns=None), model.snapshot)
    fills(store, 2)
    halt(store, model, TS + 50)  # the halt lives only in its record, after the checkpoint
    fills(store, 1, start=60)
    store.close()
    newest = segment_files(store_dir)[-1]
    lines = newest.read_bytes().split(b"\n")
    halt_line = next(i for i, raw in enumerate(lines, 1) if b"risk_transition" in raw)
    flip(newest, halt_line)

    plan = plan_repair(store_dir, "20261130T000000Z")
    assert any(r.attention for r in plan.removals)  # shown loudly before anything changes
    assert plan.after.result.state_uncertain
    apply_repair(plan)
    after = recover(store_dir)
    assert risk_of(after) is RiskState.HALTED


def test_intact_resume_after_a_lost_record_does_not_lift_the_fail_safe_halt(
    store_dir: Path,
) -> None:
    model = RiskModel()
    store = JsonlStore.open(store_dir, StoreConfig(max_segment_age_ns=None), model.snapshot)
    fills(store, 3)
    resume = RiskTransition(
        ts_ns=TS + 90, from_state=RiskState.ACTIVE, to_state=RiskState.ACTIVE,
        reason="operator_resume", detail="resume", source="operator",
    )
    store.append("risk_transition", resume.to_payload(), TS + 90)
    store.close()
    segment = segment_files(store_dir)[0]
    flip(segment, 2)  # a fill before the resume
    apply_repair(plan_repair(store_dir, "s"))
    assert risk_of(recover(store_dir)) is RiskState.HALTED


def test_garbage_line_in_an_old_segment_is_removed_without_losing_a_sequence(
    store_dir: Path,
) -> None:
    segments = halted_store(store_dir)
    data = segments[1].read_bytes()
    segments[1].write_bytes(data + b"this is not a record\n")
    with pytest.raises(StoreCorrupt, match="damaged or foreign line"):
        recover(store_dir)
    plan = plan_repair(store_dir, "s")
    assert [(r.first_seq, r.lines) for r in plan.removals] == [(None, 1)]
    apply_repair(plan)
    assert segments[1].read_bytes() == data
    after = recover(store_dir)
    assert not after.quarantined
    assert risk_of(after) is RiskState.HALTED


def test_deleted_middle_segment_is_quarantined_and_later_segments_kept(store_dir: Path) -> None:
    segments = halted_store(store_dir)
    later = {p.name: p.read_bytes() for p in segments[2:]}
    first_lost = int(segments[1].name[8:28])
    last_lost = int(segments[2].name[8:28]) - 1
    segments[1].unlink()
    with pytest.raises(StoreCorrupt, match="a segment was removed"):
        recover(store_dir)
    plan = plan_repair(store_dir, "s")
    assert [(r.first_seq, r.through) for r in plan.removals] == [(first_lost, last_lost)]
    apply_repair(plan)
    assert {p.name: p.read_bytes() for p in segment_files(store_dir)[1:]} == later
    after = recover(store_dir)
    assert [(q.first_seq, q.through) for q in after.quarantined] == [(first_lost, last_lost)]
    assert risk_of(after) is RiskState.HALTED


@pytest.mark.parametrize("size", [0, 10])
def test_newest_segment_cut_to_a_few_bytes_is_corruption_not_ok(
    store_dir: Path, size: int
) -> None:
    segments = halted_store(store_dir)
    segments[-1].write_bytes(segments[-1].read_bytes()[:size])
    with pytest.raises(StoreCorrupt, match="acknowledged"):
        recover(store_dir)
    apply_repair(plan_repair(store_dir, "s"))
    after = recover(store_dir)
    assert after.state_uncertain
    assert risk_of(after) is RiskState.HALTED


def test_missing_mark_is_corruption_and_repair_holds_the_store_halted(store_dir: Path) -> None:
    model = RiskModel()
    store = JsonlStore.open(store_dir, CFG, model.snapshot)
    fills(store, 3)
    store.close()
    (store_dir / MARK_NAME).unlink()
    with pytest.raises(StoreCorrupt, match=r"store\.mark is missing"):
        recover(store_dir)
    apply_repair(plan_repair(store_dir, "s"))
    after = recover(store_dir)
    assert risk_of(after) is RiskState.HALTED  # whether records were lost cannot be known


def test_truncate_at_moves_later_segments_whole_and_shows_what_goes(store_dir: Path) -> None:
    segments = halted_store(store_dir)
    originals = {p.name: p.read_bytes() for p in segments}
    cut = int(segments[2].name[8:28]) + 1
    plan = plan_repair(store_dir, "s", truncate_at=cut)
    (removal,) = plan.removals
    assert removal.first_seq == cut
    assert removal.kinds.get("fill", 0) + removal.kinds.get("checkpoint", 0) >= 1
    assert plan.moves == tuple(p.name for p in segments[3:])
    result = apply_repair(plan)
    assert result.backup is not None
    for name in plan.moves:
        assert (result.backup / name).read_bytes() == originals[name]
    assert (result.backup / segments[2].name).read_bytes() == originals[segments[2].name]
    after = recover(store_dir)
    assert after.state_uncertain
    assert risk_of(after) is RiskState.HALTED
    store = JsonlStore.open(store_dir, CFG, RiskModel().snapshot)
    assert store.next_seq == after.next_seq
    store.append("fill", {"n": -1}, TS + 10_000)
    store.close()
    assert recover(store_dir).records[-1].payload == {"n": -1}


def test_truncate_at_refusals_change_nothing(store_dir: Path) -> None:
    segments = halted_store(store_dir)
    before = {p.name: p.read_bytes() for p in segments}
    last = recover(store_dir).last_seq
    for seq in (last + 1, 1):
        with pytest.raises(UsageError):
            plan_repair(store_dir, "s", truncate_at=seq)
    assert {p.name: p.read_bytes() for p in segment_files(store_dir)} == before
    assert not list(store_dir.glob("repair-backup-*"))


def test_repair_interrupted_part_way_finishes_when_run_again(store_dir: Path) -> None:
    segments = halted_store(store_dir)
    flip(segments[0], 2)
    flip(segments[2], 2)

    class FailSecondRename(FileOps):
        renames = 0

        def rename(self, source: Path, target: Path) -> None:
            FailSecondRename.renames += 1
            if FailSecondRename.renames == 2:
                raise OSError(28, "No space left on device")
            super().rename(source, target)

    with pytest.raises(StoreUnusable, match="stopped part-way"):
        apply_repair(plan_repair(store_dir, "first"), ops=FailSecondRename())
    with pytest.raises(StoreCorrupt):
        recover(store_dir)
    apply_repair(plan_repair(store_dir, "second"))
    after = recover(store_dir)
    assert len(after.quarantined) == 2
    assert risk_of(after) is RiskState.HALTED


def test_repair_as_root_leaves_files_owned_like_the_state_directory(store_dir: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to create a directory owned by another user")
    segments = halted_store(store_dir)
    for path in [store_dir, *store_dir.iterdir()]:
        os.chown(path, 65534, 65534)
    flip(segments[0], 2)
    result = apply_repair(plan_repair(store_dir, "s"))
    assert result.backup is not None
    owners = {
        str(path.relative_to(store_dir)): (path.lstat().st_uid, path.lstat().st_gid)
        for path in store_dir.rglob("*")
    }
    assert set(owners.values()) == {(65534, 65534)}, owners
    # and the service, running as that user, can go on appending
    store = JsonlStore.open(store_dir, CFG, RiskModel().snapshot)
    store.append("fill", {"n": -1}, TS + 10_000)
    store.close()
    assert {p.lstat().st_uid for p in store_dir.rglob("*")} == {65534}
