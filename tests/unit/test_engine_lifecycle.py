"""The engine's lifecycle: start, step (one bar or a batch), stop — the calls backtest, replay
and the live service share. Stepping bar by bar gives the run of a whole file."""

from __future__ import annotations

from typing import Any

import pytest

from support.bars import DATA_DIR, HOUR, T0, make_chunks, make_multi_chunks, read_rows, timed
from support.engine import instrument, settings
from weltklassebot.engine.backtest import BacktestEngine, EngineBatch
from weltklassebot.model.bars import BarChunk
from weltklassebot.strategy.loader import resolve_strategy

ROWS = read_rows(DATA_DIR / "coinbase_btcusd_1h_2017-07_2019-10.parquet", limit=600)


def engine(strategy: str = "donchian_breakout", symbols: tuple[str, ...] = ("BTC-USD",),
           **params: str) -> BacktestEngine:
    spec = resolve_strategy(strategy, {"entry": "10", "exit": "5", "qty": "0.5", **params})
    insts = {s: instrument(s, price="0.01", qty="0.00000001") for s in symbols}
    execution = settings(next(iter(insts.values())).money, latency_ns=60_000_000_000,
                         jitter_ns=30_000_000_000, slippage="stochastic",
                         slippage_max_bps="5")
    return BacktestEngine(insts, dict.fromkeys(insts, HOUR), execution, spec.create, spec.name,
                          11)


def drive(eng: BacktestEngine, chunks: list[BarChunk], *, expire: bool = True) -> dict[str, Any]:
    curve: list[tuple[int, int, int]] = []
    batches: list[EngineBatch] = []

    def sink(ts: list[int], equity: list[int], cash: list[int]) -> None:
        curve.extend(zip(ts, equity, cash, strict=True))

    eng.start(int(chunks[0].ts[0]), equity_sink=sink, batch_sink=batches.append)
    for chunk in chunks:
        eng.step(chunk)
    result = eng.stop(expire_open_orders=expire)
    return {
        "curve": curve,
        "fills": [f for b in batches for f in b.fills],
        "orders": [o for b in batches for o in b.orders],
        "equity": result.final_equity,
    }


def one_bar_chunks(chunks: list[BarChunk]) -> list[BarChunk]:
    out = []
    for chunk in chunks:
        for i in range(len(chunk)):
            codes = None if chunk.codes is None else chunk.codes[i:i + 1]
            out.append(BarChunk(chunk.ts[i:i + 1], codes, chunk.open[i:i + 1],
                                chunk.high[i:i + 1], chunk.low[i:i + 1], chunk.close[i:i + 1],
                                chunk.volume[i:i + 1]))
    return out


def test_stepping_bar_by_bar_equals_the_whole_file() -> None:
    inst = instrument("BTC-USD", price="0.01", qty="0.00000001")
    whole = drive(engine(), make_chunks(ROWS, inst))
    stepped = drive(engine(), one_bar_chunks(make_chunks(ROWS, inst)))
    assert stepped == whole
    assert whole["fills"]


def test_run_is_start_step_stop() -> None:
    inst = instrument("BTC-USD", price="0.01", qty="0.00000001")
    chunks = make_chunks(ROWS, inst, 50)
    stepped = drive(engine(), chunks)
    curve: list[tuple[int, int, int]] = []

    def sink(ts: list[int], equity: list[int], cash: list[int]) -> None:
        curve.extend(zip(ts, equity, cash, strict=True))

    result = engine().run(chunks, sink)
    assert curve == stepped["curve"]
    assert result.fills == stepped["fills"]
    assert result.orders == stepped["orders"]


def test_several_symbols_step_instant_by_instant_like_the_whole_file() -> None:
    insts = {s: instrument(s, price="0.01", qty="0.00000001") for s in ("A", "B")}
    rows = [(s, r) for r in ROWS[:300] for s in ("A", "B")]
    whole = drive(engine(symbols=("A", "B")), make_multi_chunks(rows, insts))
    by_instant = drive(engine(symbols=("A", "B")), make_multi_chunks(rows, insts, 1))
    assert by_instant == whole


def test_stop_without_expiring_keeps_resting_orders_open() -> None:
    inst = instrument("BTC-USD", price="0.01", qty="0.00000001")
    eng = engine()
    drive(eng, make_chunks(ROWS, inst), expire=False)
    assert eng.venue.open_count > 0  # donchian keeps a resting stop
    expired = engine()
    drive(expired, make_chunks(ROWS, inst))
    assert expired.venue.open_count == 0


def test_lifecycle_calls_out_of_order_are_refused() -> None:
    eng = engine()
    bars = make_chunks(timed([(100, 101, 99, 100, 1)] * 3), instrument("BTC-USD"))
    with pytest.raises(RuntimeError, match="started"):
        eng.step(bars[0])
    eng.start(T0)
    with pytest.raises(RuntimeError, match="started already"):
        eng.start(T0)
    eng.stop()
    with pytest.raises(RuntimeError, match="has not stopped"):
        eng.step(bars[0])
    with pytest.raises(RuntimeError, match="stopped already"):
        eng.stop()
