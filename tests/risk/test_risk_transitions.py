"""State machine: every COOL trigger, the cooldown, the drawdown halt, kill switch, store failure,
persistence order, flattening, snapshot/restore and replaying recorded transitions."""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

import pytest
from risk_fakes import FakeView, proposal

from weltklassebot.core.timeutil import NS_PER_MINUTE, NS_PER_SECOND
from weltklassebot.risk import (
    DenialReason,
    RiskConfig,
    RiskEngine,
    RiskState,
    RiskTransition,
)

ACTIVE, COOL, HALTED = RiskState.ACTIVE, RiskState.COOL, RiskState.HALTED


class Recorder:
    """A persist callable that records what it was given and what state the engine was in."""

    def __init__(self) -> None:
        self.records: list[RiskTransition] = []
        self.engine: RiskEngine | None = None
        self.states_seen: list[RiskState] = []
        self.fail = False

    def __call__(self, transition: RiskTransition) -> None:
        if self.engine is not None:
            self.states_seen.append(self.engine.state)
        if self.fail:
            raise OSError("disk full")
        self.records.append(transition)


def make(initial_equity: int = 100_000, **limits: Any) -> tuple[RiskEngine, Recorder]:
    recorder = Recorder()
    risk = RiskEngine(
        RiskConfig(**limits), initial_equity=initial_equity, money_scale=2, persist=recorder
    )
    recorder.engine = risk
    return risk, recorder


def round_trip(risk: RiskEngine, view: FakeView, pnl: int, ts: int, symbol: str = "BTC") -> None:
    """Open (fee 0) and close a 1-unit long with realised PnL ``pnl``."""
    view.fill(symbol, 1, 1)
    risk.on_fill(symbol, 1, 1, 100, 0, ts, view)
    view.fill(symbol, -1, 1)
    risk.on_fill(symbol, -1, 1, 100, pnl, ts, view)


# --- COOL triggers ---------------------------------------------------------------------------


def test_consecutive_losing_round_trips_enter_cool() -> None:
    risk, rec = make(max_consecutive_losses=3)
    view = FakeView()
    round_trip(risk, view, -1, 1)
    round_trip(risk, view, -1, 2)
    round_trip(risk, view, 5, 3)   # a winner resets the count
    round_trip(risk, view, -1, 4)
    round_trip(risk, view, -1, 5)
    assert risk.state is ACTIVE
    round_trip(risk, view, -1, 6)
    assert risk.state is COOL
    assert rec.records[-1].reason == "consecutive_losses"
    assert rec.records[-1].until_ns == 6 + risk.config.cooldown
    assert risk.round_trips == (6, 5)


def test_round_trip_pnl_includes_fees_and_ends_on_flip() -> None:
    risk, _ = make(max_consecutive_losses=2)
    view = FakeView()
    # trip 1: open with fee -3, close flat at +2 gross-net => trip PnL -1 (losing)
    risk.on_fill("BTC", 1, 2, 100, -3, 1, view)
    risk.on_fill("BTC", -1, 1, 100, 1, 2, view)   # still open
    risk.on_fill("BTC", -1, 1, 100, 1, 3, view)   # flat: -3 + 1 + 1 = -1
    assert risk.round_trips == (1, 1)
    # trip 2: opens long, then a flip closes it (loss) and opens a short
    risk.on_fill("BTC", 1, 1, 100, 0, 4, view)
    risk.on_fill("BTC", -1, 3, 100, -1, 5, view)
    assert risk.round_trips == (2, 2)
    assert risk.state is COOL


def test_zero_pnl_round_trip_is_not_losing() -> None:
    risk, _ = make(max_consecutive_losses=1)
    view = FakeView()
    round_trip(risk, view, 0, 1)
    assert risk.state is ACTIVE
    round_trip(risk, view, -1, 2)
    assert risk.state is COOL


def test_window_loss_above_limit_enters_cool_and_window_slides() -> None:
    # limit 10.00 quote = 1000 money units, window 1 minute
    risk, rec = make(max_window_loss=10, loss_window="1m")
    view = FakeView()
    risk.on_fill("BTC", 1, 1, 100, -600, 0, view)
    risk.on_fill("BTC", 1, 1, 100, -400, NS_PER_SECOND, view)   # exactly 1000: not above
    assert risk.state is ACTIVE
    # at 60 s the first loss leaves the window (now - 1m, now]
    risk.on_fill("BTC", 1, 1, 100, -600, NS_PER_MINUTE, view)
    assert risk.state is ACTIVE
    risk.on_fill("BTC", 1, 1, 100, -1, NS_PER_MINUTE + 1, view)   # 400 + 600 + 1 > 1000
    assert risk.state is COOL
    assert rec.records[-1].reason == "window_loss"


def test_window_loss_is_net_of_gains() -> None:
    risk, _ = make(max_window_loss=10)
    view = FakeView()
    risk.on_fill("BTC", 1, 1, 100, 500, 0, view)
    risk.on_fill("BTC", 1, 1, 100, -1400, 1, view)
    assert risk.state is ACTIVE
    risk.on_fill("BTC", 1, 1, 100, -101, 2, view)
    assert risk.state is COOL


def test_denial_storm_enters_cool_and_state_denials_do_not_count() -> None:
    risk, rec = make(max_denials=3, denial_window="10s", max_order_qty=1)
    view = FakeView()
    risk.check(proposal(qty=2, ts_ns=0), view)
    risk.check(proposal(qty=2, ts_ns=NS_PER_SECOND), view)
    # third denial 10 s after the first: the first has left (now - 10s, now]
    risk.check(proposal(qty=2, ts_ns=10 * NS_PER_SECOND), view)
    assert risk.state is ACTIVE
    risk.check(proposal(qty=2, ts_ns=10 * NS_PER_SECOND + 1), view)
    assert risk.state is COOL
    assert rec.records[-1].reason == "denial_storm"
    for ts in range(5):
        assert risk.check(proposal(ts_ns=11 * NS_PER_SECOND + ts), view).reason is (
            DenialReason.cooldown
        )
    assert risk.denials == {"cooldown": 5, "max_order_qty": 4}


def test_buying_power_denials_count_toward_the_storm() -> None:
    risk, _ = make(max_denials=2)
    risk.record_denial(DenialReason.insufficient_buying_power, 0)
    risk.record_denial(DenialReason.insufficient_buying_power, 1)
    assert risk.state is COOL


def test_exposure_spike_enters_cool() -> None:
    risk, rec = make(exposure_spike=100)   # 10000 money units
    view = FakeView(prices={"BTC": 10_000})
    view.fill("BTC", 1, 1)
    risk.on_fill("BTC", 1, 1, 10_000, 0, 1, view)
    assert risk.state is ACTIVE
    view.fill("BTC", 1, 1)
    risk.on_fill("BTC", 1, 1, 10_000, 0, 2, view)
    assert risk.state is COOL
    assert rec.records[-1].reason == "exposure_spike"


# --- COOL behaviour and its end ---------------------------------------------------------------


def cool_engine(cooldown: str = "5m") -> tuple[RiskEngine, Recorder, FakeView]:
    risk, rec = make(max_denials=1, cooldown=cooldown)
    risk.record_denial(DenialReason.insufficient_buying_power, 1_000)
    assert risk.state is COOL
    return risk, rec, FakeView(positions={"BTC": 4})


def test_cool_clips_to_the_reducing_part() -> None:
    risk, _, view = cool_engine()
    adding = risk.check(proposal(side=1, qty=2, ts_ns=2_000), view)
    assert (adding.allowed_qty, adding.reason) == (0, DenialReason.cooldown)
    flip = risk.check(proposal(side=-1, qty=10, ts_ns=2_000), view)
    assert (flip.allowed_qty, flip.reason) == (4, DenialReason.cooldown)
    reducing = risk.check(proposal(side=-1, qty=3, ts_ns=2_000), view)
    assert (reducing.allowed_qty, reducing.reason) == (3, None)


def test_cool_ends_exactly_when_cooldown_elapsed_on_event_clock() -> None:
    risk, rec, _ = cool_engine("5m")
    end = 1_000 + 5 * NS_PER_MINUTE
    assert risk.cool_until_ns == end
    risk.on_equity(end - 1, 100_000)
    assert risk.state is COOL
    risk.on_equity(end, 100_000)
    assert risk.state is ACTIVE
    assert rec.records[-1].reason == "cooldown_elapsed"
    assert rec.records[-1].ts_ns == end


def test_cool_ends_on_a_proposal_after_the_cooldown() -> None:
    risk, _, view = cool_engine("1s")
    decision = risk.check(proposal(side=1, qty=1, ts_ns=1_000 + NS_PER_SECOND), view)
    assert decision.passed
    assert risk.state is ACTIVE


def test_time_going_backwards_acts_at_the_latest_time() -> None:
    risk, _, _ = cool_engine("1s")
    risk.on_equity(1_000 + NS_PER_SECOND, 100_000)
    assert risk.state is ACTIVE
    risk.on_equity(0, 100_000)
    assert risk.clock_ns == 1_000 + NS_PER_SECOND


# --- HALTED ----------------------------------------------------------------------------------


def test_drawdown_halts_exactly_at_the_cap() -> None:
    risk, rec = make(initial_equity=10_000, drawdown_cap="0.1")
    risk.on_equity(1, 12_000)              # new peak
    risk.on_equity(2, 10_801)              # 1199 / 12000 < 0.1
    assert risk.state is ACTIVE
    assert risk.drawdown == Fraction(1199, 12_000)
    risk.on_equity(3, 10_800)              # 1200 / 12000 == 0.1 -> halt
    assert risk.state is HALTED
    assert risk.drawdown == risk.drawdown_cap == Fraction(1, 10)
    assert rec.records[-1].reason == "drawdown_cap"
    assert rec.records[-1].peak_equity == 12_000


def test_drawdown_comparison_is_exact_where_floats_are_not() -> None:
    # cap 0.3: peak 10 -> equity 7 is exactly 30 %; 1 - 0.7 in floats is 0.30000000000000004
    risk, _ = make(initial_equity=10, drawdown_cap="0.3")
    risk.on_equity(1, 7)
    assert risk.state is HALTED
    risk2, _ = make(initial_equity=10**18, drawdown_cap="0.3")
    risk2.on_equity(1, 7 * 10**17 + 1)
    assert risk2.state is ACTIVE


def test_peak_starts_at_initial_equity() -> None:
    risk, _ = make(initial_equity=1_000, drawdown_cap="0.5")
    risk.on_equity(1, 500)
    assert risk.state is HALTED
    assert risk.peak_equity == 1_000


def test_drawdown_halts_from_cool() -> None:
    risk, _, _ = cool_engine()
    assert risk.drawdown_cap is None
    risk2, _ = make(max_denials=1, drawdown_cap="0.1")
    risk2.record_denial(DenialReason.insufficient_buying_power, 1)
    assert risk2.state is COOL
    risk2.on_equity(2, 90_000)
    assert risk2.state is HALTED


def test_halted_only_left_by_resume_and_resume_resets_peak() -> None:
    risk, rec = make(drawdown_cap="0.1", cooldown="1s")
    risk.on_equity(1, 80_000)
    assert risk.state is HALTED
    risk.on_equity(10**15, 200_000)      # time and recovery do not leave HALTED
    risk.on_equity(10**15 + 1, 80_000)
    assert risk.state is HALTED
    assert risk.peak_equity == 200_000
    assert risk.halt("again", 10**15 + 2) is False
    assert risk.resume(10**15 + 3, reason="checked") is True
    assert risk.state is ACTIVE
    assert risk.peak_equity == 80_000
    assert rec.records[-1].peak_equity == 80_000
    assert rec.records[-1].detail == "checked"
    assert risk.resume(10**15 + 4) is False


def test_resume_keep_peak_halts_again_at_next_equity() -> None:
    risk, _ = make(drawdown_cap="0.1")
    risk.on_equity(1, 80_000)
    risk.resume(2, keep_peak=True)
    assert risk.state is ACTIVE
    assert risk.peak_equity == 100_000
    risk.on_equity(3, 80_000)
    assert risk.state is HALTED


def test_kill_switch_from_active_and_cool() -> None:
    risk, rec = make()
    assert risk.halt("fat finger on venue", 7, cursor=42, user="alice") is True
    assert risk.state is HALTED
    t = rec.records[-1]
    assert (t.reason, t.detail, t.source, t.cursor, t.user) == (
        "kill_switch", "fat finger on venue", "operator", 42, "alice"
    )
    view = FakeView(positions={"BTC": -2})
    d = risk.check(proposal(side=1, qty=5, ts_ns=8), view)
    assert (d.allowed_qty, d.reason) == (2, DenialReason.halted)
    risk2, _, _ = cool_engine()
    assert risk2.halt("x", 2_000)
    assert risk2.state is HALTED
    assert risk2.cool_until_ns is None


def test_flatten_on_halt() -> None:
    risk, _ = make(flatten_on_halt=True, max_order_qty=3, max_order_notional=250)
    view = FakeView(positions={"BTC": 7, "ETH": -2, "SOL": 0}, prices={"BTC": 10_000, "ETH": 5})
    assert risk.wants_flatten is False
    risk.halt("stop", 1)
    assert risk.wants_flatten is True
    # BTC chunks: qty limit 3 (250.00 quote = 25000 units => 2 units at 10000)
    assert risk.flatten_orders(["SOL", "ETH", "BTC"], view) == [
        ("BTC", -1, 2), ("BTC", -1, 2), ("BTC", -1, 2), ("BTC", -1, 1), ("ETH", 1, 2),
    ]
    view.open_orders[("BTC", -1)] = 6
    assert risk.flatten_orders(["BTC"], view) == [("BTC", -1, 1)]
    for symbol, side, qty in risk.flatten_orders(["BTC", "ETH"], view):
        assert risk.check(proposal(symbol=symbol, side=side, qty=qty, ts_ns=2), view).passed
    risk.clear_flatten()
    assert risk.wants_flatten is False
    risk2, _ = make()
    risk2.halt("stop", 1)
    assert risk2.wants_flatten is False


# --- persistence order -----------------------------------------------------------------------


def test_persist_is_called_before_the_state_changes() -> None:
    risk, rec = make(max_denials=1, drawdown_cap="0.5", cooldown="1s")
    risk.record_denial(DenialReason.insufficient_buying_power, 1)
    risk.on_equity(NS_PER_SECOND + 1, 100_000)
    risk.halt("x", NS_PER_SECOND + 2)
    risk.resume(NS_PER_SECOND + 3)
    assert rec.states_seen == [ACTIVE, COOL, ACTIVE, HALTED]
    assert [(t.from_state, t.to_state) for t in rec.records] == [
        (ACTIVE, COOL), (COOL, ACTIVE), (ACTIVE, HALTED), (HALTED, ACTIVE)
    ]
    assert risk.transitions == rec.records


def test_failing_persist_leaves_state_unchanged_and_breach_retries() -> None:
    risk, rec = make(drawdown_cap="0.1")
    rec.fail = True
    with pytest.raises(OSError, match="disk full"):
        risk.on_equity(1, 50_000)
    assert risk.state is ACTIVE
    assert risk.transitions == []
    with pytest.raises(OSError, match="disk full"):
        risk.halt("x", 2)
    assert risk.state is ACTIVE
    rec.fail = False
    risk.on_equity(3, 50_000)
    assert risk.state is HALTED


def test_store_failure_halts_at_once_and_is_persisted_later_in_order() -> None:
    risk, rec = make()
    rec.fail = True
    assert risk.store_failed(5, "ENOSPC writing segment") is True
    assert risk.state is HALTED
    assert rec.states_seen == []                     # persist was not even tried
    assert [t.reason for t in risk.pending_transitions] == ["store_write_failed"]
    assert risk.store_failed(6, "again") is False
    with pytest.raises(OSError, match="disk full"):
        risk.retry_persist()
    with pytest.raises(OSError, match="disk full"):
        risk.resume(7)                               # cannot leave HALTED while unwritten
    assert risk.state is HALTED
    rec.fail = False
    assert risk.resume(8) is True                    # writes the pending halt first
    assert [t.reason for t in rec.records] == ["store_write_failed", "operator_resume"]
    assert risk.pending_transitions == []
    assert risk.retry_persist() == 0


# --- snapshot, restore, replay ----------------------------------------------------------------


def test_snapshot_restore_round_trip_is_exact() -> None:
    config = RiskConfig.model_validate(dict(
        max_denials=3, max_consecutive_losses=2, max_window_loss=50, max_orders_per_second=2,
        max_orders_per_minute=5, max_order_qty=4, drawdown_cap="0.2", flatten_on_halt=True,
    ))
    risk = RiskEngine(config, initial_equity=100_000, money_scale=2)
    view = FakeView(positions={"BTC": 1}, prices={"BTC": 100})
    risk.check(proposal(qty=9, ts_ns=1), view)
    risk.check(proposal(qty=1, ts_ns=2), view)
    risk.on_fill("BTC", 1, 1, 100, -30, 3, view)
    risk.on_fill("BTC", -1, 2, 100, -10, 4, view)
    risk.on_equity(5, 110_000)
    snap = json.loads(json.dumps(risk.snapshot()))
    twin = RiskEngine.restore(config, snap)
    assert twin.snapshot() == risk.snapshot()
    for ts in range(6, 40):
        p = proposal(side=1 if ts % 3 else -1, qty=ts % 6 + 1, ts_ns=ts * 10**8)
        assert twin.check(p, view) == risk.check(p, view)
        twin.on_fill("BTC", 1, 1, 100, -ts, ts * 10**8, view)
        risk.on_fill("BTC", 1, 1, 100, -ts, ts * 10**8, view)
        twin.on_equity(ts * 10**8, 110_000 - ts * 1000)
        risk.on_equity(ts * 10**8, 110_000 - ts * 1000)
        assert twin.snapshot() == risk.snapshot()
    assert risk.state is HALTED


def test_restore_refuses_other_schema_and_malformed() -> None:
    with pytest.raises(ValueError, match="schema"):
        RiskEngine.restore(RiskConfig(), {"schema": 99})
    snap = RiskEngine(RiskConfig(), initial_equity=1, money_scale=2).snapshot()
    del snap["peak_equity"]
    with pytest.raises(ValueError, match="malformed"):
        RiskEngine.restore(RiskConfig(), snap)


def test_replay_recorded_transitions_reproduces_state() -> None:
    risk, rec = make(max_denials=1, cooldown="1m", drawdown_cap="0.1")
    risk.record_denial(DenialReason.insufficient_buying_power, 1)
    risk.halt("x", 2)
    risk.resume(3)
    risk.record_denial(DenialReason.insufficient_buying_power, 4)
    payloads = [json.loads(json.dumps(t.to_payload())) for t in rec.records]
    # replay into an engine whose config has another cooldown: the record decides
    other = RiskEngine(RiskConfig.model_validate({"cooldown": "1h"}), initial_equity=100_000,
                       money_scale=2)
    for payload in payloads:
        other.replay_transition(RiskTransition.from_payload(payload))
    assert other.state is COOL
    assert other.cool_until_ns == 4 + NS_PER_MINUTE
    assert other.transitions == risk.transitions
    with pytest.raises(ValueError, match="does not follow"):
        other.replay_transition(RiskTransition.from_payload(payloads[2]))


def test_transition_payload_validation() -> None:
    good = RiskTransition(1, ACTIVE, HALTED, "kill_switch", "x").to_payload()
    assert RiskTransition.from_payload(good).to_state is HALTED
    with pytest.raises(ValueError, match="newer"):
        RiskTransition.from_payload({**good, "schema": 2})
    with pytest.raises(ValueError, match="lacks"):
        RiskTransition.from_payload({k: v for k, v in good.items() if k != "to_state"})
    with pytest.raises(ValueError, match="ts_ns"):
        RiskTransition.from_payload({**good, "ts_ns": "1"})
    with pytest.raises(ValueError, match="PAUSED"):
        RiskTransition.from_payload({**good, "to_state": "PAUSED"})


def test_status_summary() -> None:
    risk, _ = make(drawdown_cap="0.1")
    risk.on_equity(1, 95_000)
    status = risk.status()
    assert status["state"] == "ACTIVE"
    assert status["drawdown"] == "1/20"
    assert status["drawdown_cap"] == "1/10"
    risk.halt("because", 2)
    status = risk.status()
    assert (status["state"], status["reason"], status["since_ns"]) == ("HALTED", "kill_switch", 2)
