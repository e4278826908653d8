"""The quiet-bar skip is a fast path, never a different result: whole equity curves, fills and
orders are equal with the skip on and off, for every built-in and example strategy, with and
without risk limits, and for chunk sizes 1, 7 and the whole file; also where quiet stretches
run past resting orders under latency and a volume cap, and where orders are refused for
buying power or clipped by risk (the strategy is woken at the next bar to send them again)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from support.bars import DATA_DIR, make_chunks, make_multi_chunks, read_rows
from support.engine import instrument, settings
from weltklassebot.engine.backtest import BacktestEngine, OrderGate
from weltklassebot.engine.risk_gate import RiskGate
from weltklassebot.model.intents import OrderIntent
from weltklassebot.model.records import Fill, Order
from weltklassebot.portfolio.view import PortfolioView
from weltklassebot.risk.config import RiskConfig
from weltklassebot.risk.engine import RiskEngine
from weltklassebot.strategy.loader import resolve_strategy

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "breakout.py"
RESTING = Path(__file__).resolve().parent / "resting_limits_strategy.py"
BARS = read_rows(DATA_DIR / "coinbase_btcusd_1h_2017-07_2019-10.parquet", limit=2500)
STRATEGIES = {
    "sma_cross": ("sma_cross", {"fast": "5", "slow": "20", "qty": "0.5"}),
    "donchian_breakout": ("donchian_breakout", {"entry": "20", "exit": "10", "qty": "0.5"}),
    "example_breakout": (str(EXAMPLE), {}),
    "example_rsi_mean_reversion": (str(EXAMPLE.parent / "rsi_mean_reversion.py"), {}),
    "example_bracket_trend": (str(EXAMPLE.parent / "bracket_trend.py"), {}),
    "example_target_allocation": (str(EXAMPLE.parent / "target_allocation.py"), {}),
    # one symbol: it holds that one; two: it ranks them
    "example_rotation": (str(EXAMPLE.parent / "rotation.py"), {}),
    # orders resting through quiet stretches and touched inside them
    "resting_limits": (str(RESTING), {}),
}
BUILTIN = ("donchian_breakout", "sma_cross")
RISK = {
    "none": None,
    # tight enough that the runs halt, flatten, deny and cool down inside 2,500 bars
    "limits": RiskConfig(drawdown_cap=Decimal("0.0001"), flatten_on_halt=True,
                         max_consecutive_losses=2),
}


VENUES: dict[str, dict[str, Any]] = {
    "plain": {},
    # orders active a bar after they are sent, partial fills from a volume cap
    "latency_cap": {"latency_ns": 90 * 60 * 10**9, "participation": "0.0001"},
    # so little cash that entries are refused for buying power and sent again
    "refused": {"cash": "1300"},
}


def run(strategy: str, risk: str, chunk_rows: int | None, skip: bool,
        symbols: int = 1, venue: str = "plain") -> dict[str, Any]:
    ref, params = STRATEGIES[strategy]
    spec = resolve_strategy(ref, params)
    names = ["BTC-USD"] if symbols == 1 else ["A", "B"]
    insts = {s: instrument(s, price="0.01", qty="0.00000001", cash="0.01") for s in names}
    inst = insts[names[0]]
    execution = settings(inst.money, **VENUES[venue])
    config = RISK.get(risk)
    gate: OrderGate | None = None if config is None else RiskGate(RiskEngine(
        config, initial_equity=execution.initial_cash, money_scale=execution.money.scale))
    if risk == "clip":
        gate = ClipGate()
    engine = BacktestEngine(insts, dict.fromkeys(insts, 3_600_000_000_000), execution,
                            spec.create, spec.name, 7, gate=gate,
                            strategy_file=spec.source_file)
    engine.quiet_skip = skip
    curve: list[list[int]] = [[], [], []]

    def sink(ts: list[int], equity: list[int], cash: list[int]) -> None:
        for column, values in zip(curve, (ts, equity, cash), strict=True):
            column.extend(values)

    if symbols == 1:
        chunks = make_chunks(BARS, inst, chunk_rows)
    else:
        # B trades other prices at the same instants; A misses every 13th bar
        b_rows = [(ts, *BARS[(k + 700) % len(BARS)][1:]) for k, (ts, *_rest) in enumerate(BARS)]
        rows = [("A", r) for k, r in enumerate(BARS) if k % 13] + [("B", r) for r in b_rows]
        chunks = make_multi_chunks(rows, insts, chunk_rows)
    result = engine.run(chunks, sink)
    return {
        "curve": curve,
        "fills": result.fills,
        "orders": result.orders,
        "denials": result.denials,
        "transitions": list(gate.risk.transitions) if isinstance(gate, RiskGate) else [],
    }


@pytest.mark.parametrize("symbols", [1, 2])
@pytest.mark.parametrize("chunk_rows", [1, 7, None])
@pytest.mark.parametrize("risk", sorted(RISK))
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_skip_on_and_off_give_the_same_run(strategy: str, risk: str,
                                           chunk_rows: int | None, symbols: int) -> None:
    fast = run(strategy, risk, chunk_rows, skip=True, symbols=symbols)
    every_bar = run(strategy, risk, chunk_rows, skip=False, symbols=symbols)
    assert fast == every_bar
    assert fast["fills"], "the comparison needs trades to mean something"
    if risk == "limits" and strategy in BUILTIN:
        assert fast["transitions"] or fast["denials"], "the limits must act in this data"


@pytest.mark.parametrize("symbols", [1, 2])
@pytest.mark.parametrize("chunk_rows", [1, 7, None])
@pytest.mark.parametrize("venue", ["latency_cap", "refused"])
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_skip_past_resting_orders_and_refusals(strategy: str, venue: str,
                                               chunk_rows: int | None, symbols: int) -> None:
    fast = run(strategy, "none", chunk_rows, skip=True, symbols=symbols, venue=venue)
    every_bar = run(strategy, "none", chunk_rows, skip=False, symbols=symbols, venue=venue)
    assert fast == every_bar
    assert fast["fills"], "the comparison needs trades to mean something"
    if venue == "refused" and strategy in BUILTIN:
        assert fast["denials"], "orders must be refused in this data"


class ClipGate:
    """A gate that lets through three fifths of every order (strategies that want their full
    size replace the order at every bar)."""

    def check_order(self, order: Order, view: PortfolioView) -> tuple[int, str | None, str]:
        return max(order.qty * 3 // 5, 1), "max_order_qty", "three fifths"

    def on_fill(self, fill: Fill, realised_net: int, view: PortfolioView) -> None:
        return None

    def on_equity(self, ts_ns: int, equity: int, view: PortfolioView) -> list[OrderIntent]:
        return []

    def on_engine_denial(self, reason: str, ts_ns: int, detail: str) -> None:
        return None


@pytest.mark.parametrize("chunk_rows", [1, 7, None])
@pytest.mark.parametrize("strategy", ["donchian_breakout", "sma_cross"])
def test_skip_with_clipped_orders(strategy: str, chunk_rows: int | None) -> None:
    fast = run(strategy, "clip", chunk_rows, skip=True)
    every_bar = run(strategy, "clip", chunk_rows, skip=False)
    assert fast == every_bar
    assert 30_000_000 in {o.qty for o in fast["orders"]}  # 0.5 clipped to 0.3
