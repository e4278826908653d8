"""Risk state from a state store's recovery: the last checkpoint's ``risk`` section plus the
``risk_transition`` records after it.

Pure: it reads records already loaded by the store (anything with ``kind``, ``payload`` and
``ts_ns``) and never touches the disk. Used by ``risk status`` and by the offline ``risk halt`` /
``risk resume`` path of the CLI, and by a service restoring its engine.
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
CHECKPOINT_RISK_KEY = "risk"


class StoredRecord(Protocol):
    """The fields of a state-store record this module reads."""

    @property
    def kind(self) -> str: ...

    @property
    def payload(self) -> dict[str, Any]: ...

    @property
    def ts_ns(self) -> int: ...


@dataclass(frozen=True, slots=True)
class RecoveredRisk:
    """What the store says about risk: checkpoint snapshot, later transitions, latest time."""

    snapshot: dict[str, Any] | None
    transitions: tuple[RiskTransition, ...]
    last_ts_ns: int | None
    """Latest timestamp among the checkpoint and every record after it (any kind)."""

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
        return {
            "state": self.state.value,
            "since_ns": None if last is None else last.ts_ns,
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
            "last_event_ts_ns": self.last_ts_ns,
        }


def recover_risk(
    checkpoint: Mapping[str, Any] | None,
    records: Iterable[StoredRecord],
    *,
    checkpoint_ts_ns: int | None = None,
) -> RecoveredRisk:
    """Collect the risk view of a store's recovery result.

    Raises ``ValueError`` when the checkpoint's ``risk`` section or a transition is malformed.
    """
    snapshot: dict[str, Any] | None = None
    if checkpoint is not None:
        section = checkpoint.get(CHECKPOINT_RISK_KEY)
        if section is not None:
            if not isinstance(section, dict) or "state" not in section:
                raise ValueError("the checkpoint's 'risk' section is not a risk engine snapshot")
            RiskState(section["state"])
            snapshot = section
    transitions: list[RiskTransition] = []
    last_ts = checkpoint_ts_ns
    for record in records:
        if last_ts is None or record.ts_ns > last_ts:
            last_ts = record.ts_ns
        if record.kind == RISK_TRANSITION_KIND:
            transitions.append(RiskTransition.from_payload(record.payload))
    return RecoveredRisk(snapshot, tuple(transitions), last_ts)


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
