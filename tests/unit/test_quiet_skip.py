"""The quiet-bar skip is a fast path, never a different result: whole equity curves, fills and
orders are equal with the skip on and off, for every built-in and example strategy, with and
without risk limits, and for chunk sizes 1, 7 and the whole file."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from support.bars import DATA_DIR, make_chunks, make_multi_chunks, read_rows
from support.engine import instrument, settings
from weltklassebot.engine.backtest import BacktestEngine
from weltklassebot.engine.risk_gate import RiskGate
from weltklassebot.risk.config import RiskConfig
from weltklassebot.risk.engine import RiskEngine
from weltklassebot.strategy.loader import resolve_strategy

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "breakout.py"
BARS = read_rows(DATA_DIR / "coinbase_btcusd_1h_2017-07_2019-10.parquet", limit=2500)
STRATEGIES = {
    "sma_cross": ("sma_cross", {"fast": "5", "slow": "20", "qty": "0.5"}),
    "donchian_breakout": ("donchian_breakout", {"entry": "20", "exit": "10", "qty": "0.5"}),
    "example_breakout": (str(EXAMPLE), {}),
}
RISK = {
    "none": None,
    # tight enough that the runs halt, flatten, deny and cool down inside 2,500 bars
    "limits": RiskConfig(drawdown_cap=Decimal("0.0001"), flatten_on_halt=True,
                         max_consecutive_losses=2),
}


def run(strategy: str, risk: str, chunk_rows: int | None, skip: bool,
        symbols: int = 1) -> dict[str, Any]:
    ref, params = STRATEGIES[strategy]
    spec = resolve_strategy(ref, params)
    names = ["BTC-USD"] if symbols == 1 else ["A", "B"]
    insts = {s: instrument(s, price="0.01", qty="0.00000001", cash="0.01") for s in names}
    inst = insts[names[0]]
    execution = settings(inst.money)
    config = RISK[risk]
    gate = None if config is None else RiskGate(RiskEngine(
        config, initial_equity=execution.initial_cash, money_scale=execution.money.scale))
    engine = BacktestEngine(insts, dict.fromkeys(insts, 3_600_000_000_000), execution,
                            spec.create, spec.name, 7, gate=gate,
                            strategy_file=spec.source_file)
    engine.quiet_skip = skip
    curve: list[np.ndarray] = []

    def sink(ts: np.ndarray, equity: np.ndarray, cash: np.ndarray) -> None:
        curve.append(np.stack([ts.astype(object), equity.astype(object), cash.astype(object)]))

    if symbols == 1:
        chunks = make_chunks(BARS, inst, chunk_rows)
    else:
        # B trades other prices at the same instants; A misses every 13th bar
        b_rows = [(ts, *BARS[(k + 700) % len(BARS)][1:]) for k, (ts, *_rest) in enumerate(BARS)]
        rows = [("A", r) for k, r in enumerate(BARS) if k % 13] + [("B", r) for r in b_rows]
        chunks = make_multi_chunks(rows, insts, chunk_rows)
    result = engine.run(chunks, sink)
    return {
        "curve": np.concatenate(curve, axis=1).tolist(),
        "fills": result.fills,
        "orders": result.orders,
        "denials": result.denials,
        "transitions": [] if gate is None else list(gate.risk.transitions),
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
    if risk == "limits" and strategy != "example_breakout":
        assert fast["transitions"] or fast["denials"], "the limits must act in this data"
