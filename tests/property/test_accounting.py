"""Accounting invariants over random bar series and random scripted orders (hypothesis).

Every run is checked against an independent reconstruction from its fills and bars, in exact
integers and Fractions: equity == cash + marked positions at every equity point; fees follow the
written rounding (taker fees are never negative); no fill exceeds its order's remaining quantity
(nor a bar's volume cap); realised + unrealised PnL == equity change + fees paid at every close
event; closing everything realises all PnL; and bars after bar i never change a decision made up
to bar i.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from typing import Any, ClassVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.bars import HOUR, T0, TickRow, tick_chunks
from support.engine import settings as make_settings
from weltklassebot.core.decimal import div_round_half_even
from weltklassebot.engine.backtest import BacktestEngine, EngineResult, ExecutionSettings
from weltklassebot.model.enums import BUY, SELL, Liquidity
from weltklassebot.model.instrument import Instrument, MoneySpec
from weltklassebot.model.records import Fill
from weltklassebot.strategy.base import Bar, Strategy, StrategyContext

SYMBOLS = ("A", "B")


@dataclass(frozen=True)
class Intent:
    """An order decided at the close of bar ``bar`` of ``symbol``, priced off that close."""

    symbol: str
    bar: int
    side: int
    kind: str  # market, limit, stop, stop_limit
    qty: int
    limit_off: int
    stop_off: int
    tif: str
    cancel_after: int | None


class TickScript(Strategy):
    """Submits the intents of its symbol in ticks; checks the PnL identity at every close."""

    name: ClassVar[str] = "tick_script"
    version: ClassVar[str] = "1"

    def __init__(self, intents: list[Intent], flatten_at: int | None = None) -> None:
        super().__init__()
        self.intents = intents
        self.flatten_at = flatten_at
        self.cancels: dict[int, list[int]] = defaultdict(list)
        self.identity: list[tuple[Fraction | int, Fraction]] = []
        self.by_bar: dict[int, list[Intent]] = {}

    def on_start(self, ctx: StrategyContext) -> None:
        for intent in self.intents:
            if intent.symbol == ctx.symbol:
                self.by_bar.setdefault(intent.bar, []).append(intent)

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        engine: BacktestEngine = ctx._router  # type: ignore[assignment]
        ledger = engine.ledger
        self.identity.append((ledger.realised + ledger.unrealised(),
                              Fraction(ledger.equity() - ledger.initial_cash + ledger.fees_paid)))
        for cancel_id in self.cancels.pop(bar.index, []):
            ctx.cancel(cancel_id)
        if self.flatten_at is not None and bar.index >= self.flatten_at:
            if bar.index == self.flatten_at:
                ctx.cancel_all()
                position = ctx.position_ticks
                if position:
                    ctx.submit_ticks(SELL if position > 0 else BUY, abs(position), tag="flat")
            return
        for it in self.by_bar.get(bar.index, []):
            limit = max(1, bar.close + it.limit_off) if it.kind in ("limit", "stop_limit") \
                else None
            stop = max(1, bar.close + it.stop_off) if it.kind in ("stop", "stop_limit") else None
            order_id = ctx.submit_ticks(it.side, it.qty, limit_ticks=limit, stop_ticks=stop,
                                        tif=it.tif)
            if order_id is not None and it.cancel_after is not None:
                self.cancels[bar.index + it.cancel_after].append(order_id)


@dataclass
class Market:
    rows: list[TickRow]
    n: int
    symbols: tuple[str, ...]


@st.composite
def markets(draw: Any, min_bars: int = 3, max_bars: int = 24) -> Market:
    n = draw(st.integers(min_bars, max_bars))
    symbols = SYMBOLS[: draw(st.sampled_from([1, 1, 2]))]
    rows: list[TickRow] = []
    for symbol in symbols:
        present = list(range(n)) if symbol == "A" else sorted(
            draw(st.sets(st.integers(0, n - 1), min_size=1)))
        price = draw(st.integers(2_000, 20_000))
        for k in present:
            o = max(1, price + draw(st.integers(-300, 300)))
            c = max(1, o + draw(st.integers(-400, 400)))
            h = max(o, c) + draw(st.integers(0, 300))
            lo = max(1, min(o, c) - draw(st.integers(0, 300)))
            v = draw(st.sampled_from([0.0, 3.0, 50.0, 1000.0, 1e6]))
            rows.append((symbol, T0 + k * HOUR, o, h, lo, c, v))
            price = c
    return Market(rows, n, symbols)


def intents(market: Market) -> Any:
    return st.lists(
        st.builds(
            Intent,
            symbol=st.sampled_from(market.symbols),
            bar=st.integers(0, market.n - 1),
            side=st.sampled_from([BUY, SELL]),
            kind=st.sampled_from(["market", "limit", "stop", "stop_limit"]),
            qty=st.integers(1, 120),
            limit_off=st.integers(-500, 500),
            stop_off=st.integers(-500, 500),
            tif=st.sampled_from(["gtc", "gtc", "ioc"]),
            cancel_after=st.none() | st.integers(0, 3),
        ),
        min_size=1, max_size=20,
    )


@st.composite
def executions(draw: Any) -> tuple[dict[str, Instrument], ExecutionSettings]:
    cash_inc = draw(st.sampled_from(["0.01", "0.00000001"]))
    money = MoneySpec("USD", Decimal(cash_inc))
    qty_inc = draw(st.sampled_from(["1", "0.001", "0.5"]))
    instruments = {s: Instrument(s, Decimal("0.01"), Decimal(qty_inc), money) for s in SYMBOLS}
    slippage = draw(st.sampled_from(["none", "fixed", "stochastic"]))
    execution = make_settings(
        money,
        cash=draw(st.sampled_from(["50", "20000", "1000000", "1000000"])),
        maker_bps=draw(st.sampled_from(["-2.5", "0", "1", "10"])),
        taker_bps=draw(st.sampled_from(["0", "5", "10", "30"])),
        min_fee=draw(st.sampled_from(["0", "0.05", "1"])),
        slippage=slippage,
        slippage_bps=draw(st.sampled_from(["0", "3", "50"])),
        slippage_max_bps=draw(st.sampled_from(["0", "7.5", "50"])),
        latency_ns=draw(st.sampled_from([0, 0, HOUR // 2, HOUR, 3 * HOUR // 2])),
        jitter_ns=draw(st.sampled_from([0, 0, HOUR])),
        leverage=draw(st.sampled_from(["1", "3"])),
        participation=draw(st.sampled_from([None, None, "0.01", "0.5", "1"])),
    )
    return instruments, execution


@dataclass
class Outcome:
    result: EngineResult
    eq_ts: list[int]
    eq_val: list[int]
    eq_cash: list[int]
    strategies: list[TickScript]


def run(market: Market, plan: list[Intent], instruments: dict[str, Instrument],
        execution: ExecutionSettings, seed: int = 5, chunk_rows: int | None = None,
        flatten_at: int | None = None) -> Outcome:
    used = {s: instruments[s] for s in market.symbols}
    made: list[TickScript] = []

    def factory() -> Strategy:
        made.append(TickScript(plan, flatten_at))
        return made[-1]

    engine = BacktestEngine(used, dict.fromkeys(used, HOUR), execution, factory, "prop", seed)
    eq: tuple[list[int], list[int], list[int]] = ([], [], [])

    def sink(ts: list[int], equity: list[int], cash: list[int]) -> None:
        for column, values in zip(eq, (ts, equity, cash), strict=True):
            column.extend(values)

    result = engine.run(tick_chunks(market.rows, market.symbols, chunk_rows), sink)
    return Outcome(result, *eq, made)


def exact_notional(inst: Instrument, qty: int, price: int) -> int:
    value = (Fraction(qty) * Fraction(inst.quantity_increment) * Fraction(price)
             * Fraction(inst.price_increment) / Fraction(inst.money.increment))
    return div_round_half_even(value.numerator, value.denominator) * inst.money.step


def exact_fee(execution: ExecutionSettings, fill: Fill) -> int:
    fees = execution.fees
    bps = Fraction(fees.maker_bps if fill.liquidity is Liquidity.MAKER else fees.taker_bps)
    value = Fraction(abs(fill.notional)) * bps / 10_000 / fees.cash_step
    fee = div_round_half_even(value.numerator, value.denominator) * fees.cash_step
    return fees.min_fee_units if 0 < fee < fees.min_fee_units else fee


def check_accounting(market: Market, out: Outcome, instruments: dict[str, Instrument],
                     execution: ExecutionSettings) -> None:
    result = out.result
    bars = {(r[0], r[1]): r for r in market.rows}
    # Fills: exact notional and fee, within the bar (or the slipped price), never too much.
    filled: dict[int, int] = defaultdict(int)
    per_bar: dict[tuple[str, int], int] = defaultdict(int)
    orders = {o.order_id: o for o in result.orders}
    for fill in result.fills:
        inst = instruments[fill.symbol]
        bar = bars[(fill.symbol, fill.ts_ns)]
        order = orders[fill.order_id]
        assert fill.qty > 0
        assert fill.qty <= order.qty - filled[fill.order_id]
        filled[fill.order_id] += fill.qty
        per_bar[(fill.symbol, fill.ts_ns)] += fill.qty
        assert fill.notional == exact_notional(inst, fill.qty, fill.price)
        assert fill.fee == exact_fee(execution, fill)
        if fill.liquidity is Liquidity.TAKER:
            assert fill.fee >= 0
        if execution.slippage_model == "none":
            assert bar[4] <= fill.price <= bar[3]
        if order.limit is not None and (order.type.value == "limit" or order.triggered):
            assert fill.price * fill.side <= order.limit * fill.side
        assert fill.side == order.side
    for order in result.orders:
        assert filled[order.order_id] == order.filled <= order.qty
        assert order.status.value != "open"
    if execution.participation is not None:
        for (symbol, ts), qty in per_bar.items():
            volume = bars[(symbol, ts)][6]
            cap = Fraction(volume) * execution.participation / Fraction(
                instruments[symbol].quantity_increment)
            assert qty <= cap
    # Equity at every point, rebuilt from the fills and the bars alone.
    times = sorted({r[1] for r in market.rows})
    assert out.eq_ts == times
    fills_by_ts: dict[int, list[Fill]] = defaultdict(list)
    for fill in result.fills:
        fills_by_ts[fill.ts_ns].append(fill)
    cash = execution.initial_cash
    position: dict[str, int] = defaultdict(int)
    last_close: dict[str, int] = {}
    for k, ts in enumerate(times):
        for fill in fills_by_ts.get(ts, []):
            cash -= fill.side * fill.notional + fill.fee
            position[fill.symbol] += fill.side * fill.qty
        for symbol in market.symbols:
            if (symbol, ts) in bars:
                last_close[symbol] = bars[(symbol, ts)][5]
        marks = sum(
            exact_notional(instruments[s], q, last_close[s]) for s, q in position.items() if q)
        assert out.eq_cash[k] == cash
        assert out.eq_val[k] == cash + marks
    assert result.final_cash == cash
    assert result.final_equity == out.eq_val[-1]
    assert result.fees_paid == sum(f.fee for f in result.fills)
    # realised + unrealised == equity change + fees, at every close event of every symbol.
    for strategy in out.strategies:
        for pnl, change in strategy.identity:
            assert pnl == change


SLOW = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SLOW
@given(st.data(), executions())
def test_accounting_invariants(data: Any, setup: tuple[dict[str, Instrument],
                                                        ExecutionSettings]) -> None:
    instruments, execution = setup
    market = data.draw(markets())
    plan = data.draw(intents(market))
    chunk_rows = data.draw(st.sampled_from([None, 1, 5]))
    out = run(market, plan, instruments, execution, chunk_rows=chunk_rows)
    check_accounting(market, out, instruments, execution)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data(), executions())
def test_closing_everything_realises_all_pnl(data: Any, setup: tuple[
        dict[str, Instrument], ExecutionSettings]) -> None:
    instruments, execution = setup
    execution = replace(execution, participation=None, latency_ns=0, jitter_ns=0)
    market = data.draw(markets(min_bars=4))
    market = Market([r for r in market.rows if r[0] == "A"], market.n, ("A",))
    plan = data.draw(intents(market))
    out = run(market, plan, instruments, execution, flatten_at=market.n - 2)
    check_accounting(market, out, instruments, execution)
    result = out.result
    net = sum(f.side * f.qty for f in result.fills)
    assert net == 0
    ledger_flat = result.final_equity == result.final_cash
    assert ledger_flat
    assert result.realised == result.final_equity - execution.initial_cash + result.fees_paid


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data(), executions())
def test_bars_after_i_never_change_decisions_up_to_i(data: Any, setup: tuple[
        dict[str, Instrument], ExecutionSettings]) -> None:
    instruments, execution = setup
    market = data.draw(markets(min_bars=3))
    plan = data.draw(intents(market))
    cut = data.draw(st.integers(0, market.n - 2))
    cut_ts = T0 + cut * HOUR
    tail = data.draw(markets(min_bars=market.n, max_bars=market.n))
    changed = Market(
        [r for r in market.rows if r[1] <= cut_ts]
        + [(s, *rest) for (s, *rest) in tail.rows if rest[0] > cut_ts and s in market.symbols],
        market.n, market.symbols)
    prefix = Market([r for r in market.rows if r[1] <= cut_ts], cut + 1, market.symbols)
    runs = [run(m, plan, instruments, execution) for m in (market, changed, prefix)]

    def decisions(out: Outcome) -> tuple[list[Any], list[Any], list[Any]]:
        fills = [f for f in out.result.fills if f.ts_ns <= cut_ts]
        orders = [(o.order_id, o.symbol, o.side, o.type, o.qty, o.limit, o.stop, o.tif,
                   o.ts_submitted_ns, o.active_from_ns)
                  for o in sorted(out.result.orders, key=lambda o: o.order_id)
                  if o.ts_submitted_ns <= cut_ts + HOUR]  # decisions, whenever they closed
        equity = [(t, v) for t, v in zip(out.eq_ts, out.eq_val, strict=True) if t <= cut_ts]
        return fills, orders, equity

    full, other, short = (decisions(o) for o in runs)
    assert full == other == short
