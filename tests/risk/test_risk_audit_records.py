"""The operator's wall clock in ``operator_command`` records, kept apart from the event clock:
which command caused the current state, when on the wall clock, and which records are events."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from weltklassebot.risk import RiskConfig, RiskEngine, RiskTransition
from weltklassebot.risk.recovery import OperatorRecord, recover_risk
from weltklassebot.service.operator import (
    OperatorCommand,
    StateDirUnwritable,
    apply_operator_command,
    failed_result,
    write_command,
)

WALL = 1_790_000_000_000_000_000


@dataclass
class Rec:
    kind: str
    payload: dict[str, Any]
    ts_ns: int


def offline(action: str, before: str, after: str, *, wall: int, ts: int = 0,
            changed: bool = True) -> list[Rec]:
    """What the offline CLI appends: the transition (if any), then its audit record."""
    command = OperatorCommand.new(action, issued_ns=wall - 5, user="ops")  # type: ignore[arg-type]
    out = []
    if changed:
        reason = "kill_switch" if action == "halt" else "operator_resume"
        out.append(Rec("risk_transition", RiskTransition(
            ts, *(_state(before), _state(after)), reason, "x", source="operator-cli",
            user="ops").to_payload(), ts))
    out.append(Rec("operator_command", {
        "ok": True, "command": command.to_payload(), "changed": changed, "from_state": before,
        "state": after, "ts_ns": ts, "cursor": None, "applied_wall_ns": wall,
        "message": "m", "applied_by": "operator-cli"}, ts))
    return out


def _state(name: str) -> Any:
    from weltklassebot.risk import RiskState

    return RiskState(name)


def test_offline_halt_on_an_empty_store_has_a_wall_time_and_no_event() -> None:
    checkpoint = {"origin": "operator-cli", "risk": None}
    recovered = recover_risk(checkpoint, offline("halt", "ACTIVE", "HALTED", wall=WALL),
                             checkpoint_ts_ns=0)
    summary = recovered.summary()
    assert summary["state"] == "HALTED"
    assert (summary["since_ns"], summary["since_wall_ns"]) == (0, WALL)
    assert summary["since_offline"] is True
    assert summary["last_event_ts_ns"] is None
    assert recovered.last_ts_ns == 0              # the stamp the next offline command borrows
    assert summary["last_operator_command"]["issued_ns"] == WALL - 5


def test_offline_commands_after_events_borrow_the_stamp_but_are_not_events() -> None:
    records = [Rec("cursor", {"n": 1}, 700), *offline("halt", "ACTIVE", "HALTED", wall=WALL,
                                                      ts=700)]
    recovered = recover_risk({"risk": None}, records, checkpoint_ts_ns=500)
    assert recovered.summary()["last_event_ts_ns"] == 700
    assert recovered.summary()["since_ns"] == 700
    only_offline = recover_risk({"risk": None}, records[1:], checkpoint_ts_ns=500)
    assert only_offline.summary()["last_event_ts_ns"] == 500   # the service's checkpoint is one


def test_unchanged_command_is_the_last_command_but_not_the_cause() -> None:
    records = [*offline("halt", "ACTIVE", "HALTED", wall=WALL),
               *offline("halt", "HALTED", "HALTED", wall=WALL + 10, changed=False)]
    summary = recover_risk(None, records).summary()
    assert summary["since_wall_ns"] == WALL
    assert summary["last_operator_command"]["wall_ns"] == WALL + 10
    assert summary["last_operator_command"]["changed"] is False


def test_a_later_engine_transition_has_no_operator_wall_time() -> None:
    records = [*offline("resume", "HALTED", "ACTIVE", wall=WALL),
               Rec("risk_transition", RiskTransition(
                   900, _state("ACTIVE"), _state("HALTED"), "drawdown_cap", "d").to_payload(),
                   900)]
    summary = recover_risk(None, records).summary()
    assert (summary["reason"], summary["since_wall_ns"], summary["since_ns"]) == (
        "drawdown_cap", None, 900)


def test_service_applied_command_pairs_with_its_transition_across_a_checkpoint() -> None:
    seen: list[RiskTransition] = []
    engine = RiskEngine(RiskConfig(), initial_equity=100, money_scale=2, persist=seen.append)
    command = OperatorCommand.new("halt", issued_ns=WALL - 99, user="ops")
    result = apply_operator_command(engine, command, 40, cursor=7, wall_ns=WALL)
    assert result["applied_wall_ns"] == WALL
    # the store rotated between the transition and its record: the transition is in the snapshot
    checkpoint = {"risk": json.loads(json.dumps(engine.snapshot()))}
    recovered = recover_risk(checkpoint, [Rec("operator_command", result, 40)],
                             checkpoint_ts_ns=40)
    summary = recovered.summary()
    assert (summary["since_wall_ns"], summary["since_command_id"]) == (WALL, command.command_id)
    assert summary["since_offline"] is False
    assert summary["last_event_ts_ns"] == 40          # a service's record is an event


def test_record_that_names_another_state_or_source_is_not_paired() -> None:
    records = offline("halt", "ACTIVE", "HALTED", wall=WALL)
    records[1].payload["state"] = "COOL"
    assert recover_risk(None, records).summary()["since_wall_ns"] is None
    records = offline("halt", "ACTIVE", "HALTED", wall=WALL)
    records[1].payload["command"]["source"] = "someone-else"
    assert recover_risk(None, records).summary()["since_wall_ns"] is None


@pytest.mark.parametrize(("damage", "wall"), [
    ({"command": "not a dict"}, WALL),                     # the applied time still stands
    ({"applied_wall_ns": "soon", "command": {"issued_ns": True}}, None),
    ({"changed": "yes"}, None),                              # not a command that changed state
    ({"applied_wall_ns": 0, "command": {"issued_ns": 0}}, None),  # 0 is no clock, not 1970
])
def test_odd_audit_record_never_blocks_reading_the_state(damage: dict[str, Any],
                                                         wall: int | None) -> None:
    records = offline("halt", "ACTIVE", "HALTED", wall=WALL)
    records[1].payload.update(damage)
    recovered = recover_risk(None, records)
    assert recovered.state.value == "HALTED"
    assert recovered.summary()["since_wall_ns"] == wall


def test_wall_time_falls_back_to_the_issue_time() -> None:
    records = offline("halt", "ACTIVE", "HALTED", wall=WALL)
    del records[1].payload["applied_wall_ns"]
    assert recover_risk(None, records).summary()["since_wall_ns"] == WALL - 5
    record = OperatorRecord.from_payload(records[1].payload, 0)
    assert (record.wall_ns, record.offline) == (WALL - 5, True)


def test_failed_result_carries_the_engines_state() -> None:
    engine = RiskEngine(RiskConfig(), initial_equity=100, money_scale=2)
    engine.halt("x", 1)
    command = OperatorCommand.new("resume", issued_ns=WALL)
    body = failed_result(command, engine, "store cannot write", wall_ns=WALL + 1)
    assert (body["ok"], body["state"], body["applied_wall_ns"]) == (False, "HALTED", WALL + 1)


def test_write_command_failure_names_the_command_file_and_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    command = OperatorCommand.new("halt", issued_ns=WALL)
    real_write = os.write

    def full(fd: int, data: Any) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(StateDirUnwritable) as info:
        write_command(tmp_path, command)
    monkeypatch.setattr(os, "write", real_write)
    error = info.value
    assert (error.operation, error.path.name, error.exit_code, error.written) == (
        "write", f"{command.command_id}.json", 3, False)
    assert os.listdir(tmp_path / "commands") == []
    assert "Free space on the volume holding" in error.message


def test_permission_failure_is_a_usage_error(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def deny(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).endswith(".tmp"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    with pytest.raises(StateDirUnwritable) as info:
        write_command(tmp_path, OperatorCommand.new("halt", issued_ns=WALL))
    assert (info.value.operation, info.value.exit_code) == ("create", 2)
    assert "run the command as the owner of" in info.value.message
