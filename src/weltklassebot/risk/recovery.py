"""Risk state from a state store's recovery: the last checkpoint's ``risk`` section plus the
``risk_transition`` records after it.

Pure: it reads records already loaded by the store (anything with ``kind``, ``payload`` and
``ts_ns``), never touches the disk and reads no clock. Used by ``risk status`` and by the offline
``risk halt`` / ``risk resume`` path of the CLI, and by a service restoring its engine.

Two clocks meet here and stay apart. ``ts_ns`` of every record and transition is the run's event
clock (deterministic; replay depends on it). ``operator_command`` records also carry the
operator's wall-clock time (``command.issued_ns``, and ``applied_wall_ns`` when the writer
recorded it), for the audit trail and ``risk status`` only: nothing here decides on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal, Protocol

from weltklassebot.risk.config import RiskConfig
from weltklassebot.risk.engine import Persist, RiskEngine
from weltklassebot.risk.state import RiskState, RiskTransition, TransitionReason

RISK_TRANSITION_KIND = "risk_transition"
OPERATOR_COMMAND_KIND = "operator_command"
QUARANTINED_KIND = "quarantined"
"""Written by ``state repair`` in place of records it removed (docs/state-store.md)."""
CHECKPOINT_RISK_KEY = "risk"
OFFLINE_SOURCE = "operator-cli"
"""``applied_by`` of an offline audit record and ``origin`` of the checkpoint the offline CLI writes
into an empty directory: records stamped with borrowed event time, not events themselves."""


class StoredRecord(Protocol):
    """The fields of a state-store record this module reads."""

    @property
    def kind(self) -> str: ...

    @property
    def payload(self) -> dict[str, Any]: ...

    @property
    def ts_ns(self) -> int: ...


@dataclass(frozen=True, slots=True)
class OperatorRecord:
    """What an ``operator_command`` record says, for the audit trail (it decides nothing).

    Read leniently: a field of the wrong type reads as unknown (``None``), because an odd audit
    record must never stand between an operator and the kill switch.
    """

    ts_ns: int
    """Event-clock stamp of the record."""
    command_id: str | None
    action: str | None
    user: str | None
    source: str | None
    issued_ns: int | None
    """Operator's wall clock when the command was issued."""
    applied_wall_ns: int | None
    """Wall clock when it was applied (offline CLI or service), if the writer recorded it."""
    changed: bool
    state: str | None
    cursor: int | None
    message: str | None
    applied_by: str | None

    @property
    def wall_ns(self) -> int | None:
        """When it took effect on the wall clock: applied time, else issue time."""
        return self.applied_wall_ns if self.applied_wall_ns is not None else self.issued_ns

    @property
    def offline(self) -> bool:
        """Written by the CLI itself with no service running."""
        return self.applied_by == OFFLINE_SOURCE

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], ts_ns: int) -> OperatorRecord:
        command = payload.get("command")
        command = command if isinstance(command, Mapping) else {}
        return cls(
            ts_ns=ts_ns,
            command_id=_str_or_none(command.get("command_id")),
            action=_str_or_none(command.get("action")),
            user=_str_or_none(command.get("user")),
            source=_str_or_none(command.get("source")),
            issued_ns=_wall_or_none(command.get("issued_ns")),
            applied_wall_ns=_wall_or_none(payload.get("applied_wall_ns")),
            changed=payload.get("changed") is True,
            state=_str_or_none(payload.get("state")),
            cursor=_int_or_none(payload.get("cursor")),
            message=_str_or_none(payload.get("message")),
            applied_by=_str_or_none(payload.get("applied_by")),
        )

    def summary(self) -> dict[str, Any]:
        return {
            "command_id": self.command_id,
            "action": self.action,
            "user": self.user,
            "wall_ns": self.wall_ns,
            "issued_ns": self.issued_ns,
            "applied_wall_ns": self.applied_wall_ns,
            "ts_ns": self.ts_ns,
            "cursor": self.cursor,
            "changed": self.changed,
            "state": self.state,
            "message": self.message,
            "offline": self.offline,
        }


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _wall_or_none(value: object) -> int | None:
    # 0 is what a writer without a clock leaves behind: not a time.
    number = _int_or_none(value)
    return number if number is not None and number > 0 else None


@dataclass(frozen=True, slots=True)
class RecoveredRisk:
    """What the store says about risk: checkpoint snapshot, later transitions, latest time."""

    snapshot: dict[str, Any] | None
    transitions: tuple[RiskTransition, ...]
    last_ts_ns: int | None
    """Latest timestamp among the checkpoint and every record after it (any kind): the stamp an
    offline operator command borrows."""
    last_event_ts_ns: int | None = None
    """Like ``last_ts_ns`` but without what the offline CLI wrote (its records and its checkpoint
    borrow their stamps): ``None`` when no event has been recorded."""
    since_command: OperatorRecord | None = None
    """The operator command that caused the last transition, when the store still holds it."""
    last_command: OperatorRecord | None = None
    """The latest operator command recorded after the checkpoint (changed anything or not)."""

    @property
    def state(self) -> RiskState:
        if self.transitions:
            return self.transitions[-1].to_state
        if self.snapshot is not None:
            return RiskState(self.snapshot["state"])
        return RiskState.ACTIVE

    @property
    def last_transition(self) -> RiskTransition | None:
        if self.transitions:
            return self.transitions[-1]
        if self.snapshot is not None and self.snapshot.get("transitions"):
            return RiskTransition.from_payload(self.snapshot["transitions"][-1])
        return None

    @property
    def equity(self) -> int | None:
        """Latest equity known to the store (money units), if any."""
        for transition in reversed(self.transitions):
            if transition.equity is not None:
                return transition.equity
        return None if self.snapshot is None else int(self.snapshot["equity"])

    @property
    def peak_equity(self) -> int | None:
        for transition in reversed(self.transitions):
            if transition.peak_equity is not None:
                return transition.peak_equity
        return None if self.snapshot is None else int(self.snapshot["peak_equity"])

    @property
    def drawdown_cap(self) -> Fraction | None:
        cap = None if self.snapshot is None else self.snapshot.get("drawdown_cap")
        return None if cap is None else Fraction(cap)

    def summary(self) -> dict[str, Any]:
        """JSON-able status for ``risk status``."""
        last = self.last_transition
        peak, equity = self.peak_equity, self.equity
        drawdown = None
        if peak is not None and equity is not None:
            drawdown = Fraction(max(0, peak - equity), peak) if peak > 0 else Fraction(0)
        cap = self.drawdown_cap
        cool_until = None
        if self.state is RiskState.COOL and last is not None:
            cool_until = last.until_ns
        snap = self.snapshot or {}
        caused = self.since_command
        return {
            "state": self.state.value,
            "since_ns": None if last is None else last.ts_ns,
            "since_wall_ns": None if caused is None else caused.wall_ns,
            "since_command_id": None if caused is None else caused.command_id,
            "since_offline": None if caused is None else caused.offline,
            "reason": None if last is None else last.reason,
            "detail": None if last is None else last.detail,
            "source": None if last is None else last.source,
            "user": None if last is None else last.user,
            "cursor": None if last is None else last.cursor,
            "cool_until_ns": cool_until,
            "peak_equity": peak,
            "equity": equity,
            "money_scale": snap.get("money_scale"),
            "drawdown": None if drawdown is None else str(drawdown),
            "drawdown_ratio": None if drawdown is None else float(drawdown),
            "drawdown_cap": None if cap is None else str(cap),
            "drawdown_cap_ratio": None if cap is None else float(cap),
            "denials_at_checkpoint": dict(snap.get("denials", {})),
            "transitions_since_checkpoint": [t.to_payload() for t in self.transitions],
            "last_event_ts_ns": self.last_event_ts_ns,
            "last_operator_command": None if self.last_command is None
            else self.last_command.summary(),
        }


def recover_risk(
    checkpoint: Mapping[str, Any] | None,
    records: Iterable[StoredRecord],
    *,
    checkpoint_ts_ns: int | None = None,
) -> RecoveredRisk:
    """Collect the risk view of a store's recovery result.

    An ``operator_command`` record that changed the state is paired with the transition it
    caused: the latest transition before it (its writer appends it right after the transition),
    when that one leads to the state the record names and has the command's source.

    Raises ``ValueError`` when the checkpoint's ``risk`` section or a transition is malformed.
    """
    snapshot: dict[str, Any] | None = None
    offline_checkpoint = False
    if checkpoint is not None:
        offline_checkpoint = checkpoint.get("origin") == OFFLINE_SOURCE
        section = checkpoint.get(CHECKPOINT_RISK_KEY)
        if section is not None:
            if not isinstance(section, dict) or "state" not in section:
                raise ValueError("the checkpoint's 'risk' section is not a risk engine snapshot")
            RiskState(section["state"])
            snapshot = section
    transitions: list[RiskTransition] = []
    last_ts = checkpoint_ts_ns
    last_event = None if offline_checkpoint else checkpoint_ts_ns
    pairable: RiskTransition | None = None
    if snapshot is not None and snapshot.get("transitions"):
        pairable = RiskTransition.from_payload(snapshot["transitions"][-1])
    since_command: OperatorRecord | None = None
    last_command: OperatorRecord | None = None
    for record in records:
        if last_ts is None or record.ts_ns > last_ts:
            last_ts = record.ts_ns
        borrowed = False
        if record.kind == RISK_TRANSITION_KIND:
            transition = RiskTransition.from_payload(record.payload)
            transitions.append(transition)
            pairable, since_command = transition, None
            borrowed = transition.source == OFFLINE_SOURCE and transition.cursor is None
        elif record.kind == QUARANTINED_KIND:
            lost = _lost_records_halt(record, transitions, snapshot, checkpoint is not None)
            if lost is not None:
                transitions.append(lost)
                pairable, since_command = lost, None
        elif record.kind == OPERATOR_COMMAND_KIND:
            command = OperatorRecord.from_payload(record.payload, record.ts_ns)
            last_command = command
            borrowed = command.offline
            if (command.changed and since_command is None and pairable is not None
                    and command.state == pairable.to_state.value
                    and command.source in (None, pairable.source)):
                since_command = command
        if not borrowed and (last_event is None or record.ts_ns > last_event):
            last_event = record.ts_ns
    return RecoveredRisk(snapshot, tuple(transitions), last_ts, last_event, since_command,
                         last_command)


def _lost_records_halt(
    record: StoredRecord,
    transitions: list[RiskTransition],
    snapshot: Mapping[str, Any] | None,
    has_checkpoint: bool,
) -> RiskTransition | None:
    """The fail-safe halt a quarantined run of records implies, or ``None`` if it costs nothing.

    ``state repair`` replaces records it had to remove with one ``quarantined`` record. Only a
    lost checkpoint with an earlier checkpoint still in place loses nothing (it summarised
    records that are all still there); any other loss leaves the state after it unknown, so the
    kill switch is assumed thrown until an operator checks and resumes.
    """
    payload = record.payload
    if payload.get("checkpoint_only") is True and has_checkpoint:
        return None
    if transitions:
        state = transitions[-1].to_state
    elif snapshot is not None:
        state = RiskState(snapshot["state"])
    else:
        state = RiskState.ACTIVE
    through = payload.get("through")
    seq = getattr(record, "seq", None)
    span = f"{seq}..{through}" if seq is not None and through != seq else str(through)
    return RiskTransition(
        ts_ns=record.ts_ns, from_state=state, to_state=RiskState.HALTED,
        reason=TransitionReason.store_records_lost.value,
        detail=f"state store records {span} were quarantined by a repair "
        f"({payload.get('reason', 'damaged')}); the state after them is not known",
        source="state-store",
    )


def restore_engine(
    config: RiskConfig,
    recovered: RecoveredRisk,
    *,
    initial_equity: int,
    money_scale: int,
    persist: Persist | None = None,
) -> RiskEngine:
    """An engine in the recovered state: the snapshot restored, later transitions replayed."""
    if recovered.snapshot is not None:
        engine = RiskEngine.restore(config, recovered.snapshot, persist=persist)
    else:
        engine = RiskEngine(
            config, initial_equity=initial_equity, money_scale=money_scale, persist=persist
        )
    for transition in recovered.transitions:
        engine.replay_transition(transition, strict=False)
    return engine


def operator_transition(
    recovered: RecoveredRisk,
    action: Literal["halt", "resume"],
    *,
    ts_ns: int,
    reason: str,
    keep_peak: bool,
    user: str | None,
    source: str = "operator-cli",
) -> RiskTransition | None:
    """The transition an offline ``halt`` / ``resume`` writes, or ``None`` when nothing changes.

    ``resume`` resets the peak to the latest equity the store knows unless ``keep_peak``.
    """
    state = recovered.state
    peak, equity = recovered.peak_equity, recovered.equity
    if action == "halt":
        if state is RiskState.HALTED:
            return None
        return RiskTransition(
            ts_ns=ts_ns, from_state=state, to_state=RiskState.HALTED,
            reason=TransitionReason.kill_switch.value, detail=reason or "operator halt",
            source=source, user=user, peak_equity=peak, equity=equity,
        )
    if state is not RiskState.HALTED:
        return None
    new_peak = peak if keep_peak or equity is None else equity
    detail = reason or ("resume, peak kept" if keep_peak else "resume, peak reset to equity")
    return RiskTransition(
        ts_ns=ts_ns, from_state=state, to_state=RiskState.ACTIVE,
        reason=TransitionReason.operator_resume.value, detail=detail,
        source=source, user=user, peak_equity=new_peak, equity=equity,
    )
