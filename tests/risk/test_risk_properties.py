"""Property test: random sequences of proposals, fills, prices, equity points, operator commands and
store failures against the risk engine's invariants, with a restored twin that must agree."""

from __future__ import annotations

import json
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from risk_fakes import FakeView, proposal

from weltklassebot.core.timeutil import NS_PER_SECOND
from weltklassebot.risk import RiskConfig, RiskEngine, RiskState, RiskTransition, split_exposure

SYMBOLS = ("BTC", "ETH")
INITIAL_EQUITY = 100_000


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


configs = st.builds(
    RiskConfig,
    max_position=maybe(st.integers(1, 20)),
    max_gross_notional=maybe(st.integers(1, 5_000)),
    max_order_qty=maybe(st.integers(1, 10)),
    max_order_notional=maybe(st.integers(1, 2_000)),
    max_orders_per_second=maybe(st.integers(1, 4)),
    max_orders_per_minute=maybe(st.integers(1, 20)),
    price_band_bps=maybe(st.integers(0, 500)),
    reduce_only=st.booleans(),
    cooldown=st.integers(1, 5 * NS_PER_SECOND),
    max_consecutive_losses=maybe(st.integers(1, 4)),
    max_window_loss=maybe(st.integers(1, 100)),
    loss_window=st.integers(1, 10 * NS_PER_SECOND),
    max_denials=maybe(st.integers(1, 6)),
    denial_window=st.integers(1, 10 * NS_PER_SECOND),
    exposure_spike=maybe(st.integers(1, 5_000)),
    drawdown_cap=maybe(st.sampled_from(["0.01", "0.05", "0.1", "0.3", "1"])),
    flatten_on_halt=st.booleans(),
)


def _contains(items: list[RiskTransition], item: RiskTransition) -> bool:
    return any(x is item for x in items)


class Persist:
    """Persist callable: records, or raises while the machine says the store is failing."""

    def __init__(self, machine: RiskMachine) -> None:
        self.machine = machine
        self.engine: RiskEngine | None = None
        self.records: list[RiskTransition] = []

    def __call__(self, transition: RiskTransition) -> None:
        engine = self.engine
        assert engine is not None
        # persisted before it takes effect: the engine is still in the from-state
        if not _contains(engine.pending_transitions, transition):
            assert engine.state is transition.from_state
            assert not _contains(engine.transitions, transition)
        if self.machine.store_down:
            raise OSError("store down")
        self.records.append(transition)


class RiskMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store_down = False
        self.view = FakeView(prices={"BTC": 1_000, "ETH": 50})
        self.ts = 0
        self.equity = INITIAL_EQUITY
        self.order_id = 0
        self.twin: RiskEngine | None = None
        self.twin_persist: Persist | None = None

    @initialize(config=configs)
    def setup(self, config: RiskConfig) -> None:
        self.config = config
        self.persist = Persist(self)
        self.engine = RiskEngine(
            config, initial_equity=INITIAL_EQUITY, money_scale=2, persist=self.persist
        )
        self.persist.engine = self.engine
        self.peak = INITIAL_EQUITY

    # --- helpers --------------------------------------------------------------------------

    def call(self, action: Callable[[RiskEngine], Any], *, resume: bool = False) -> Any:
        """Run ``action`` on the engine (and the twin); check state-change invariants."""
        before = self.engine.state
        try:
            result = action(self.engine)
            error: type[BaseException] | None = None
        except OSError as exc:
            result, error = None, type(exc)
        if error is not None:
            assert self.engine.state is before, "a failed persist must leave the state unchanged"
        if before is RiskState.HALTED and self.engine.state is not RiskState.HALTED:
            assert resume, "only resume leaves HALTED"
            assert result is True
        if self.twin is not None:
            try:
                twin_result = action(self.twin)
                twin_error: type[BaseException] | None = None
            except OSError as exc:
                twin_result, twin_error = None, type(exc)
            assert (twin_result, twin_error) == (result, error)
        return result

    # --- rules ----------------------------------------------------------------------------

    @rule(dt=st.one_of(st.integers(0, NS_PER_SECOND), st.integers(0, 20 * NS_PER_SECOND)))
    def advance(self, dt: int) -> None:
        self.ts += dt

    @rule(
        symbol=st.sampled_from(SYMBOLS), side=st.sampled_from([1, -1]), qty=st.integers(1, 12),
        offset=st.integers(-60, 60), reduce_only=st.booleans(), fill=st.booleans(),
        pnl=st.integers(-40, 30),
    )
    def propose(
        self, symbol: str, side: int, qty: int, offset: int, reduce_only: bool, fill: bool,
        pnl: int,
    ) -> None:
        self.order_id += 1
        last = self.view.prices[symbol]
        p = proposal(side=side, qty=qty, price=max(1, last + offset), ts_ns=self.ts,
                     symbol=symbol, order_id=self.order_id, reduce_only=reduce_only)
        split = split_exposure(side, qty, self.view.position(symbol),
                               self.view.open_qty(symbol, side))
        decision = self.call(lambda e: e.check(p, self.view))
        if decision is None:
            return
        assert 0 <= decision.allowed_qty <= qty
        assert (decision.reason is None) == (decision.allowed_qty == qty)
        if self.engine.state is not RiskState.ACTIVE:
            assert decision.allowed_qty <= split.reducing, "risk-increasing qty passed"
        if fill and decision.allowed_qty:
            self._fill(symbol, side, decision.allowed_qty, pnl)

    @rule(symbol=st.sampled_from(SYMBOLS), side=st.sampled_from([1, -1]), qty=st.integers(1, 8),
          pnl=st.integers(-40, 30))
    def fill(self, symbol: str, side: int, qty: int, pnl: int) -> None:
        self._fill(symbol, side, qty, pnl)

    def _fill(self, symbol: str, side: int, qty: int, pnl: int) -> None:
        self.view.fill(symbol, side, qty)
        price = self.view.prices[symbol]
        self.call(lambda e: e.on_fill(symbol, side, qty, price, pnl, self.ts, self.view))

    @rule(symbol=st.sampled_from(SYMBOLS), side=st.sampled_from([1, -1]), qty=st.integers(0, 6))
    def open_orders(self, symbol: str, side: int, qty: int) -> None:
        self.view.open_orders[(symbol, side)] = qty

    @rule(symbol=st.sampled_from(SYMBOLS), move=st.integers(-30, 30))
    def price(self, symbol: str, move: int) -> None:
        self.view.prices[symbol] = max(1, self.view.prices[symbol] + move)

    @rule(delta=st.integers(-15_000, 12_000))
    def equity_point(self, delta: int) -> None:
        self.equity = max(1, self.equity + delta)
        before = self.engine.state
        peak = max(self.engine.peak_equity, self.equity)
        cap = self.engine.drawdown_cap
        should_halt = cap is not None and Fraction(peak - self.equity) >= cap * peak
        self.call(lambda e: e.on_equity(self.ts, self.equity))
        assert self.engine.peak_equity == peak
        if before is not RiskState.HALTED and not self.store_down:
            # exact: halted at the cap, and never before it
            assert (self.engine.state is RiskState.HALTED) == should_halt

    @rule(reason=st.sampled_from(["operator", "fat finger", ""]))
    def halt(self, reason: str) -> None:
        before = self.engine.state
        changed = self.call(lambda e: e.halt(reason, self.ts))
        if not self.store_down:
            assert self.engine.state is RiskState.HALTED
            assert changed == (before is not RiskState.HALTED)

    @rule(keep_peak=st.booleans())
    def resume(self, keep_peak: bool) -> None:
        before = self.engine.state
        peak_before = self.engine.peak_equity
        changed = self.call(lambda e: e.resume(self.ts, keep_peak=keep_peak), resume=True)
        if changed:
            assert before is RiskState.HALTED
            assert self.engine.state is RiskState.ACTIVE
            expected = peak_before if keep_peak else self.engine.equity
            assert self.engine.peak_equity == expected
        elif not self.store_down or before is not RiskState.HALTED:
            assert self.engine.state is before or before is RiskState.COOL

    @rule()
    def store_failure(self) -> None:
        self.call(lambda e: e.store_failed(self.ts, "ENOSPC"))
        assert self.engine.state is RiskState.HALTED

    @rule(down=st.booleans())
    def store_status(self, down: bool) -> None:
        self.store_down = down

    @precondition(lambda self: not self.store_down)
    @rule()
    def retry(self) -> None:
        self.call(lambda e: e.retry_persist())
        assert self.engine.pending_transitions == []

    @rule()
    def restart(self) -> None:
        """Snapshot through JSON and restore into a twin that must agree from here on."""
        snapshot = json.loads(json.dumps(self.engine.snapshot()))
        self.twin_persist = Persist(self)
        self.twin = RiskEngine.restore(self.config, snapshot, persist=self.twin_persist)
        self.twin_persist.engine = self.twin
        assert self.twin.snapshot() == self.engine.snapshot()

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    def one_state(self) -> None:
        engine = getattr(self, "engine", None)
        if engine is None:
            return
        assert isinstance(engine.state, RiskState)
        assert sum(engine.state is s for s in RiskState) == 1
        assert (engine.cool_until_ns is not None) == (engine.state is RiskState.COOL)
        if engine.transitions:
            assert engine.transitions[-1].to_state is engine.state
        for a, b in zip(engine.transitions, engine.transitions[1:], strict=False):
            assert a.to_state is b.from_state
            assert a.ts_ns <= b.ts_ns
        persisted = self.persist.records
        pending = engine.pending_transitions
        assert persisted == [t for t in engine.transitions if not _contains(pending, t)]

    @invariant()
    def twin_agrees(self) -> None:
        if self.twin is not None:
            assert self.twin.snapshot() == self.engine.snapshot()


RiskMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRiskMachine = RiskMachine.TestCase
