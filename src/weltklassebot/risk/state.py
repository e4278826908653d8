"""Risk states, denial reasons and the transition record.

The enum values are part of the product's contracts: states are the values of the ``risk_state``
metric's ``state`` label, denial reasons the values of the risk-denial metric's ``reason`` label,
and both appear verbatim in state-store records, run summaries and manifests.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

TRANSITION_SCHEMA = 1
"""Schema version of a serialised :class:`RiskTransition` (``risk_transition`` record payload)."""


class RiskState(StrEnum):
    """The risk engine's state; exactly one holds at any time."""

    ACTIVE = "ACTIVE"
    """Normal trading: every pre-trade rule applies."""
    COOL = "COOL"
    """After a breach, until the cooldown has passed on the event clock: only reducing orders."""
    HALTED = "HALTED"
    """Drawdown cap, kill switch or state-store failure: only reducing orders, until ``resume``."""


class DenialReason(StrEnum):
    """Why an order was denied or clipped; the values are metric labels."""

    max_position = "max_position"
    max_gross_notional = "max_gross_notional"
    max_order_qty = "max_order_qty"
    max_order_notional = "max_order_notional"
    order_rate_second = "order_rate_second"
    order_rate_minute = "order_rate_minute"
    price_band = "price_band"
    reduce_only = "reduce_only"
    insufficient_buying_power = "insufficient_buying_power"
    cooldown = "cooldown"
    halted = "halted"


class TransitionReason(StrEnum):
    """Why the state changed (``RiskTransition.reason``)."""

    consecutive_losses = "consecutive_losses"
    window_loss = "window_loss"
    denial_storm = "denial_storm"
    exposure_spike = "exposure_spike"
    cooldown_elapsed = "cooldown_elapsed"
    drawdown_cap = "drawdown_cap"
    kill_switch = "kill_switch"
    store_write_failed = "store_write_failed"
    store_records_lost = "store_records_lost"
    """``state repair`` quarantined records the recovered state depends on: fail safe."""
    operator_resume = "operator_resume"


@dataclass(frozen=True, slots=True)
class RiskTransition:
    """One change of risk state, persisted before it takes effect.

    ``reason`` is a :class:`TransitionReason` value; ``detail`` is text for a person (what was
    measured against which limit, or the operator's reason). ``cursor`` is the event cursor at
    which the transition took effect, when the caller has one (live service, replay).
    ``source`` says who caused it: ``"engine"`` for rule-driven transitions, ``"operator"`` or
    ``"operator-cli"`` for operator commands. ``peak_equity`` is the peak after the transition
    (a resume may reset it) and ``equity`` the last equity the engine had seen, both in money units.
    """

    ts_ns: int
    from_state: RiskState
    to_state: RiskState
    reason: str
    detail: str
    cursor: int | None = None
    source: str = "engine"
    user: str | None = None
    peak_equity: int | None = None
    equity: int | None = None
    until_ns: int | None = None

    def to_payload(self) -> dict[str, Any]:
        """JSON-able dict; the payload of a ``risk_transition`` store record."""
        return {
            "schema": TRANSITION_SCHEMA,
            "ts_ns": self.ts_ns,
            "from_state": self.from_state.value,
            "to_state": self.to_state.value,
            "reason": self.reason,
            "detail": self.detail,
            "cursor": self.cursor,
            "source": self.source,
            "user": self.user,
            "peak_equity": self.peak_equity,
            "equity": self.equity,
            "until_ns": self.until_ns,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> RiskTransition:
        """Inverse of :meth:`to_payload`; raises ``ValueError`` on a malformed or future payload."""
        schema = payload.get("schema", TRANSITION_SCHEMA)
        if not isinstance(schema, int) or schema > TRANSITION_SCHEMA:
            raise ValueError(
                f"risk transition schema {schema!r} is newer than this build understands "
                f"({TRANSITION_SCHEMA}); upgrade weltklassebot"
            )
        try:
            return cls(
                ts_ns=_opt_int(payload["ts_ns"], "ts_ns", required=True) or 0,
                from_state=RiskState(payload["from_state"]),
                to_state=RiskState(payload["to_state"]),
                reason=str(payload["reason"]),
                detail=str(payload.get("detail", "")),
                cursor=_opt_int(payload.get("cursor"), "cursor"),
                source=str(payload.get("source", "engine")),
                user=None if payload.get("user") is None else str(payload["user"]),
                peak_equity=_opt_int(payload.get("peak_equity"), "peak_equity"),
                equity=_opt_int(payload.get("equity"), "equity"),
                until_ns=_opt_int(payload.get("until_ns"), "until_ns"),
            )
        except KeyError as exc:
            raise ValueError(f"risk transition record lacks the field {exc.args[0]!r}") from None


def _opt_int(value: object, name: str, *, required: bool = False) -> int | None:
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"risk transition field {name!r} must be an integer, got {value!r}")
    return value
