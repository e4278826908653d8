"""Crash safety: a writer killed with SIGKILL at random moments never loses an acknowledged record.

``crash_child.py`` appends fills and prints each acknowledged (durable, returned) sequence number.
The parent kills it at random moments - during start-up and recovery, between and inside appends,
during rotation and retention - then checks that recovery returns exactly a prefix of what was
written: every acknowledged record, no corrupt one, each payload the one written for its place.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from weltklassebot.state.jsonl_store import JsonlStore, RecoveryResult, recover
from weltklassebot.state.tail import last_records

from .support import CHILD_CONFIG, payload, segment_files, ts_for

CHILD = Path(__file__).with_name("crash_child.py")
KILLS = 200
LANES = 2


@dataclass
class LaneReport:
    kills: int = 0
    acknowledged: int = 0
    torn_seen: int = 0
    killed_before_ready: int = 0
    last_seq: int = 0
    rotations_seen: set[str] = field(default_factory=set)


def start_child(mode: str, directory: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), mode, str(directory), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def acknowledged_of(output: bytes) -> list[int]:
    # only whole lines: a line cut by the kill was never a complete acknowledgement
    lines = output.split(b"\n")[:-1]
    return [int(line) for line in lines if line.isdigit()]


def check_history(directory: Path) -> None:
    """Every retained record, checkpoints included, is exactly what the writer wrote there."""
    index: int | None = None
    for record in last_records(directory, 1 << 30).records:
        if record.kind == "checkpoint":
            assert record.payload["last"] == record.seq - 1
            assert index is None or record.payload["count"] == index
            index = record.payload["count"]
        else:
            assert index is not None, "a segment must start with a checkpoint"
            index += 1
            assert record.payload == payload(index), f"record {record.seq} differs"
            assert record.ts_ns == ts_for(index)


def check_prefix(result: RecoveryResult, must_have: int) -> None:
    """The recovered store is a prefix of what the child wrote and holds every acknowledged seq."""
    assert result.last_seq >= must_have, (
        f"acknowledged {must_have} lost: store ends {result.last_seq}"
    )
    if result.checkpoint is None:
        assert result.last_seq == 0
        return
    assert result.checkpoint_seq is not None
    assert result.checkpoint["last"] == result.checkpoint_seq - 1
    expected_seq = result.checkpoint_seq + 1
    index = result.checkpoint["count"] + 1
    for record in result.records:
        assert record.seq == expected_seq
        assert record.kind == "fill"
        assert record.payload == payload(index), f"record {record.seq} is not what was written"
        assert record.ts_ns == ts_for(index)
        expected_seq += 1
        index += 1
    assert expected_seq == result.next_seq


def run_lane(directory: Path, kills: int, seed: int) -> LaneReport:
    rng = random.Random(seed)
    report = LaneReport()
    highest_acknowledged = 0
    for _ in range(kills):
        child = start_child("loop", directory)
        assert child.stdout is not None
        head = b""
        if rng.random() < 0.25:
            time.sleep(rng.uniform(0.0, 0.08))  # anywhere in start-up, recovery, first appends
        else:
            head = child.stdout.readline()
            time.sleep(rng.uniform(0.0, 0.025))
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate()
        out = head + out
        assert child.returncode == -signal.SIGKILL, f"child ended by itself: {err.decode()}"
        assert not err, err.decode()
        if not out.startswith(b"ready\n"):
            report.killed_before_ready += 1
        acknowledged = acknowledged_of(out)
        if acknowledged:
            highest_acknowledged = max(highest_acknowledged, *acknowledged)
            report.acknowledged += len(acknowledged)
        result = recover(directory)
        report.torn_seen += result.torn_dropped
        check_prefix(result, highest_acknowledged)
        check_history(directory)
        report.rotations_seen.update(p.name for p in segment_files(directory))
        report.kills += 1
        report.last_seq = result.last_seq
    return report


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(240)
def test_writer_killed_at_random_moments_keeps_every_acknowledged_record(tmp_path: Path) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(LANES) as pool:
        futures = [
            pool.submit(run_lane, tmp_path / f"lane{lane}", KILLS // LANES, 1000 + lane)
            for lane in range(LANES)
        ]
        reports = [future.result() for future in futures]
    elapsed = time.monotonic() - started

    assert sum(r.kills for r in reports) == KILLS
    assert sum(r.acknowledged for r in reports) > KILLS  # the kills landed while appending
    assert all(len(r.rotations_seen) > 3 for r in reports)  # and across rotations
    for lane in range(LANES):  # a last writer opens each store normally and goes on
        directory = tmp_path / f"lane{lane}"
        store = JsonlStore.open(directory, CHILD_CONFIG, lambda: {"count": 0, "last": 0})
        store.close()
    print(
        f"\n{KILLS} kills in {elapsed:.1f}s; acknowledged {sum(r.acknowledged for r in reports)}; "
        f"torn tails dropped {sum(r.torn_seen for r in reports)}; killed before ready "
        f"{sum(r.killed_before_ready for r in reports)}"
    )


@pytest.mark.parametrize("mode", ["split", "split-batch"])
def test_writer_killed_between_two_halves_of_a_record_drops_only_that_record(
    tmp_path: Path, mode: str
) -> None:
    directory = tmp_path / "state"
    child = start_child(mode, directory, "5")
    out, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err.decode()
    acknowledged = acknowledged_of(out)

    result = recover(directory)
    assert result.torn_dropped == 1
    assert result.torn is not None
    check_prefix(result, max(acknowledged))
    assert result.torn.seq == result.next_seq
    if mode == "split-batch":  # whole records of the cut batch survive, unacknowledged
        assert result.last_seq > max(acknowledged)

    segment = result.torn.path
    good = segment.read_bytes()[: result.torn.offset]
    store = JsonlStore.open(directory, CHILD_CONFIG, lambda: {"count": 0, "last": 0})
    assert segment.read_bytes() == good  # cut back to the last good record
    seq = store.append("fill", payload(999), ts_for(999))
    store.close()
    assert seq == result.next_seq
    after = recover(directory)
    assert (after.torn_dropped, after.next_seq) == (0, seq + 1)


def test_writer_killed_while_writing_a_new_segment_leaves_store_intact(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    child = start_child("split-rotation", directory, "3")
    out, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err.decode()
    acknowledged = acknowledged_of(out)

    result = recover(directory)
    assert len(result.temporaries) == 1  # the half-written next segment, never renamed
    assert result.torn_dropped == 0
    check_prefix(result, max(acknowledged))

    store = JsonlStore.open(directory, CHILD_CONFIG, lambda: {"count": 0, "last": 0})
    store.close()
    assert not result.temporaries[0].exists()
