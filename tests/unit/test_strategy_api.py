"""strategy/base.py through the engine: what a strategy sees, when, and what it may do."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

import pytest

from support.bars import HOUR, T0, flat_bars, timed
from support.engine import instrument, run_engine, run_multi
from support.scripted import ScriptedStrategy, Submit
from weltklassebot.errors import StrategyError
from weltklassebot.model.enums import BUY, OrderType, TimeInForce
from weltklassebot.strategy.base import Bar, Strategy, StrategyContext

BARS = timed([(100, 101, 99, "100.5", 10), (101, 102, 100, "101.5", 20),
              (102, 103, 101, "102.5", 30)])


def test_a_strategy_sees_each_bar_only_at_its_close_event() -> None:
    run = run_engine(BARS, {})
    seen = run.strategy().seen
    assert [(s.index, s.ts_ns, s.now_ns) for s in seen] == [
        (i, T0 + i * HOUR, T0 + (i + 1) * HOUR) for i in range(3)]
    assert [(s.open, s.close) for s in seen] == [(10000, 10050), (10100, 10150), (10200, 10250)]


def test_hooks_run_once_each() -> None:
    run = run_engine(BARS, {})
    strategy = run.strategy()
    assert (strategy.started, strategy.stopped) == (1, 1)


class Recorder(Strategy):
    name: ClassVar[str] = "recorder"
    version: ClassVar[str] = "1"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.out: dict[str, Any] = {}

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        if bar.index == 0:
            self.out["market"] = ctx.buy("2")
            self.out["limit"] = ctx.buy(Decimal("1"), limit="99.499")  # rounds half-even
            self.out["stop"] = ctx.sell(1.0, stop=98)
            self.out["stop_limit"] = ctx.sell(1, stop="98", limit="97.5", tif="IOC", tag="sl")
            self.out["open"] = [(o.type, o.tif, o.limit, o.stop, o.tag) for o in ctx.open_orders]
            self.out["ticks"] = (ctx.ticks("1.005"), ctx.price(12345))
            ctx.log("note", answer=42)
        if bar.index == 1:
            self.out["position"] = ctx.position
            self.out["position_ticks"] = ctx.position_ticks
            self.out["cash"] = ctx.cash
            self.out["equity"] = ctx.equity
            self.out["cancelled"] = ctx.cancel_all()


def test_orders_queries_and_conversions() -> None:
    run = run_engine(BARS, Recorder, taker_bps="0", maker_bps="0")
    out = run.strategy().out
    assert (out["market"], out["limit"], out["stop"], out["stop_limit"]) == (1, 2, 3, 4)
    assert out["open"] == [
        (OrderType.MARKET, TimeInForce.GTC, None, None, ""),
        (OrderType.LIMIT, TimeInForce.GTC, 9950, None, ""),
        (OrderType.STOP, TimeInForce.GTC, None, 9800, ""),
        (OrderType.STOP_LIMIT, TimeInForce.IOC, 9750, 9800, "sl"),
    ]
    assert out["ticks"] == (100, Decimal("123.45"))
    # Bar 1 opens at 101: the market buy fills, the limit (99.50) does not, the IOC is cancelled.
    assert out["position"] == Decimal(2)
    assert out["position_ticks"] == 2
    assert out["cash"] == Decimal("1000000") - Decimal("202")
    assert out["equity"] == Decimal("1000000") - Decimal("202") + Decimal("203")
    assert out["cancelled"] == 2
    assert run.engine.logs == [{"ts_ns": T0 + HOUR, "symbol": "TEST", "event": "note",
                                "answer": 42}]


class BadOrders(Strategy):
    name: ClassVar[str] = "bad"

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        if self.how == "qty":
            ctx.buy(0)
        elif self.how == "side":
            ctx.submit_ticks(2, 1)
        elif self.how == "price":
            ctx.buy(1, limit="-1")
        elif self.how == "tif":
            ctx.buy(1, tif="day")


@pytest.mark.parametrize(
    ("how", "match"),
    [("qty", "quantity must be positive"), ("side", "side must be"),
     ("price", "limit price must be positive"), ("tif", "'day' is not a valid TimeInForce")],
)
def test_invalid_orders_raise_as_strategy_errors(how: str, match: str) -> None:
    with pytest.raises(StrategyError, match=match) as info:
        run_engine(BARS, lambda: BadOrders(how))
    message = info.value.message
    assert "strategy scripted raised ValueError" in message
    assert "symbol TEST" in message
    assert "at the bar starting 2024-01-01T00:00:00Z" in message
    # The strategy's own line first (with its source), then where the library raised.
    assert "test_strategy_api.py:" in message.split(", raised in ")[0]
    assert "(ctx.buy(" in message or "(ctx.submit_ticks(" in message
    assert ".py:" in message.split(", raised in ")[1]
    assert info.value.exit_code == 3


class Raises(ScriptedStrategy):
    def __init__(self, where: str) -> None:
        super().__init__({0: [Submit(BUY, "1")]})
        self.where = where

    def on_start(self, ctx: StrategyContext) -> None:
        super().on_start(ctx)
        if self.where == "start":
            raise KeyError("start")

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        super().on_bar(ctx, bar)
        if self.where == "bar" and bar.index == 2:
            raise ZeroDivisionError("division by zero")

    def on_fill(self, ctx: StrategyContext, fill: Any) -> None:
        if self.where == "fill":
            raise RuntimeError("fill")

    def on_stop(self, ctx: StrategyContext) -> None:
        if self.where == "stop":
            raise RuntimeError("stop")


@pytest.mark.parametrize(
    ("where", "when"),
    [("start", "in on_start"), ("bar", "at the bar starting 2024-01-01T02:00:00Z"),
     ("fill", "at the bar starting 2024-01-01T01:00:00Z"), ("stop", "in on_stop")],
)
def test_strategy_exceptions_name_strategy_symbol_and_bar(where: str, when: str) -> None:
    with pytest.raises(StrategyError) as info:
        run_engine(BARS, lambda: Raises(where))
    assert "symbol TEST" in info.value.message
    assert when in info.value.message
    assert "test_strategy_api.py:" in info.value.message


def test_multi_symbol_bars_of_one_instant_run_in_symbol_order_with_one_equity_point() -> None:
    insts = {s: instrument(s) for s in ("B", "A")}
    rows = [(s, r) for r in timed(flat_bars([100, 101, 102])) for s in ("B", "A")]
    rows += [("A", (T0 + 3 * HOUR, 103, 103, 103, 103, 1))]
    run = run_multi(rows, {"A": {0: [Submit(BUY, "1")]}, "B": {1: [Submit(BUY, "2")]}}, insts,
                    taker_bps="0")
    a, b = run.strategy("A"), run.strategy("B")
    assert [s.ts_ns for s in a.seen] == [T0 + i * HOUR for i in range(4)]
    assert [s.ts_ns for s in b.seen] == [T0 + i * HOUR for i in range(3)]
    assert run.eq_ts == [T0 + i * HOUR for i in range(4)]
    assert [(f.symbol, f.ts_ns, f.qty) for f in run.fills] == [
        ("A", T0 + HOUR, 1), ("B", T0 + 2 * HOUR, 2)]
    # One cash balance: both fills paid from it; B's equity point includes A's position.
    assert run.eq_cash[-1] == 1_000_000 * 100 - 10100 - 2 * 10200
    assert run.eq_val[-1] == run.eq_cash[-1] + 10300 + 2 * 10200
    # At T0+1h, B (after A) sees A's fill in the shared cash.
    assert b.seen[1].cash == 1_000_000 * 100 - 10100
    assert a.seen[1].cash == 1_000_000 * 100 - 10100


@pytest.mark.parametrize("chunk_rows", [1, 2, 7])
def test_chunking_never_changes_a_run(chunk_rows: int) -> None:
    bars = timed([(100 + i % 7, 102 + i % 7, 98 + i % 5, 100 + i % 3, 10) for i in range(40)])
    script = {i: [Submit(BUY if i % 3 else -1, "1", limit=str(99 + i % 4))] for i in range(38)}
    whole = run_engine(bars, script)
    parts = run_engine(bars, script, chunk_rows=chunk_rows)
    assert parts.fills == whole.fills
    assert parts.orders == whole.orders
    assert (parts.eq_ts, parts.eq_val, parts.eq_cash) == (whole.eq_ts, whole.eq_val,
                                                          whole.eq_cash)


class _Leader(Strategy):
    """Each instance leaves its close in ``shared``; the last symbol of an instant buys the
    symbol with the highest close through that symbol's context."""

    name = "leader"

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        closes = ctx.shared.setdefault("closes", {})
        closes[ctx.symbol] = (bar.ts_ns, bar.close)
        if ctx.symbol == ctx.symbols[-1] and bar.index == 0:
            assert all(ts == bar.ts_ns for ts, _ in closes.values())
            best = max(closes, key=lambda s: closes[s][1])
            ctx.context(best).buy(1)


def test_a_context_reaches_the_other_symbols_and_a_shared_dict() -> None:
    insts = {s: instrument(s) for s in ("A", "B", "C")}
    closes = {"A": 100, "B": 120, "C": 110}
    bars = {s: timed(flat_bars([closes[s], closes[s]])) for s in insts}
    run = run_multi([(s, bars[s][i]) for i in range(2) for s in sorted(insts)], _Leader, insts)
    assert [(f.symbol, f.qty) for f in run.fills] == [("B", 1)]
    engine = run.engine
    assert engine.shared["closes"]["C"][1] == 11000
    with pytest.raises(KeyError, match="'D' is not in this run"):
        engine.context_of("A").context("D")
