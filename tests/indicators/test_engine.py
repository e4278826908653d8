"""The engine-computed indicators in real runs: at every bar's close event each series equals
the incremental indicator a strategy updates itself, to the bit (one and two symbols, chunks
of 1, 7 and the whole file); and a run saved at a cut and resumed from JSON in a fresh engine
sees the same values as the uninterrupted run, series and incremental indicators alike."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from support.bars import DATA_DIR, HOUR, make_chunks, read_rows
from support.engine import instrument, run_engine, run_multi, settings
from weltklassebot.engine.backtest import BacktestEngine
from weltklassebot.indicators import (
    ADX,
    ATR,
    EMA,
    MACD,
    ROC,
    RSI,
    SMA,
    VWAP,
    WMA,
    Bollinger,
    Cross,
    RollingSum,
    StdDev,
    Stochastic,
    TrueRange,
    ZScore,
)
from weltklassebot.strategy.base import Bar, Strategy, StrategyContext

from .drive import fields_of

DAY = 86_400 * 10**9  # VWAP sessions: UTC days
ROWS = read_rows(DATA_DIR / "coinbase_btcusd_1h_2017-07_2019-10.parquet", limit=700)

Row = list[tuple[str, str, Any]]


def _incremental() -> dict[str, tuple[Any, tuple[str, ...]]]:
    """The indicators the strategy updates itself, with the bar fields they take."""
    return {
        "sma": (SMA(5), ("close",)), "ema": (EMA(6), ("close",)), "wma": (WMA(4), ("high",)),
        "rsi": (RSI(7), ("close",)), "roc": (ROC(3), ("open",)),
        "stddev": (StdDev(8), ("close",)), "zscore": (ZScore(5), ("low",)),
        "bollinger": (Bollinger(9, 1.5), ("close",)), "macd": (MACD(3, 8, 4), ("close",)),
        "true_range": (TrueRange(), ("high", "low", "close")),
        "atr": (ATR(5), ("high", "low", "close")),
        "stochastic": (Stochastic(6, 3, 2), ("high", "low", "close")),
        "adx": (ADX(4), ("high", "low", "close")),
        "vwap": (VWAP(DAY), ("high", "low", "close", "volume", "ts_ns")),
    }


class EveryIndicator(Strategy):
    """Declares every engine-computed indicator and updates the same ones itself; records
    both at each bar and fails at once if they differ."""

    name = "every_indicator"
    version = "1"

    def on_start(self, ctx: StrategyContext) -> None:
        self.series: dict[str, Any] = {
            "sma": ctx.sma("close", 5), "ema": ctx.ema("close", 6), "wma": ctx.wma("high", 4),
            "rsi": ctx.rsi("close", 7), "roc": ctx.roc("open", 3),
            "stddev": ctx.stddev("close", 8), "zscore": ctx.zscore("low", 5),
            "bollinger": ctx.bollinger("close", 9, 1.5), "macd": ctx.macd("close", 3, 8, 4),
            "true_range": ctx.true_range(), "atr": ctx.atr(5),
            "stochastic": ctx.stochastic(6, 3, 2), "adx": ctx.adx(4),
            "vwap": ctx.vwap(DAY),
        }
        self.sums12 = ctx.rolling_sum("close", 12)
        self.cross = ctx.cross(self.series["sma"].sums, self.sums12)
        self.own = _incremental()
        self.own_sum12 = RollingSum(12)
        self.own_cross = Cross()
        self.seen: list[Row] = []

    def save(self, ctx: StrategyContext) -> dict[str, Any] | None:
        return {"own": {key: ind.state() for key, (ind, _) in self.own.items()},
                "sum12": self.own_sum12.state(), "cross": self.own_cross.state()}

    def load(self, ctx: StrategyContext, data: dict[str, Any]) -> None:
        self.on_start(ctx)
        for key, (ind, _fields) in self.own.items():
            ind.load_state(data["own"][key])
        self.own_sum12.load_state(data["sum12"])
        self.own_cross.load_state(data["cross"])

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        row: Row = []
        for key, (ind, inputs) in self.own.items():
            ind.update(*[getattr(bar, name) for name in inputs])
            handle = self.series[key]
            assert handle.ready == ind.ready, (key, bar.index)
            for field in fields_of(ind):
                ours, theirs = getattr(handle, field), getattr(ind, field)
                assert type(ours) is type(theirs), (key, field, bar.index)
                assert _bits(ours) == _bits(theirs), (key, field, bar.index, ours, theirs)
                row.append((key, field, _bits(ours)))
        sma = self.own["sma"][0]
        self.own_sum12.update(bar.close)
        assert self.series["sma"].total == sma.total
        assert self.cross.value == self.own_cross.update(sma, self.own_sum12), bar.index
        row.append(("cross", "value", self.cross.value))
        self.seen.append(row)


def _bits(value: float | int) -> str | int:
    return value.hex() if isinstance(value, float) else value


@pytest.mark.parametrize("chunk", [1, 7, None])
def test_series_equal_incremental_in_a_run(chunk: int | None) -> None:
    run = run_engine(ROWS, EveryIndicator, inst=instrument("BTC-USD", price="0.01"),
                     chunk_rows=chunk)
    seen = run.strategy("BTC-USD").seen
    assert len(seen) == len(ROWS)
    assert any(value for row in seen for key, _f, value in row if key == "cross")


def test_series_equal_incremental_with_two_symbols() -> None:
    insts = {s: instrument(s, price="0.01") for s in ("A", "B")}
    rows = [(s, r) for r in ROWS[:300] for s in ("A", "B")]
    run = run_multi(rows, EveryIndicator, insts, chunk_rows=50)
    assert len(run.strategy("A").seen) == len(run.strategy("B").seen) == 300


def _engine(made: list[EveryIndicator]) -> BacktestEngine:
    inst = instrument("BTC-USD", price="0.01")

    def factory() -> Strategy:
        made.append(EveryIndicator())
        return made[-1]

    return BacktestEngine({"BTC-USD": inst}, {"BTC-USD": HOUR}, settings(inst.money),
                          factory, EveryIndicator.name, 0)


@pytest.mark.parametrize(("chunk", "cut"), [(1, 5), (1, 333), (64, 3), (64, 9)])
def test_a_resumed_run_sees_the_same_values(chunk: int, cut: int) -> None:
    chunks = make_chunks(ROWS, instrument("BTC-USD", price="0.01"), chunk)
    whole: list[EveryIndicator] = []
    _run(_engine(whole), chunks, lambda engine: engine.start(int(chunks[0].ts[0])))
    before: list[EveryIndicator] = []
    engine = _engine(before)
    engine.start(int(chunks[0].ts[0]))
    for part in chunks[:cut]:
        engine.step(part)
    state = json.loads(json.dumps(engine.save_state()))
    after: list[EveryIndicator] = []
    _run(_engine(after), chunks[cut:], lambda fresh: fresh.resume(state))
    assert before[0].seen + after[0].seen == whole[0].seen


def _run(engine: BacktestEngine, chunks: list[Any],
         begin: Callable[[BacktestEngine], None]) -> None:
    begin(engine)
    for part in chunks:
        engine.step(part)
    engine.stop()
