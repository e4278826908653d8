"""Run the engine in process on hand-made bars and keep everything a test wants to look at."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from support.bars import HOUR, Row, make_chunks, make_multi_chunks
from support.scripted import Script, ScriptedStrategy
from weltklassebot.engine.backtest import BacktestEngine, EngineResult, ExecutionSettings
from weltklassebot.engine.costs import FeeModel
from weltklassebot.model.instrument import Instrument, MoneySpec
from weltklassebot.model.records import Fill, Order
from weltklassebot.strategy.base import Strategy

SYMBOL = "TEST"


def money(cash_increment: str = "0.01", currency: str = "USD") -> MoneySpec:
    return MoneySpec(currency, Decimal(cash_increment))


def instrument(symbol: str = SYMBOL, price: str = "0.01", qty: str = "1",
               cash: str = "0.01") -> Instrument:
    """A readable instrument: cent prices, whole-unit quantities, cent cash (by default)."""
    return Instrument(symbol, Decimal(price), Decimal(qty), money(cash))


def settings(spec: MoneySpec, *, cash: str = "1000000", maker_bps: str = "10",
             taker_bps: str = "10", min_fee: str = "0", slippage: str = "none",
             slippage_bps: str = "0", slippage_max_bps: str = "0", latency_ns: int = 0,
             jitter_ns: int = 0, leverage: str = "1",
             participation: str | None = None) -> ExecutionSettings:
    """``ExecutionSettings`` from human numbers; defaults are the product's defaults."""
    return ExecutionSettings(
        money=spec,
        initial_cash=spec.units(Decimal(cash)),
        fees=FeeModel(Decimal(maker_bps), Decimal(taker_bps), spec.units(Decimal(min_fee)),
                      spec.step),
        slippage_model=slippage,
        slippage_bps=Fraction(Decimal(slippage_bps)),
        slippage_max_bps=Fraction(Decimal(slippage_max_bps)),
        latency_ns=latency_ns,
        jitter_ns=jitter_ns,
        leverage=Fraction(Decimal(leverage)),
        participation=None if participation is None else Fraction(Decimal(participation)),
    )


@dataclass
class Run:
    """One finished engine run and its equity curve."""

    engine: BacktestEngine
    result: EngineResult
    strategies: dict[str, Strategy]
    eq_ts: list[int] = field(default_factory=list)
    eq_val: list[int] = field(default_factory=list)
    eq_cash: list[int] = field(default_factory=list)

    @property
    def fills(self) -> list[Fill]:
        return self.result.fills

    @property
    def orders(self) -> list[Order]:
        return self.result.orders

    def order(self, order_id: int | None) -> Order:
        assert order_id is not None, "order was not accepted"
        return next(o for o in self.result.orders if o.order_id == order_id)

    def strategy(self, symbol: str = SYMBOL) -> Any:
        return self.strategies[symbol]


def run_engine(
    rows: Sequence[Row],
    strategy: Script | Callable[[], Strategy],
    *,
    inst: Instrument | None = None,
    interval: int = HOUR,
    seed: int = 0,
    chunk_rows: int | None = None,
    execution: ExecutionSettings | None = None,
    **setting_kwargs: Any,
) -> Run:
    """Run one symbol over ``rows``; ``strategy`` is a script or a strategy factory."""
    inst = inst or instrument()
    chunks = make_chunks(rows, inst, chunk_rows)
    return _run({inst.symbol: inst}, {inst.symbol: interval}, chunks, strategy, seed,
                execution or settings(inst.money, **setting_kwargs))


def run_multi(
    rows: Sequence[tuple[str, Row]],
    strategy: Script | Mapping[str, Script] | Callable[[], Strategy],
    instruments: dict[str, Instrument],
    *,
    interval: int | dict[str, int] = HOUR,
    seed: int = 0,
    chunk_rows: int | None = None,
    **setting_kwargs: Any,
) -> Run:
    """Run several symbols sharing one portfolio over ``(symbol, row)`` pairs."""
    intervals = interval if isinstance(interval, dict) else dict.fromkeys(instruments, interval)
    chunks = make_multi_chunks(rows, instruments, chunk_rows)
    spec = next(iter(instruments.values())).money
    return _run(instruments, intervals, chunks, strategy, seed,
                settings(spec, **setting_kwargs))


def _run(instruments: dict[str, Instrument], intervals: dict[str, int], chunks: list[Any],
         strategy: Any, seed: int, execution: ExecutionSettings) -> Run:
    created: list[Strategy] = []
    make: Callable[[], Strategy]
    if callable(strategy):
        make = strategy
    else:
        per_symbol = bool(strategy) and all(isinstance(k, str) for k in strategy)

        def make() -> Strategy:
            return ScriptedStrategy(strategy, per_symbol=per_symbol)

    def factory() -> Strategy:
        made = make()
        created.append(made)
        return made

    engine = BacktestEngine(instruments, intervals, execution, factory, "scripted", seed)
    run = Run(engine, None, {})  # type: ignore[arg-type]

    def sink(ts: list[int], equity: list[int], cash: list[int]) -> None:
        run.eq_ts.extend(ts)
        run.eq_val.extend(equity)
        run.eq_cash.extend(cash)

    run.result = engine.run(chunks, sink)
    run.strategies = dict(zip(sorted(instruments), created, strict=True))
    return run
