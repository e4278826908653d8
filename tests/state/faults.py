"""Fault injection for the state store: generated damage, then verify, repair and the truth.

A store is built with real appends (fills, batched cursors, risk transitions, operator
commands, rotations with checkpoints carrying the risk state). Each fault damages a copy of it
in one of these classes: a flipped byte anywhere in any segment, a segment (not the oldest)
truncated at any offset, a middle or newest segment deleted, a garbage line inserted, a line
duplicated or removed, ``store.mark`` deleted or damaged; and, exhaustively, every byte of the
last records flipped and every offset of them cut. For each one:

- ``recover`` must refuse (every record of these stores is acknowledged, so no damage may pass
  as OK or as a torn tail);
- ``plan_repair`` + ``apply_repair`` must leave a store that verifies, holds every record that
  was still intact, and whose risk state is the truth, or HALTED when records recovery needed
  were lost (never ACTIVE when the truth is not known).

Run a longer soak with ``.venv/bin/python -m tests.state.faults --seeds 200``.
"""

from __future__ import annotations

import argparse
import functools
import random
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weltklassebot.risk.recovery import recover_risk
from weltklassebot.risk.state import RiskState, RiskTransition
from weltklassebot.state.codec import QUARANTINE_KIND, LineDefect, verify_line
from weltklassebot.state.errors import StoreCorrupt
from weltklassebot.state.jsonl_store import JsonlStore, StoreConfig
from weltklassebot.state.mark import MARK_NAME
from weltklassebot.state.recovery import RecoveryResult, recover
from weltklassebot.state.repair import apply_repair, plan_repair
from weltklassebot.state.segment import list_directory

CONFIG = StoreConfig(
    max_segment_bytes=1400, max_segment_age_ns=None, retain_segments=100, batch_records=4
)
BASE_TS = 1_700_000_000_000_000_000


@dataclass
class Built:
    """A healthy store: its records by sequence number and the risk state it recovers to."""

    directory: Path
    lines: dict[int, bytes]
    truth: RiskState


@dataclass
class Tally:
    """What the faults did, for the closing figures."""

    tried: int = 0
    detected: int = 0
    repaired: int = 0
    records_kept: int = 0
    records_lost: int = 0
    halted_fail_safe: int = 0
    by_class: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        return (
            f"state-store faults: tried {self.tried}, detected {self.detected}, repaired "
            f"{self.repaired}, intact records kept {self.records_kept}, records lost "
            f"{self.records_lost}, fail-safe HALTED {self.halted_fail_safe}; by class "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.by_class.items()))
        )


def build(directory: Path, rng: random.Random, records: int = 70) -> Built:
    """Append ``records`` random records with a risk state the checkpoints carry."""
    state = {"risk": RiskState.ACTIVE}

    def checkpoint() -> dict[str, Any]:
        return {"risk": {"state": state["risk"].value, "equity": 0, "peak_equity": 0}}

    store = JsonlStore.open(directory, CONFIG, checkpoint)
    for index in range(records):
        ts = BASE_TS + index * 1_000_000
        roll = rng.random()
        if roll < 0.15:
            target = rng.choice([s for s in RiskState if s is not state["risk"]])
            transition = RiskTransition(
                ts_ns=ts, from_state=state["risk"], to_state=target, reason="kill_switch",
                detail=f"generated {index}", source="engine",
            )
            store.append("risk_transition", transition.to_payload(), ts)
            state["risk"] = target
        elif roll < 0.22:
            store.append("operator_command", {"command": {"action": "halt"}, "n": index}, ts)
        elif roll < 0.5:
            store.append("cursor", {"row": index}, ts, durable=False)
        else:
            store.append("fill", {"n": index, "pad": "x" * rng.randrange(60)}, ts)
    store.close()
    lines = {seq: raw for seq, raw in _intact_lines(directory).items()}
    result = recover(directory)
    return Built(directory, lines, _risk(result))


def _risk(result: RecoveryResult) -> RiskState:
    return recover_risk(
        result.checkpoint, result.records, checkpoint_ts_ns=result.checkpoint_ts_ns
    ).state


def _intact_lines(directory: Path) -> dict[int, bytes]:
    """Every line of the store that verifies, by sequence number (markers left out)."""
    found: dict[int, bytes] = {}
    for ref in list_directory(directory).segments:
        for raw in ref.path.read_bytes().split(b"\n")[:-1]:
            try:
                seq, kind = verify_line(raw)
            except LineDefect:
                continue
            except Exception:
                continue
            if kind != QUARANTINE_KIND:
                found.setdefault(seq, raw)
    return found


# -- fault classes -----------------------------------------------------------------------------

Fault = Callable[[Path, random.Random], str]


def _segments(directory: Path) -> list[Path]:
    return [ref.path for ref in list_directory(directory).segments]


def flip_any_byte(directory: Path, rng: random.Random) -> str:
    path = rng.choice(_segments(directory))
    data = bytearray(path.read_bytes())
    position = rng.randrange(len(data))
    data[position] ^= rng.randrange(1, 256)
    path.write_bytes(bytes(data))
    return f"flip {path.name}@{position}"


def truncate_segment(directory: Path, rng: random.Random) -> str:
    path = rng.choice(_segments(directory)[1:])
    data = path.read_bytes()
    cut = rng.choice([0, 10, rng.randrange(len(data))])
    path.write_bytes(data[:cut])
    return f"truncate {path.name} to {cut}"


def delete_segment(directory: Path, rng: random.Random) -> str:
    # The oldest segment is left alone: its absence is what retention looks like by design.
    path = rng.choice(_segments(directory)[1:])
    path.unlink()
    return f"delete {path.name}"


def insert_garbage_line(directory: Path, rng: random.Random) -> str:
    path = rng.choice(_segments(directory))
    lines = path.read_bytes().split(b"\n")[:-1]
    at = rng.randrange(len(lines) + 1)
    garbage = bytes(rng.randrange(32, 127) for _ in range(rng.randrange(1, 80)))
    lines.insert(at, garbage)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return f"garbage line {at} in {path.name}"


def duplicate_line(directory: Path, rng: random.Random) -> str:
    path = rng.choice(_segments(directory))
    lines = path.read_bytes().split(b"\n")[:-1]
    at = rng.randrange(len(lines))
    lines.insert(at, lines[at])
    path.write_bytes(b"\n".join(lines) + b"\n")
    return f"duplicate line {at + 1} of {path.name}"


def remove_line(directory: Path, rng: random.Random) -> str:
    path = rng.choice(_segments(directory))
    lines = path.read_bytes().split(b"\n")[:-1]
    at = rng.randrange(len(lines))
    del lines[at]
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return f"remove line {at + 1} of {path.name}"


def damage_mark(directory: Path, rng: random.Random) -> str:
    mark = directory / MARK_NAME
    if rng.random() < 0.5:
        mark.unlink()
        return "delete store.mark"
    data = bytearray(mark.read_bytes())
    position = rng.randrange(len(data))
    data[position] ^= rng.randrange(1, 256)
    mark.write_bytes(bytes(data))
    return f"flip store.mark@{position}"


FAULTS: dict[str, Fault] = {
    "flip": flip_any_byte,
    "truncate": truncate_segment,
    "delete_segment": delete_segment,
    "garbage_line": insert_garbage_line,
    "duplicate_line": duplicate_line,
    "remove_line": remove_line,
    "mark": damage_mark,
}


# -- one trial ---------------------------------------------------------------------------------


def trial(built: Built, work: Path, name: str, damage: Callable[[Path], str], tally: Tally) -> None:
    """Copy the store, damage it, and check verify, repair and the recovered risk state."""
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(built.directory, work)
    what = damage(work)
    tally.tried += 1
    tally.by_class[name] += 1
    try:
        recover(work)
    except StoreCorrupt:
        tally.detected += 1
    else:
        raise AssertionError(f"{what}: verify said OK although acknowledged records changed")
    intact = {
        seq: raw for seq, raw in _intact_lines(work).items() if built.lines.get(seq) == raw
    }
    plan = plan_repair(work, f"t{tally.tried}")
    result = apply_repair(plan)
    after = recover(work)  # strict: must verify now
    tally.repaired += 1
    kept = _intact_lines(work)
    missing = [seq for seq, raw in intact.items() if kept.get(seq) != raw]
    assert not missing, f"{what}: repair removed intact records {missing[:5]}"
    tally.records_kept += len(intact)
    tally.records_lost += len(built.lines) - len(intact)
    state = _risk(after)
    if after.state_uncertain:
        assert state is RiskState.HALTED, f"{what}: records lost but risk says {state}"
        tally.halted_fail_safe += 1
    else:
        assert state is built.truth, f"{what}: risk {state}, truth {built.truth}"
    assert result.backup is not None, what
    assert (result.backup / "repair.json").exists(), what


def _apply(fault: Fault, rng: random.Random, directory: Path) -> str:
    return fault(directory, rng)


def run(base: Path, seeds: range, tally: Tally, *, faults_per_class: int = 2) -> None:
    """Build one store per seed and try every fault class on copies of it."""
    for seed in seeds:
        rng = random.Random(seed)
        built = build(base / f"store-{seed}", rng)
        for name, fault in FAULTS.items():
            for attempt in range(faults_per_class):
                trial_rng = random.Random(f"{seed}-{name}-{attempt}")
                trial(built, base / "work", name, functools.partial(_apply, fault, trial_rng),
                      tally)


def last_records_exhaustive(base: Path, tally: Tally) -> None:
    """Every byte of the last two records flipped, and every offset of them cut."""
    built = build(base / "store-last", random.Random(7))
    newest = _segments(built.directory)[-1]
    data = newest.read_bytes()
    ends = [i + 1 for i, byte in enumerate(data) if byte == ord("\n")]
    start = ends[-3]
    for position in range(start, len(data)):
        def flip(d: Path, p: int = position) -> str:
            target = d / newest.name
            raw = bytearray(target.read_bytes())
            raw[p] ^= 0x20
            target.write_bytes(bytes(raw))
            return f"flip last records @{p}"

        trial(built, base / "work", "last_flip", flip, tally)
    for offset in range(start, len(data)):
        def cut(d: Path, o: int = offset) -> str:
            target = d / newest.name
            target.write_bytes(target.read_bytes()[:o])
            return f"cut last records at {o}"

        trial(built, base / "work", "last_cut", cut, tally)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--dir", type=Path, default=Path("state-fault-soak"))
    args = parser.parse_args()
    if args.dir.exists():
        shutil.rmtree(args.dir)
    args.dir.mkdir(parents=True)
    tally = Tally()
    run(args.dir, range(args.seeds), tally)
    last_records_exhaustive(args.dir, tally)
    print(tally.line())
    shutil.rmtree(args.dir)


if __name__ == "__main__":
    main()
