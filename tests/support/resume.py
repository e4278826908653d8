"""Runs cut in two by a saved engine state, for the resume tests: one builder that both the test
process and the worker process use, strategies that exercise every order type and time in
force, and the worker itself (``python -m support.resume``: one JSON request per line in, one
JSON answer per line out, so one long-lived process restores many states)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from support.bars import DATA_DIR, HOUR, make_chunks, make_multi_chunks, read_rows
from support.engine import instrument, settings
from weltklassebot.engine.backtest import BacktestEngine, EngineBatch
from weltklassebot.engine.risk_gate import RiskGate
from weltklassebot.engine.state import fill_data, order_data
from weltklassebot.model.bars import BarChunk
from weltklassebot.model.enums import BUY, SELL
from weltklassebot.model.records import Fill
from weltklassebot.risk.config import RiskConfig
from weltklassebot.risk.engine import RiskEngine
from weltklassebot.strategy.base import Bar, Strategy, StrategyContext
from weltklassebot.strategy.indicators import RollingMax, RollingMin
from weltklassebot.strategy.loader import resolve_strategy

HERE = Path(__file__).resolve()
EXAMPLE = HERE.parents[2] / "examples" / "breakout.py"
ROWS = read_rows(DATA_DIR / "coinbase_btcusd_1h_2017-07_2019-10.parquet", limit=400)


class AllOrders(Strategy):
    """Cycles through market, limit, stop and stop-limit orders, GTC and IOC, buys and sells,
    brackets (some with a trailing stop-loss), one-cancels-other pairs and trailing stops, and
    cancels what rests too long: every path of the venue, decided by the bars alone."""

    name = "all_orders"
    version = "1"

    def on_start(self, ctx: StrategyContext) -> None:
        self.high = RollingMax(6)
        self.low = RollingMin(6)
        self.count = 0

    def save(self, ctx: StrategyContext) -> dict[str, Any] | None:
        return {"high": self.high.state(), "low": self.low.state(), "count": self.count}

    def load(self, ctx: StrategyContext, data: dict[str, Any]) -> None:
        self.on_start(ctx)
        self.high.load_state(data["high"])
        self.low.load_state(data["low"])
        self.count = int(data["count"])

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        hi = self.high.update(bar.high)
        lo = self.low.update(bar.low)
        self.count += 1
        for order in ctx.open_orders:
            if bar.ts_ns - order.ts_submitted_ns > 4 * HOUR:
                ctx.cancel(order.order_id)
        if not self.high.ready:
            return
        qty = ctx.instrument.qty_ticks(Decimal("0.01"))
        side = BUY if ctx.position_ticks <= 0 else SELL
        kind = self.count % 6
        tif = "ioc" if self.count % 5 == 0 else "gtc"
        if kind == 0:
            ctx.submit_ticks(side, qty, tag="market")
        elif kind == 1:
            ctx.submit_ticks(side, qty, limit_ticks=lo if side == BUY else hi, tif=tif)
        elif kind == 2:
            ctx.submit_ticks(side, qty, stop_ticks=hi + 1 if side == BUY else lo - 1, tif=tif)
        elif kind == 3:
            stop = hi + 1 if side == BUY else lo - 1
            ctx.submit_ticks(side, qty, stop_ticks=stop, limit_ticks=stop + side * 50, tif=tif)
        elif kind == 4:
            # A bracket around the close: exits two ranges away; every other one trails.
            span = max(hi - lo, 2)
            price = ctx.price
            trail = price(span) if self.count % 4 == 0 else None
            place = ctx.buy_bracket if side == BUY else ctx.sell_bracket
            place(Decimal("0.01"), take_profit=price(bar.close + side * 2 * span),
                  stop_loss=None if trail else price(max(1, bar.close - side * span)),
                  limit=price(bar.close - side * (span // 4)) if self.count % 3 else None,
                  trail_distance=trail)
        elif self.count % 4 == 1:
            if side == SELL:
                ctx.sell_oco(Decimal("0.01"), limit=ctx.price(hi), stop=ctx.price(lo))
            else:
                ctx.buy_oco(Decimal("0.01"), limit=ctx.price(lo), stop=ctx.price(hi + 1))
        else:
            trailing = ctx.sell_trailing_stop if side == SELL else ctx.buy_trailing_stop
            trailing(Decimal("0.01"), fraction="0.004")

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> None:
        ctx.log("fill", qty=fill.qty)


class AllOrdersWithoutHooks(AllOrders):
    """The same strategy without save/load: resumed by re-running the feed to the cursor."""

    name = "all_orders_plain"
    save = Strategy.save
    load = Strategy.load


STRATEGIES = {
    "sma_cross": ("sma_cross", {"fast": "5", "slow": "20", "qty": "0.5"}),
    "donchian_breakout": ("donchian_breakout", {"entry": "12", "exit": "6", "qty": "0.5"}),
    # The examples size by a share of equity: small enough for the risk limits' 2-unit cap.
    "example": (str(EXAMPLE), {"window": "12", "fraction": "0.004"}),
    "example_rsi": (str(EXAMPLE.parent / "rsi_mean_reversion.py"),
                    {"max_hold": "12", "fraction": "0.004"}),
    "example_bracket": (str(EXAMPLE.parent / "bracket_trend.py"),
                        {"fast": "5", "slow": "20", "atr": "10", "fraction": "0.004"}),
    "example_target": (str(EXAMPLE.parent / "target_allocation.py"),
                       {"window": "24", "trend": "50", "max_fraction": "0.004",
                        "band": "0.001"}),
    # ctx.shared across a restart: one symbol holds it, two are ranked
    "example_rotation": (str(EXAMPLE.parent / "rotation.py"),
                         {"lookback": "12", "every": "5", "n": "1", "invested": "0.004"}),
    "all_orders": (f"{HERE}:AllOrders", {}),
    "all_orders_plain": (f"{HERE}:AllOrdersWithoutHooks", {}),
}


@dataclass(frozen=True)
class Spec:
    """One generated configuration."""

    strategy: str
    symbols: int
    chunk: int
    latency: bool
    slippage: str
    participation: bool
    risk: bool
    seed: int

    def build(self) -> tuple[BacktestEngine, list[BarChunk]]:
        ref, params = STRATEGIES[self.strategy]
        spec = resolve_strategy(ref, params)
        names = ["BTC-USD"] if self.symbols == 1 else ["A", "B"]
        insts = {s: instrument(s, price="0.01", qty="0.00000001") for s in names}
        execution = settings(
            insts[names[0]].money,
            latency_ns=60_000_000_000 if self.latency else 0,
            jitter_ns=40_000_000_000 if self.latency else 0,
            slippage=self.slippage, slippage_bps="2", slippage_max_bps="6",
            participation="0.05" if self.participation else None,
        )
        gate = None
        if self.risk:
            config = RiskConfig(drawdown_cap=Decimal("0.0002"), flatten_on_halt=True,
                                max_consecutive_losses=2, max_order_qty=Decimal("2"))
            gate = RiskGate(RiskEngine(config, initial_equity=execution.initial_cash,
                                       money_scale=execution.money.scale))
        engine = BacktestEngine(insts, dict.fromkeys(insts, HOUR), execution, spec.create,
                                spec.name, self.seed, gate=gate, strategy_file=spec.source_file)
        if self.symbols == 1:
            chunks = make_chunks(ROWS, insts[names[0]], self.chunk)
        else:
            rows = [(s, r) for r in ROWS[:250] for s in names]
            chunks = make_multi_chunks(rows, insts, self.chunk)
        return engine, chunks


class Recorder:
    """Collects what the sinks receive, as plain data."""

    def __init__(self) -> None:
        self.curve: list[list[int]] = []
        self.fills: list[list[Any]] = []
        self.orders: list[list[Any]] = []
        self.denials: list[list[Any]] = []

    def equity(self, ts: list[int], equity: list[int], cash: list[int]) -> None:
        self.curve.extend([t, e, c] for t, e, c in zip(ts, equity, cash, strict=True))

    def batch(self, batch: EngineBatch) -> None:
        self.fills.extend(fill_data(f) for f in batch.fills)
        self.orders.extend(order_data(o) for o in batch.orders)
        self.denials.extend(list(d) for d in batch.denials)

    def outputs(self) -> dict[str, Any]:
        return {"curve": self.curve, "fills": self.fills, "orders": self.orders,
                "denials": self.denials}


def run_whole(spec: Spec) -> dict[str, Any]:
    engine, chunks = spec.build()
    rec = Recorder()
    engine.start(int(chunks[0].ts[0]), equity_sink=rec.equity, batch_sink=rec.batch)
    for chunk in chunks:
        engine.step(chunk)
    engine.stop()
    return rec.outputs()


def run_to(spec: Spec, cut: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the first ``cut`` chunks; return the outputs so far and the saved state (JSON)."""
    engine, chunks = spec.build()
    rec = Recorder()
    engine.start(int(chunks[0].ts[0]), equity_sink=rec.equity, batch_sink=rec.batch)
    for chunk in chunks[:cut]:
        engine.step(chunk)
    return rec.outputs(), json.loads(json.dumps(engine.save_state()))


def run_from(spec: Spec, state: dict[str, Any]) -> dict[str, Any]:
    """A fresh engine resumes ``state`` and runs the rest of the feed."""
    engine, chunks = spec.build()
    rec = Recorder()
    engine.resume(state, equity_sink=rec.equity, batch_sink=rec.batch, feed=chunks)
    done = 0
    for chunk in chunks:
        if done + len(chunk) <= state["cursor"]:
            done += len(chunk)
            continue
        engine.step(chunk.slice(state["cursor"] - done, len(chunk)) if done < state["cursor"]
                    else chunk)
        done += len(chunk)
    engine.stop()
    return rec.outputs()


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        answer: dict[str, Any]
        try:
            answer = {"outputs": run_from(Spec(**request["spec"]), request["state"])}
        except Exception as exc:  # reported to the test, which fails on it
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
