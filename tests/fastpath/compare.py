"""Run one configuration through the engine and through the fast path and put what each gives
side by side: fills, closed orders, the equity curve, final figures and the equity hash."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from weltklassebot import fastpath
from weltklassebot.config.model import BacktestConfig
from weltklassebot.engine.backtest import BacktestEngine
from weltklassebot.engine.equity_hash import EquityHasher, equity_text, fill_lines_text
from weltklassebot.fastpath.bars import Bars, instrument_settings
from weltklassebot.model.instrument import Instrument, MoneySpec
from weltklassebot.model.records import Fill, Order
from weltklassebot.runs.backtest import STEP_BARS, execution_settings
from weltklassebot.strategy.loader import StrategySpec, resolve_strategy


@dataclass
class Outcome:
    """What a run gives, in the engine's records."""

    fills: list[Fill]
    orders: list[Order]
    ts: list[int]
    equity: list[int]
    cash: list[int]
    final_equity: int
    final_cash: int
    fees_paid: int
    denials: int
    equity_hash: str


def config_of(strategy: str, params: dict[str, Any], *, seed: int = 0,
              execution: dict[str, Any] | None = None,
              data: dict[str, Any] | None = None) -> BacktestConfig:
    return BacktestConfig.model_validate({
        "seed": seed, "strategy": {"name": strategy, "params": params},
        "execution": execution or {}, "data": data or {}})


def bars_of(config: BacktestConfig, rows: np.ndarray, volume: np.ndarray, *,
            price_increment: str = "0.01", quantity_increment: str = "0.001",
            interval: int = 3_600_000_000_000, symbol: str = "TEST") -> Bars:
    """Bars straight from tick columns (rows: ts, open, high, low, close), without a file."""
    money = MoneySpec(config.execution.quote_currency, config.execution.cash_increment)
    inst = Instrument(symbol, Decimal(price_increment), Decimal(quantity_increment), money)
    ts, o, h, low, c = (np.ascontiguousarray(rows[:, i], dtype=np.int64) for i in range(5))
    return Bars(Path("generated"), "0" * 64, instrument_settings(config.data), symbol, inst,
                interval, ts, o, h, low, c, np.ascontiguousarray(volume, dtype=np.float64))


def spec_of(config: BacktestConfig) -> StrategySpec:
    return resolve_strategy(config.strategy.name, dict(config.strategy.params))


def run_engine(config: BacktestConfig, bars: Bars, step: int = STEP_BARS, *,
               with_hash: bool = True) -> Outcome:
    """The engine on the same bars, stepped as a backtest steps (``step`` bars at a time)."""
    spec = spec_of(config)
    ex = execution_settings(config)
    inst = bars.instrument
    instrument = Instrument(inst.symbol, inst.price_increment, inst.quantity_increment,
                            ex.money)
    engine = BacktestEngine({bars.symbol: instrument}, {bars.symbol: bars.interval}, ex,
                            spec.create, spec.name, config.seed)
    ts: list[int] = []
    equity: list[int] = []
    cash: list[int] = []

    def sink(t: list[int], e: list[int], c: list[int]) -> None:
        ts.extend(t)
        equity.extend(e)
        cash.extend(c)

    whole = bars.chunk()
    chunks = [whole.slice(i, min(i + step, len(bars))) for i in range(0, len(bars), step)]
    result = engine.run(chunks, sink)
    if not with_hash:
        return Outcome(result.fills, result.orders, ts, equity, cash, result.final_equity,
                       result.final_cash, result.fees_paid,
                       sum(result.denial_counts.values()), "")
    hasher = EquityHasher()
    hasher.add_fills(fill_lines_text(result.fills, {bars.symbol: instrument}))
    hasher.add_equity_text(equity_text(np.asarray(ts, dtype=np.int64),
                                       np.asarray(equity, dtype=object),
                                       ex.money.scale))
    return Outcome(result.fills, result.orders, ts, equity, cash, result.final_equity,
                   result.final_cash, result.fees_paid,
                   sum(result.denial_counts.values()), hasher.hexdigest())


def run_fast(config: BacktestConfig, bars: Bars) -> Outcome:
    result = fastpath.run(spec_of(config), config, bars)
    fills, orders = fastpath.records(result)
    assert result["equity_hash"] is not None
    return Outcome(fills, orders, result["ts"].tolist(), result["equity"].tolist(),
                   result["cash"].tolist(), result["final_equity"], result["final_cash"],
                   result["fees_paid"], result["denials"], result["equity_hash"])


def assert_same(engine: Outcome, fast: Outcome) -> None:
    """Field by field, the first difference named, then the hash."""
    assert len(fast.fills) == len(engine.fills), (len(fast.fills), len(engine.fills))
    for i, (mine, theirs) in enumerate(zip(fast.fills, engine.fills, strict=True)):
        assert mine == theirs, f"fill {i}: fast {mine} != engine {theirs}"
    assert len(fast.orders) == len(engine.orders), (len(fast.orders), len(engine.orders))
    for i, (mine_o, theirs_o) in enumerate(zip(fast.orders, engine.orders, strict=True)):
        assert mine_o == theirs_o, f"order {i}: fast {mine_o} != engine {theirs_o}"
    assert fast.ts == engine.ts
    for i, (mine_e, theirs_e) in enumerate(zip(fast.equity, engine.equity, strict=True)):
        assert mine_e == theirs_e, f"equity point {i} (ts {engine.ts[i]}): {mine_e} != {theirs_e}"
    assert fast.cash == engine.cash
    assert (fast.final_equity, fast.final_cash, fast.fees_paid, fast.denials) == (
        engine.final_equity, engine.final_cash, engine.fees_paid, engine.denials)
    assert fast.equity_hash == engine.equity_hash
