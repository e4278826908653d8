"""The fast path gives the engine's fills, orders, equity curve and equity hash, bit for bit,
for every built-in over generated parameters, costs and bars; and a backtest's statistics.

Bars: a random walk in ticks with gaps in time (missing bars), flat stretches (open = high =
low = close), zero-volume bars and thin volumes, at prices of a few ticks up to 10^12 ticks
(with quantities of up to 10^9 ticks: products beyond int64, formed in 128 bits; where even
the results could leave int64 the fast path falls back, and the example is not counted).
Costs: maker rebates, minimum fees, fixed and stochastic slippage, latency with jitter, a
volume cap, leverage above and below 1, cash from too little to plenty, three cash increments
and four quantity increments. The engine steps through the bars 1, 7 or 4,096 at a time (its
results do not depend on it).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from fastpath.compare import assert_same, bars_of, config_of, run_engine, run_fast, spec_of
from weltklassebot import fastpath
from weltklassebot.config.model import BacktestConfig
from weltklassebot.model.instrument import Instrument
from weltklassebot.runs.backtest import prepare_data, simulate

HOUR = 3_600_000_000_000
T0 = 1_700_000_000 * 10**9

bar_moves = st.lists(st.tuples(
    st.integers(-40, 40),  # open's move from the last close
    st.integers(-60, 60),  # close's move from the open
    st.integers(0, 25),  # high above the body
    st.integers(0, 25),  # low below the body
    st.sampled_from([1, 1, 1, 1, 2, 5]),  # hours to the next bar (gaps)
    st.booleans(),  # a flat bar
    st.sampled_from([0.0, 0.001, 0.5, 1.0, 3.7, 10.0, 123.456]),  # volume
), max_size=160)


def make_bars(config: BacktestConfig, moves: list[tuple[int, int, int, int, int, bool, float]],
              start: int, qty_inc: str, magnitude: int = 1) -> fastpath.Bars:
    rows = []
    volumes = []
    t = T0
    price = start
    for open_move, close_move, up, down, gap, flat, volume in moves:
        if flat:
            o = h = low = c = price
        else:
            o = max(2, price + open_move)
            c = max(2, o + close_move)
            h = max(o, c) + up
            low = max(1, min(o, c) - down)
        rows.append((t, o * magnitude, h * magnitude, low * magnitude, c * magnitude))
        volumes.append(volume)
        price = c
        t += gap * HOUR
    return bars_of(config, np.asarray(rows, dtype=np.int64).reshape(-1, 5),
                   np.asarray(volumes, dtype=np.float64), quantity_increment=qty_inc)


sma_params = st.integers(1, 8).flatmap(lambda fast: st.fixed_dictionaries({
    "fast": st.just(fast), "slow": st.integers(fast + 1, fast + 12),
    "qty": st.sampled_from(["1", "0.5", "2.345", "10", "0.001"]),
    "fraction": st.sampled_from(["0", "0", "0.95", "0.5", "1", "2.5", "0.333333"])}))
donchian_params = st.fixed_dictionaries({
    "entry": st.integers(1, 10), "exit": st.integers(1, 10),
    "qty": st.sampled_from(["1", "0.5", "2.345", "10", "0.001"])})
execution = st.fixed_dictionaries({
    "initial_cash": st.sampled_from(["10", "50", "1000", "100000", "100000000"]),
    "cash_increment": st.sampled_from(["0.01", "0.00000001", "0.25"]),
    "leverage": st.sampled_from(["1", "2", "0.5", "1.37"]),
    "fees": st.fixed_dictionaries({
        "maker_bps": st.sampled_from(["10", "-2.5", "0", "1.234"]),
        "taker_bps": st.sampled_from(["10", "0", "33.3"]),
        "min_fee": st.sampled_from(["0", "1.5"])}),
    "slippage": st.one_of(
        st.just({"model": "none"}),
        st.sampled_from(["0", "5", "2.5", "150"]).map(lambda b: {"model": "fixed", "bps": b}),
        st.sampled_from(["0", "10", "3.333"]).map(
            lambda b: {"model": "stochastic", "max_bps": b})),
    "latency": st.fixed_dictionaries({
        "delay": st.sampled_from([0, 1, HOUR // 2, HOUR, 2 * HOUR]),
        "jitter": st.sampled_from([0, 1, HOUR, 10 * HOUR])}),
}).flatmap(lambda ex: st.sampled_from([None, "1", "0.5", "0.1", "0.01"]).map(
    lambda cap: ex if cap is None else {**ex, "volume_participation": cap}))


@given(strategy=st.sampled_from(["sma_cross", "donchian_breakout"]), data=st.data(),
       ex=execution, moves=bar_moves, start=st.integers(2, 5_000),
       qty_inc=st.sampled_from(["0.001", "0.25", "1", "0.00000001"]),
       magnitude=st.sampled_from([1, 1, 10_000, 100_000_000]),
       seed=st.integers(0, 2**64 - 1), step=st.sampled_from([1, 7, 4096]))
@settings(max_examples=int(__import__("os").environ.get("WELTKLASSE_FASTPATH_EXAMPLES", "300")),
          deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fast_path_equals_the_engine(strategy: str, data: st.DataObject, ex: dict[str, Any],
                                     moves: list[Any], start: int, qty_inc: str,
                                     magnitude: int, seed: int, step: int) -> None:
    params: dict[str, Any] = data.draw(sma_params if strategy == "sma_cross"
                                       else donchian_params)
    config = config_of(strategy, params, seed=seed, execution=ex)
    bars = make_bars(config, moves, start, qty_inc, magnitude)
    assume(bars.instrument.qty_ticks(params["qty"]) > 0)  # the engine refuses those runs
    assert fastpath.available(spec_of(config), config)
    try:
        fast = run_fast(config, bars)
    except fastpath.FallBack as why:
        event(f"fell back: {str(why).partition(' could')[0]}")
        assume(False)
    assert_same(run_engine(config, bars, step), fast)


def test_the_examples_trade() -> None:
    """The generated runs are not idle: a fixed draw of the ranges above fills, refuses and
    cancels (so the equality above covers the whole order path)."""
    rng = np.random.default_rng(5)
    moves = [(int(rng.integers(-40, 41)), int(rng.integers(-60, 61)), int(rng.integers(0, 26)),
              int(rng.integers(0, 26)), 1, False, 1.0) for _ in range(300)]
    seen = {"fills": 0, "denials": 0, "cancelled": 0}
    for strategy, params, cash in (("sma_cross", {"fast": 2, "slow": 5}, "100000"),
                                   ("donchian_breakout", {"entry": 5, "exit": 3}, "100000"),
                                   ("donchian_breakout", {"entry": 3, "exit": 2}, "10")):
        config = config_of(strategy, params, execution={"initial_cash": cash})
        bars = make_bars(config, moves, 1_000, "0.001")
        engine, fast = run_engine(config, bars), run_fast(config, bars)
        assert_same(engine, fast)
        seen["fills"] += len(fast.fills)
        seen["denials"] += fast.denials
        seen["cancelled"] += sum(o.status == "cancelled" for o in fast.orders)
    assert all(count > 10 for count in seen.values()), seen


@pytest.mark.parametrize(("strategy", "params", "execution"), [
    ("sma_cross", {}, {}),
    ("donchian_breakout", {}, {}),
    ("sma_cross", {"fast": 3, "slow": 7, "qty": "0.37", "fraction": "0.8"},
     {"volume_participation": "0.001", "latency": {"delay": "30m", "jitter": "2h"},
      "slippage": {"model": "stochastic", "max_bps": "5"}, "leverage": "3"}),
    ("donchian_breakout", {"entry": 4, "exit": 2, "qty": "2"},
     {"initial_cash": "20000", "slippage": {"model": "fixed", "bps": "2.5"},
      "fees": {"maker_bps": "-1", "taker_bps": "7", "min_fee": "0.5"}}),
])
def test_the_bundled_sample_as_a_backtest_runs_it(strategy: str, params: dict[str, Any],
                                                  execution: dict[str, Any]) -> None:
    """``prepare`` reads the sample as a backtest does, and ``run`` gives the backtest's
    equity hash and every statistic of its summary, to the last bit."""
    config = config_of(strategy, params, seed=11, execution=execution)
    spec = spec_of(config)
    bars = fastpath.prepare(config)
    fast = fastpath.run(spec, config, bars)
    data = prepare_data(config)
    with tempfile.TemporaryDirectory() as scratch:
        sim = simulate(Path(scratch), config, spec, data.instruments, data.intervals,
                       data.feed().chunks(), rows=data.report.rows, log=False)
    assert fast["equity_hash"] == sim.equity_hash
    assert fast["stats"] == dict(sim.analysis.stats)
    assert (fast["fills"], fast["orders"], fast["final_equity"], fast["fees_paid"]) == (
        sim.result.fill_count, sim.result.order_count, sim.result.final_equity,
        sim.result.fees_paid)


@pytest.mark.parametrize(("config", "golden"), [
    # `backtest` with no options: the demo, sized by 95 % of equity (tests/determinism pins it).
    (BacktestConfig(), "5157286e233f572603d426108774f4ce4a1407c5602cc1df7cc4999e7a1a94e8"),
    # `backtest --strategy sma_cross`: its own defaults (docs/equity-hash.md's example).
    (config_of("sma_cross", {}),
     "eb798cd1a86e02b858effc551d7d697e72c5036033c6c2fad63e0198e3976ec4"),
])
def test_the_samples_golden_hashes(config: BacktestConfig, golden: str) -> None:
    result = fastpath.run(spec_of(config), config, fastpath.prepare(config))
    assert result["equity_hash"] == golden


@dataclass(frozen=True)
class SweepArrays:
    """The shape of a sweep's snapshot arrays (one symbol: no codes)."""

    ts: np.ndarray
    codes: np.ndarray | None
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    instruments: dict[str, Instrument]
    intervals: dict[str, int]

    def __len__(self) -> int:
        return int(self.ts.size)


def test_a_sweeps_snapshot_arrays_run_like_prepared_bars() -> None:
    """Arrays a sweep read itself (no Bars): the same hash, and the statistics of an engine
    that steps through them 4,096 bars at a time, as a sweep's engine path does."""
    config = config_of("donchian_breakout", {"entry": 6, "exit": 3}, seed=3,
                       execution={"volume_participation": "0.5"})
    spec = spec_of(config)
    bars = fastpath.prepare(config)
    arrays = SweepArrays(bars.ts, None, bars.open, bars.high, bars.low, bars.close, bars.volume,
                         bars.instruments, bars.intervals)
    fast = fastpath.run(spec, config, arrays)
    assert fast["equity_hash"] == fastpath.run(spec, config, bars)["equity_hash"]
    with tempfile.TemporaryDirectory() as scratch:
        sim = simulate(Path(scratch), config, spec, arrays.instruments, arrays.intervals,
                       [bars.chunk()], rows=len(bars), log=False)
    assert fast["equity_hash"] == sim.equity_hash
    assert fast["stats"] == dict(sim.analysis.stats)


def test_without_hash_or_statistics() -> None:
    config = BacktestConfig()
    bars = fastpath.prepare(config)
    full = fastpath.run(spec_of(config), config, bars)
    bare = fastpath.run(spec_of(config), config, bars, with_hash=False, with_stats=False)
    assert bare["equity_hash"] is None
    assert bare["stats"] is None
    assert bare["equity"].tolist() == full["equity"].tolist()
    assert bare["fill_table"]["price"].tolist() == full["fill_table"]["price"].tolist()
