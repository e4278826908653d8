"""The engine's seams: fills a venue resends are applied once, client order ids are derived
from the run alone, and a stage probe measures exclusive time per stage without changing a run."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from support.bars import HOUR
from support.resume import Recorder, Spec
from weltklassebot.engine.backtest import BacktestEngine
from weltklassebot.engine.probe import STAGES, TimingProbe
from weltklassebot.engine.venue import SimulatedVenue
from weltklassebot.model.records import Fill


def run(spec: Spec, prepare: Any = None) -> tuple[dict[str, Any], BacktestEngine]:
    engine, chunks = spec.build()
    if prepare is not None:
        prepare(engine)
    rec = Recorder()
    engine.start(int(chunks[0].ts[0]), equity_sink=rec.equity, batch_sink=rec.batch)
    for chunk in chunks:
        engine.step(chunk)
    engine.stop()
    return rec.outputs(), engine


def run_probed(spec: Spec, probe: TimingProbe) -> tuple[dict[str, Any], BacktestEngine]:
    """``run`` with ``probe`` attached to the engine."""

    def attach(engine: BacktestEngine) -> None:
        engine.probe = probe

    return run(spec, attach)


SPEC = Spec("all_orders", 2, 7, True, "stochastic", True, True, 3)


def test_resent_fills_are_dropped_and_counted_at_the_accounting_boundary() -> None:
    plain, _ = run(SPEC)
    resent = 0

    def resend_every_third(engine: BacktestEngine) -> None:
        assert isinstance(engine.venue, SimulatedVenue)
        deliver = engine.venue.on_fill
        counter = itertools.count()

        def on_fill(fill: Fill) -> None:
            nonlocal resent
            deliver(fill)
            if next(counter) % 3 == 0:
                resent += 1
                deliver(fill)  # the venue sends it again

        engine.venue.on_fill = on_fill

    outputs, engine = run(SPEC, resend_every_third)
    assert resent > 5
    assert engine.duplicate_fills == resent
    assert outputs == plain


def test_client_order_ids_come_from_the_run_alone() -> None:
    a, _ = SPEC.build()
    b, _ = SPEC.build()
    other, _ = Spec(**{**SPEC.__dict__, "seed": 4}).build()
    assert a.client_order_id(7) == b.client_order_id(7)
    assert a.client_order_id(7) != a.client_order_id(8)
    assert a.client_order_id(7) != other.client_order_id(7)
    assert a.client_order_id(7).endswith("-7")


def test_probe_measures_each_stage_exclusively_and_changes_nothing() -> None:
    plain, _ = run(Spec("all_orders", 1, 50, True, "stochastic", True, True, 3))
    ticks = itertools.count(step=10)
    probe = TimingProbe(timer=lambda: next(ticks))
    probed, engine = run_probed(Spec("all_orders", 1, 50, True, "stochastic", True, True, 3),
                                probe)
    assert probed == plain
    assert probe.events == engine._bars
    for stage in ("strategy", "execution", "accounting", "risk"):
        assert probe.total[stage] > 0, stage
    assert set(probe.total) == set(STAGES)


def test_probe_on_several_symbols_counts_instants_and_changes_nothing() -> None:
    spec = Spec("all_orders", 2, 7, True, "stochastic", True, True, 3)
    plain, _ = run(spec)
    probe = TimingProbe()
    probed, engine = run_probed(spec, probe)
    assert probed == plain
    assert probe.events == engine._equity_points  # one event per instant
    assert probe.total["strategy"] > 0
    assert probe.total["execution"] > 0


@pytest.mark.parametrize("strategy", ["sma_cross", "donchian_breakout"])
@pytest.mark.parametrize("risk", [False, True])
def test_every_one_bar_step_is_one_probe_event(strategy: str, risk: bool) -> None:
    """As the service steps: one bar per step, a strategy that sleeps between its wake bars.
    Each step ends exactly one event (a quiet bar too), so one event's stage times never hold
    another's; and the probe changes nothing."""
    spec = Spec(strategy, 1, 50, False, "none", False, risk, 3)
    plain, _ = run(spec)
    ticks = itertools.count(step=10)
    probe = TimingProbe(timer=lambda: next(ticks))
    per_step: list[int] = []
    engine, chunks = spec.build()
    engine.probe = probe
    rec = Recorder()
    engine.start(int(chunks[0].ts[0]), equity_sink=rec.equity, batch_sink=rec.batch)
    for chunk in chunks:
        for i in range(len(chunk)):
            before = probe.events
            engine.step(chunk.slice(i, i + 1))
            per_step.append(probe.events - before)
    engine.stop()
    assert rec.outputs() == plain
    assert per_step == [1] * engine._bars
    assert engine._slots[0].series.wake is not None  # it did sleep between wake bars


@pytest.mark.parametrize("symbols", [1, 2])
def test_with_a_probe_whole_chunks_are_one_event_per_bar_or_instant(symbols: int) -> None:
    """Over whole chunks too, with a probe no quiet stretch is accounted in bulk: every bar
    (one symbol) or instant (several) is one event; results as without the probe."""
    spec = Spec("sma_cross", symbols, 50, False, "none", False, True, 3)
    plain, _ = run(spec)
    probe = TimingProbe()
    probed, engine = run_probed(spec, probe)
    assert probed == plain
    assert probe.events == engine._equity_points
    assert engine._equity_points == (engine._bars if symbols == 1 else engine._bars // 2)


def test_probe_charges_nested_stages_their_own_time_only() -> None:
    readings = iter([0, 10, 25, 40, 45, 60])
    probe = TimingProbe(timer=lambda: next(readings))
    probe.enter("execution")   # 0
    probe.enter("accounting")  # 10: a fill is booked
    probe.enter("strategy")    # 25: on_fill
    probe.exit()               # 40
    probe.exit()               # 45
    probe.exit()               # 60
    probe.event_done()
    assert probe.last == {"ingest": 0, "strategy": 15, "risk": 0, "execution": 25,
                          "accounting": 20}
    assert sum(probe.last.values()) == 60
    assert probe.events == 1


def test_the_venue_is_injected_and_reached_only_through_its_protocol() -> None:
    from weltklassebot.engine.venue import SimulatedVenue

    calls: list[str] = []

    class Recording(SimulatedVenue):
        """The simulated venue, recording which protocol calls the engine makes."""

        def accept(self, order: Any) -> None:
            calls.append("accept")
            super().accept(order)

        def process_bar(self, symbol: str, ts_ns: int, bar_open: int, bar_high: int,
                        bar_low: int, volume_cap: int | None) -> bool:
            calls.append("process_bar")
            return super().process_bar(symbol, ts_ns, bar_open, bar_high, bar_low, volume_cap)

        def take_closed(self) -> list[Any]:
            calls.append("take_closed")
            return super().take_closed()

    spec = Spec("all_orders", 1, 50, False, "none", False, False, 3)
    plain, _ = run(spec)
    engine, chunks = spec.build()
    injected = BacktestEngine(engine.instruments, {s: HOUR for s in engine.symbols},
                              engine.execution, engine._slots[0].strategy.__class__,
                              engine.strategy_name, engine.seed, venue_factory=Recording)
    rec = Recorder()
    injected.start(int(chunks[0].ts[0]), equity_sink=rec.equity, batch_sink=rec.batch)
    for chunk in chunks:
        injected.step(chunk)
    injected.stop()
    assert isinstance(injected.venue, Recording)
    assert rec.outputs() == plain
    assert {"accept", "process_bar", "take_closed"} <= set(calls)
