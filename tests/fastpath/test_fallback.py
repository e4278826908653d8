"""When the fast path must not run: what it does not implement (``available`` says so) and
figures int64 could not hold (``run`` raises ``FallBack``, before the kernel runs or, for what
grows while it runs, as soon as it would). The engine runs all of these."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from fastpath.compare import bars_of, config_of, run_engine, spec_of
from support.bars import write_snapshot
from weltklassebot import fastpath
from weltklassebot.config.model import BacktestConfig
from weltklassebot.fastpath import kernels as k
from weltklassebot.fastpath.runner import plan
from weltklassebot.strategy.builtin.sma_cross import SmaCross
from weltklassebot.strategy.loader import resolve_strategy

HOUR = 3_600_000_000_000
T0 = 1_700_000_000 * 10**9


def walk(n: int, base: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Bars around ``base`` ticks: a random walk of a few per cent."""
    rng = np.random.default_rng(seed)
    close = base + np.cumsum(rng.integers(-base // 50, base // 50 + 1, n))
    close = np.maximum(close, base // 2)
    open_ = np.concatenate(([close[0]], close[:-1]))
    high = np.maximum(open_, close) + base // 100
    low = np.minimum(open_, close) - base // 100
    rows = np.stack([T0 + np.arange(n, dtype=np.int64) * HOUR, open_, high, low, close], axis=1)
    return rows.astype(np.int64), np.full(n, 10.0)


class MySma(SmaCross):
    """A user's strategy built on a built-in: its code may do anything, so no fast path."""

    name: ClassVar[str] = "my_sma"


def test_available_for_the_builtins_only_and_without_risk_limits() -> None:
    config = BacktestConfig()
    assert fastpath.available(resolve_strategy("sma_cross", {}), config)
    assert fastpath.available(resolve_strategy("donchian_breakout", {}), config)
    mine = replace(resolve_strategy("sma_cross", {}), cls=MySma)
    assert not fastpath.available(mine, config)
    assert "no compiled fast path" in str(fastpath.why_not(mine, config))
    limited = BacktestConfig.model_validate({"risk": {"max_position": "1"}})
    assert not fastpath.available(resolve_strategy("sma_cross", {}), limited)
    assert "[risk]" in str(fastpath.why_not(resolve_strategy("sma_cross", {}), limited))
    bars = fastpath.prepare(config)
    with pytest.raises(fastpath.FallBack, match=r"\[risk\]"):
        fastpath.run(resolve_strategy("sma_cross", {}), limited, bars)


def test_a_builtin_parameter_the_kernel_does_not_know_is_not_available(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A built-in that gains a parameter runs on the engine until the kernel implements it."""
    monkeypatch.setattr(SmaCross, "params", {**SmaCross.params, "trailing": 0})
    spec = resolve_strategy("sma_cross", {})
    assert not fastpath.available(spec, BacktestConfig())
    assert "trailing" in str(fastpath.why_not(spec, BacktestConfig()))


def test_donchian_sized_by_fraction_runs_on_the_engine() -> None:
    """The kernel sizes donchian entries by qty only: fraction 0 (the default) is fast."""
    config = BacktestConfig()
    assert fastpath.available(resolve_strategy("donchian_breakout", {"fraction": "0"}), config)
    sized = resolve_strategy("donchian_breakout", {"fraction": "0.5"})
    assert "fraction has no compiled fast path at that value" in str(
        fastpath.why_not(sized, config))


def test_prices_and_quantities_int64_cannot_hold_fall_back_before_running() -> None:
    """Prices near 2**61 ticks: notionals would not fit int64. The fast path refuses before
    the kernel starts; the engine (Python integers) runs the same bars."""
    config = config_of("sma_cross", {"fast": 2, "slow": 4, "qty": "1"},
                       execution={"initial_cash": "1e30"})
    rows, volume = walk(60, 2**61)
    bars = bars_of(config, rows, volume, quantity_increment="0.001")
    with pytest.raises(fastpath.FallBack, match="overflow int64"):
        fastpath.run(spec_of(config), config, bars)
    engine = run_engine(config, bars, with_hash=False)
    assert engine.fills, "the engine trades these bars"
    assert max(abs(f.notional) for f in engine.fills) > 2**63  # beyond int64 indeed
    small = config_of("sma_cross", {"fast": 2, "slow": 4, "qty": "1"})
    rows, volume = walk(60, 10**6)
    big_qty = config_of("sma_cross", {"fast": 2, "slow": 4, "qty": "1e15"})
    assert fastpath.available(spec_of(small), small)
    with pytest.raises(fastpath.FallBack, match="overflow int64"):
        fastpath.run(spec_of(big_qty), big_qty, bars_of(big_qty, rows, volume))


def test_cash_that_outgrows_the_bounds_while_running_falls_back() -> None:
    """Cash is checked as it changes: starting just below the bound, the first sale takes it
    beyond, the kernel stops and ``run`` raises; the engine runs it to the end."""
    probe = config_of("donchian_breakout", {"entry": 3, "exit": 2, "qty": "1"},
                      execution={"cash_increment": "0.01"})
    rows, volume = walk(200, 10**5, seed=4)
    limit = int(plan(spec_of(probe), probe, bars_of(probe, rows, volume)).prm[k.P_CASH_LIMIT])
    cash = Decimal(limit - 1) * Decimal("0.01")  # in money units of 0.01
    config = config_of("donchian_breakout", {"entry": 3, "exit": 2, "qty": "1"},
                       execution={"initial_cash": str(cash), "cash_increment": "0.01"})
    bars = bars_of(config, rows, volume)
    assert int(plan(spec_of(config), config, bars).prm[k.P_CASH_LIMIT]) == limit
    with pytest.raises(fastpath.FallBack, match="grew beyond"):
        fastpath.run(spec_of(config), config, bars)
    engine = run_engine(config, bars, with_hash=False)
    assert max(engine.cash) > limit


def test_what_the_engine_must_decide_falls_back() -> None:
    config = config_of("sma_cross", {"fast": 2, "slow": 4, "qty": "0.0001"})
    rows, volume = walk(30, 10**5)
    bars = bars_of(config, rows, volume, quantity_increment="0.001")
    with pytest.raises(fastpath.FallBack, match="below one quantity increment"):
        fastpath.run(spec_of(config), config, bars)  # the engine's strategy raises for it
    nan = volume.copy()
    nan[3] = float("nan")
    ok = config_of("sma_cross", {"fast": 2, "slow": 4})
    with pytest.raises(fastpath.FallBack, match="finite"):
        fastpath.run(spec_of(ok), ok, bars_of(ok, rows, nan))


def test_several_symbols_fall_back(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path / "two.parquet", [
        (T0, "10", "11", "9", "10.5", "5"), (T0, "20", "21", "19", "20.5", "5"),
        (T0 + HOUR, "10.5", "12", "10", "11", "5"), (T0 + HOUR, "20.5", "22", "20", "21", "5"),
    ], symbols=["AAA", "BBB", "AAA", "BBB"])
    config = BacktestConfig.model_validate({"data": {"snapshot": str(path),
                                                     "price_increment": "0.01"}})
    with pytest.raises(fastpath.FallBack, match="2 symbols"):
        fastpath.prepare(config)


def test_bars_prepared_for_other_instrument_settings_are_refused() -> None:
    config = BacktestConfig()
    bars = fastpath.prepare(config)
    other = BacktestConfig.model_validate({"data": {"price_increment": "0.01"}})
    with pytest.raises(ValueError, match="another"):
        fastpath.run(resolve_strategy("sma_cross", {}), other, bars)
