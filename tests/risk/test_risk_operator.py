"""Operator hand-off through a state directory: lock, command files, acks, applying commands,
and reading the risk state back from store records."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from weltklassebot.errors import UnusableInput
from weltklassebot.risk import RiskConfig, RiskEngine, RiskState, RiskTransition
from weltklassebot.risk.recovery import operator_transition, recover_risk, restore_engine
from weltklassebot.service.operator import (
    ACKS_KEPT,
    OperatorCommand,
    ServiceLockHeld,
    ack,
    acquire_service_lock,
    apply_operator_command,
    default_state_dir,
    pending_commands,
    poll_operator_commands,
    read_ack,
    service_holder,
    wait_for_ack,
    write_command,
)


def test_default_state_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WELTKLASSE_STATE_DIR", raising=False)
    assert default_state_dir() == Path("/var/lib/weltklassebot/state")
    monkeypatch.setenv("WELTKLASSE_STATE_DIR", "/srv/state")
    assert default_state_dir() == Path("/srv/state")


def test_service_lock_is_exclusive_and_names_the_holder(tmp_path: Path) -> None:
    assert service_holder(tmp_path) is None
    lock = acquire_service_lock(tmp_path)
    assert lock.held
    import os

    assert service_holder(tmp_path) == os.getpid()
    with pytest.raises(ServiceLockHeld, match=f"process {os.getpid()}") as info:
        acquire_service_lock(tmp_path, timeout_s=0.1)
    assert info.value.exit_code == 3
    lock.release()
    assert service_holder(tmp_path) is None
    with acquire_service_lock(tmp_path) as again:
        assert again.held
    assert not again.held


def test_service_lock_refuses_missing_dir_without_create(tmp_path: Path) -> None:
    with pytest.raises(UnusableInput, match="does not exist"):
        acquire_service_lock(tmp_path / "missing", create=False)
    assert acquire_service_lock(tmp_path / "new" / "state").held


def command(action: str, n: int, **kw: Any) -> OperatorCommand:
    return OperatorCommand.new(action, issued_ns=n, user="ops", **kw)  # type: ignore[arg-type]


def test_commands_are_polled_in_name_order_and_removed(tmp_path: Path) -> None:
    second = command("resume", 2_000, keep_peak=True)
    first = command("halt", 1_000, reason="manual")
    write_command(tmp_path, second)
    write_command(tmp_path, first)
    (tmp_path / "commands" / ".half-written.json.123.tmp").write_text("{")
    assert pending_commands(tmp_path) == [first.command_id, second.command_id]
    polled = poll_operator_commands(tmp_path)
    assert polled == [first, second]
    assert pending_commands(tmp_path) == []
    assert poll_operator_commands(tmp_path) == []


def test_invalid_command_file_is_removed_and_answered(tmp_path: Path) -> None:
    folder = tmp_path / "commands"
    folder.mkdir()
    (folder / "00000000000000000001-1-halt.json").write_text("not json")
    (folder / "00000000000000000002-1-halt.json").write_text(json.dumps({"schema": 1,
                                                                          "action": "explode"}))
    good = command("halt", 3)
    write_command(tmp_path, good)
    assert poll_operator_commands(tmp_path) == [good]
    bad = read_ack(tmp_path, "00000000000000000001-1-halt")
    assert bad is not None
    assert bad["ok"] is False
    assert "invalid command file" in bad["error"]
    other = read_ack(tmp_path, "00000000000000000002-1-halt")
    assert other is not None
    assert "unknown action" in other["error"]


def test_ack_round_trip_and_retention(tmp_path: Path) -> None:
    assert read_ack(tmp_path, "x") is None
    assert wait_for_ack(tmp_path, "x", 0.05) is None
    for i in range(ACKS_KEPT + 5):
        ack(tmp_path, f"{i:020d}-1-halt", {"ok": True, "n": i})
    kept = sorted(p.name for p in (tmp_path / "acks").iterdir())
    assert len(kept) == ACKS_KEPT
    answer = wait_for_ack(tmp_path, f"{ACKS_KEPT + 4:020d}-1-halt", 1)
    assert answer is not None
    assert answer["n"] == ACKS_KEPT + 4


def test_command_payload_round_trip_and_validation() -> None:
    cmd = command("resume", 5, keep_peak=True, reason="checked")
    assert OperatorCommand.from_payload(json.loads(json.dumps(cmd.to_payload()))) == cmd
    with pytest.raises(ValueError, match="schema"):
        OperatorCommand.from_payload({**cmd.to_payload(), "schema": 9})
    with pytest.raises(ValueError, match="keep_peak"):
        OperatorCommand.from_payload({**cmd.to_payload(), "keep_peak": "yes"})


def test_apply_operator_command_records_cursor_and_user() -> None:
    seen: list[RiskTransition] = []
    engine = RiskEngine(RiskConfig(), initial_equity=100, money_scale=2, persist=seen.append)
    engine.on_equity(1, 90)
    result = apply_operator_command(engine, command("halt", 1, reason="desk"), 5, cursor=17)
    assert result["changed"] is True
    assert (result["from_state"], result["state"], result["cursor"]) == ("ACTIVE", "HALTED", 17)
    t = seen[-1]
    assert (t.reason, t.detail, t.source, t.user, t.cursor, t.ts_ns) == (
        "kill_switch", "desk", "operator-cli", "ops", 17, 5
    )
    again = apply_operator_command(engine, command("halt", 2), 6, cursor=18)
    assert again["changed"] is False
    assert "already HALTED" in again["message"]
    resumed = apply_operator_command(engine, command("resume", 3), 7, cursor=19)
    assert resumed["state"] == "ACTIVE"
    assert engine.peak_equity == 90


@dataclass
class Rec:
    seq: int
    ts_ns: int
    kind: str
    payload: dict[str, Any]


def test_recover_risk_from_checkpoint_and_later_records() -> None:
    seen: list[RiskTransition] = []
    config = RiskConfig.model_validate({"drawdown_cap": "0.1"})
    engine = RiskEngine(config, initial_equity=1_000, money_scale=2, persist=seen.append)
    engine.on_equity(10, 1_200)
    checkpoint = {"risk": json.loads(json.dumps(engine.snapshot())), "other": 1}
    engine.on_equity(20, 1_000)          # halts: drawdown 1/6 >= 1/10
    records = [
        Rec(2, 15, "cursor", {"n": 1}),
        *(Rec(3 + i, t.ts_ns, "risk_transition", t.to_payload()) for i, t in enumerate(seen)),
        Rec(9, 25, "fill", {}),
    ]
    recovered = recover_risk(checkpoint, records, checkpoint_ts_ns=10)
    assert recovered.state is RiskState.HALTED
    assert recovered.last_ts_ns == 25
    assert recovered.equity == 1_000
    assert recovered.peak_equity == 1_200
    summary = recovered.summary()
    assert summary["drawdown"] == "1/6"
    assert summary["drawdown_cap"] == "1/10"
    assert summary["reason"] == "drawdown_cap"
    restored = restore_engine(config, recovered, initial_equity=0, money_scale=2)
    assert restored.state is RiskState.HALTED
    assert restored.transitions == engine.transitions
    t = operator_transition(recovered, "resume", ts_ns=30, reason="", keep_peak=False, user="u")
    assert t is not None
    assert (t.from_state, t.to_state, t.peak_equity) == (RiskState.HALTED, RiskState.ACTIVE,
                                                         1_000)
    kept = operator_transition(recovered, "resume", ts_ns=30, reason="", keep_peak=True, user="u")
    assert kept is not None
    assert kept.peak_equity == 1_200
    assert operator_transition(recovered, "halt", ts_ns=30, reason="x", keep_peak=False,
                               user="u") is None


def test_recover_risk_without_anything_is_active() -> None:
    recovered = recover_risk(None, [])
    assert recovered.state is RiskState.ACTIVE
    assert recovered.last_ts_ns is None
    assert operator_transition(recovered, "resume", ts_ns=0, reason="", keep_peak=False,
                               user=None) is None
    halt = operator_transition(recovered, "halt", ts_ns=0, reason="", keep_peak=False, user=None)
    assert halt is not None
    assert halt.detail == "operator halt"
    with pytest.raises(ValueError, match="snapshot"):
        recover_risk({"risk": {"x": 1}}, [])


def test_service_lock_creates_the_hand_off_folders(tmp_path: Path) -> None:
    with acquire_service_lock(tmp_path):
        assert (tmp_path / "commands").is_dir()
        assert (tmp_path / "acks").is_dir()


def test_command_that_cannot_be_removed_is_never_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stuck = command("halt", 1)
    write_command(tmp_path, stuck)
    real_unlink = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self.parent.name == "commands":
            raise PermissionError(13, "Permission denied")
        real_unlink(self, missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    assert poll_operator_commands(tmp_path) == []
    assert poll_operator_commands(tmp_path) == []     # never applied, however often polled
    answer = read_ack(tmp_path, stuck.command_id)
    assert answer is not None
    assert answer["ok"] is False
    assert "service user" in answer["error"]
