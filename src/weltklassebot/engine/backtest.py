"""The event loop: for every bar, in (ts, symbol) order — execution against the bar, then the
strategy at the bar's close event, then accounting; one equity point per distinct timestamp.

Pure: no files, no wall clock. Time is the event clock; randomness comes from named streams.
Orders pass strategy -> risk (optional gate) -> buying-power check -> latency -> venue.
"""

from __future__ import annotations

import sys
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Protocol

import numpy as np

from weltklassebot.core.clock import SimClock
from weltklassebot.core.rng import RandomStreams
from weltklassebot.core.timeutil import ns_to_iso
from weltklassebot.engine.costs import (
    FeeModel,
    FixedSlippage,
    LatencyModel,
    SlippageModel,
    StochasticSlippage,
)
from weltklassebot.engine.ingest import BarChunk
from weltklassebot.engine.venue import SimulatedVenue
from weltklassebot.errors import StrategyError
from weltklassebot.model.enums import OrderStatus, OrderType, TimeInForce, side_label
from weltklassebot.model.instrument import Instrument, MoneySpec
from weltklassebot.model.records import Denial, Fill, Order
from weltklassebot.portfolio.ledger import Ledger
from weltklassebot.strategy.base import Bar, Strategy, StrategyContext


@dataclass(frozen=True)
class ExecutionSettings:
    """Resolved, exact execution parameters of one run."""

    money: MoneySpec
    initial_cash: int
    fees: FeeModel
    slippage_model: str = "none"
    slippage_bps: Fraction = Fraction(0)
    slippage_max_bps: Fraction = Fraction(0)
    latency_ns: int = 0
    jitter_ns: int = 0
    leverage: Fraction = Fraction(1)
    participation: Fraction | None = None


class OrderGate(Protocol):
    """Pre-trade risk: returns the quantity allowed (0 = denied) and a reason label."""

    def check_order(self, order: Order, engine: BacktestEngine) -> tuple[int, str | None, str]:
        ...

    def on_fill(self, fill: Fill, realised_net: int, engine: BacktestEngine) -> None: ...

    def on_equity(self, ts_ns: int, equity: int, engine: BacktestEngine) -> None: ...


EquitySink = Callable[[np.ndarray, np.ndarray, np.ndarray], None]


@dataclass
class EngineResult:
    fills: list[Fill]
    orders: list[Order]
    denials: list[Denial]
    final_equity: int
    final_cash: int
    fees_paid: int
    realised: Fraction
    bars: int
    equity_points: int
    denial_counts: dict[str, int] = field(default_factory=dict)
    first_ts_ns: int | None = None
    last_ts_ns: int | None = None


class _SymbolSlot:
    __slots__ = ("bar", "ctx", "instrument", "interval", "on_bar", "participation_ticks",
                 "position", "strategy", "symbol")

    def __init__(self, symbol: str, instrument: Instrument, interval: int, strategy: Strategy,
                 ctx: StrategyContext, ledger: Ledger) -> None:
        self.symbol = symbol
        self.instrument = instrument
        self.interval = interval
        self.strategy = strategy
        self.ctx = ctx
        self.bar = Bar(symbol)
        self.position = ledger.positions[symbol]
        self.on_bar = strategy.on_bar


class BacktestEngine:
    """One run: strategy instances per symbol, the venue, the ledger and the event clock."""

    def __init__(
        self,
        instruments: dict[str, Instrument],
        intervals: dict[str, int],
        execution: ExecutionSettings,
        strategy_factory: Callable[[], Strategy],
        strategy_name: str,
        seed: int,
        gate: OrderGate | None = None,
        strategy_file: str | None = None,
    ) -> None:
        self.instruments = dict(sorted(instruments.items()))
        self.symbols = list(self.instruments)
        self.execution = execution
        self.seed = seed
        self.streams = RandomStreams(seed)
        self.clock = SimClock()
        self.ledger = Ledger(execution.initial_cash, self.instruments)
        self.gate = gate
        self.strategy_name = strategy_name
        self.strategy_file = strategy_file
        slippage: SlippageModel
        if execution.slippage_model == "fixed":
            slippage = FixedSlippage(execution.slippage_bps)
        elif execution.slippage_model == "stochastic":
            slippage = StochasticSlippage(execution.slippage_max_bps,
                                          self.streams.stream("slippage"))
        else:
            slippage = SlippageModel()
        self.latency = LatencyModel(execution.latency_ns, execution.jitter_ns,
                                    self.streams.stream("latency") if execution.jitter_ns else None)
        self.venue = SimulatedVenue(self.instruments, execution.fees, slippage, self._on_fill)
        self.fills: list[Fill] = []
        self.denials: list[Denial] = []
        self.denial_counts: Counter[str] = Counter()
        self.logs: list[dict[str, Any]] = []
        self._next_order_id = 1
        self._slots: list[_SymbolSlot] = []
        for symbol in self.symbols:
            strategy = strategy_factory()
            ctx = StrategyContext(self, self.instruments[symbol])
            self._slots.append(_SymbolSlot(symbol, self.instruments[symbol], intervals[symbol],
                                           strategy, ctx, self.ledger))
        self._slot_by_symbol = {s.symbol: s for s in self._slots}
        self._where: tuple[str, int] | None = None
        self._bars = 0
        self._equity_points = 0
        self._first_ts: int | None = None
        self._last_ts: int | None = None
        self.last_equity = execution.initial_cash

    # -- OrderRouter (what strategies may do) ------------------------------------------------
    def submit(self, symbol: str, side: int, qty: int, order_type: OrderType,
               limit: int | None, stop: int | None, tif: TimeInForce, tag: str,
               reduce_only: bool) -> int | None:
        now = self.clock.now_ns()
        order_id = self._next_order_id
        self._next_order_id += 1
        order = Order(order_id=order_id, symbol=symbol, side=side, type=order_type, qty=qty,
                      limit=limit, stop=stop, tif=tif, ts_submitted_ns=now, active_from_ns=now,
                      tag=tag, reduce_only=reduce_only)
        if self.gate is not None:
            allowed, reason, detail = self.gate.check_order(order, self)
            if allowed <= 0:
                self._deny(order, reason or "denied", detail)
                return None
            if allowed < qty:
                order = replace(order, qty=allowed, reason=f"clipped:{reason}")
        bp_detail = self._buying_power_shortfall(order)
        if bp_detail:
            self._deny(order, "insufficient_buying_power", bp_detail)
            return None
        order = replace(order, active_from_ns=now + self.latency.draw())
        self.venue.accept(order)
        return order_id

    def _deny(self, order: Order, reason: str, detail: str) -> None:
        now = self.clock.now_ns()
        self.denials.append(Denial(order.order_id, now, order.symbol, order.side, order.qty,
                                   reason, detail))
        self.denial_counts[reason] += 1
        self.venue.record_closed(replace(order, status=OrderStatus.REJECTED, reason=reason,
                                         ts_closed_ns=now))

    def _buying_power_shortfall(self, order: Order) -> str:
        """Refuse orders that would lift gross exposure above equity x leverage."""
        slot = self._slot_by_symbol[order.symbol]
        position = slot.position.qty
        pending = self.venue.open_qty(order.symbol, order.side)
        before = abs(position + order.side * pending)
        after = abs(position + order.side * (pending + order.qty))
        if after <= before:
            return ""  # reduces exposure: always allowed
        reference = order.limit if order.type is OrderType.LIMIT else order.stop
        if reference is None:
            reference = slot.position.last_price
        if reference is None:
            return ""
        instrument = slot.instrument
        other = sum(abs(s.position.mark()) for s in self._slots if s is not slot)
        needed = other + instrument.notional(after, reference)
        equity = self.equity()
        capacity = Fraction(equity) * self.execution.leverage
        if needed > capacity:
            money = self.execution.money
            return (f"exposure after fill {money.text(needed)} > equity {money.text(equity)}"
                    f" x leverage {self.execution.leverage}")
        return ""

    def cancel(self, symbol: str, order_id: int) -> bool:
        return self.venue.cancel(order_id, symbol, self.clock.now_ns(), "cancelled_by_strategy")

    def open_orders(self, symbol: str) -> list[Order]:
        return self.venue.open_orders(symbol)

    def position(self, symbol: str) -> int:
        return self._slot_by_symbol[symbol].position.qty

    def cash(self) -> int:
        return self.ledger.cash

    def equity(self) -> int:
        return self.ledger.equity()

    def now_ns(self) -> int:
        return self.clock.now_ns()

    def log(self, symbol: str, event: str, fields: dict[str, Any]) -> None:
        self.logs.append({"ts_ns": self.clock.now_ns(), "symbol": symbol, "event": event,
                          **fields})

    # -- accounting --------------------------------------------------------------------------
    def _on_fill(self, fill: Fill) -> None:
        realised = self.ledger.apply(fill)
        self.fills.append(fill)
        if self.gate is not None:
            net = realised - fill.fee
            self.gate.on_fill(fill, int(net), self)
        slot = self._slot_by_symbol[fill.symbol]
        slot.strategy.on_fill(slot.ctx, fill)

    # -- the loop ----------------------------------------------------------------------------
    def start(self) -> None:
        for slot in self._slots:
            self._where = (slot.symbol, -1)
            self._guard(slot.strategy.on_start, slot.ctx)
        self._where = None

    def run(self, chunks: Iterable[BarChunk], equity_sink: EquitySink,
            progress: Callable[[int], None] | None = None) -> EngineResult:
        self.start()
        for chunk in chunks:
            self._guard(self._run_chunk, chunk, equity_sink)
            if progress is not None:
                progress(len(chunk))
        return self.finish()

    def finish(self) -> EngineResult:
        for slot in self._slots:
            self._where = (slot.symbol, -2)
            self._guard(slot.strategy.on_stop, slot.ctx)
        self._where = None
        self.venue.expire_all(self.clock.now_ns())
        orders = sorted(self.venue.closed, key=lambda o: o.order_id)
        return EngineResult(
            fills=self.fills,
            orders=orders,
            denials=self.denials,
            final_equity=self.ledger.equity(),
            final_cash=self.ledger.cash,
            fees_paid=self.ledger.fees_paid,
            realised=self.ledger.realised,
            bars=self._bars,
            equity_points=self._equity_points,
            denial_counts=dict(sorted(self.denial_counts.items())),
            first_ts_ns=self._first_ts,
            last_ts_ns=self._last_ts,
        )

    def _run_chunk(self, chunk: BarChunk, equity_sink: EquitySink) -> None:
        n = len(chunk)
        if n == 0:
            return
        ts_l = chunk.ts.tolist()
        o_l = chunk.open.tolist()
        h_l = chunk.high.tolist()
        l_l = chunk.low.tolist()
        c_l = chunk.close.tolist()
        v_l = chunk.volume.tolist()
        codes = chunk.codes.tolist() if chunk.codes is not None else None
        slots = self._slots
        single = slots[0] if codes is None else None
        venue = self.venue
        ledger = self.ledger
        clock = self.clock
        gate = self.gate
        participation = self.execution.participation
        eq_ts: list[int] = []
        eq_val: list[int] = []
        eq_cash: list[int] = []
        positions = [s.position for s in slots]
        if self._first_ts is None:
            self._first_ts = ts_l[0]
        for i in range(n):
            ts = ts_l[i]
            slot = single if single is not None else slots[codes[i]]  # type: ignore[index]
            self._where = (slot.symbol, ts)
            if venue.open_count:
                cap = None
                if participation is not None:
                    cap = int(Fraction(v_l[i]) * participation
                              / Fraction(slot.instrument.quantity_increment))
                venue.process_bar(slot.symbol, ts, o_l[i], h_l[i], l_l[i], cap)
            clock._now = ts + slot.interval  # close event of this bar
            bar = slot.bar
            bar.index += 1
            bar.ts_ns = ts
            bar.open = o_l[i]
            bar.high = h_l[i]
            bar.low = l_l[i]
            bar.close = c_l[i]
            bar.volume = v_l[i]
            slot.position.last_price = c_l[i]
            slot.on_bar(slot.ctx, bar)
            if codes is not None and i + 1 < n and ts_l[i + 1] == ts:
                continue  # more bars of this instant: one equity point per timestamp
            cash = ledger.cash
            equity = cash
            for pos in positions:
                if pos.qty:
                    equity += pos.mark()
            eq_ts.append(ts)
            eq_val.append(equity)
            eq_cash.append(cash)
            if gate is not None:
                self.last_equity = equity
                gate.on_equity(ts, equity, self)
        self._where = None
        self._bars += n
        self._equity_points += len(eq_ts)
        self._last_ts = ts_l[-1]
        self.last_equity = eq_val[-1]
        equity_sink(np.asarray(eq_ts, dtype=np.int64), _int_array(eq_val),
                    _int_array(eq_cash))

    def _guard(self, call: Callable[..., None], *args: Any) -> None:
        """Run ``call``; an exception raised inside strategy code becomes a StrategyError."""
        try:
            call(*args)
        except StrategyError:
            raise
        except Exception as exc:
            if not self._raised_in_strategy(exc):
                raise
            where = self._where
            symbol, ts = where if where is not None else ("?", -3)
            if ts == -1:
                when = "in on_start"
            elif ts == -2:
                when = "in on_stop"
            else:
                when = f"at the bar starting {ns_to_iso(ts)} (ts {ts})"
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            raise StrategyError(
                f"strategy {self.strategy_name} raised {type(exc).__name__}: {exc} — symbol "
                f"{symbol}, {when}, at {frame.filename}:{frame.lineno}. No run directory was "
                "written; fix the strategy and run again."
            ) from exc

    def _raised_in_strategy(self, exc: BaseException) -> bool:
        files = {slot.strategy.__class__.__module__ for slot in self._slots}
        modules = {sys.modules[m].__file__ for m in files if m in sys.modules}
        if self.strategy_file:
            modules.add(self.strategy_file)
        frames = traceback.extract_tb(exc.__traceback__)
        return any(frame.filename in modules for frame in frames)

    # -- for reports ---------------------------------------------------------------------------
    def describe_fill(self, fill: Fill) -> str:
        inst = self.instruments[fill.symbol]
        return (f"{side_label(fill.side)} {inst.qty_text(fill.qty)} {fill.symbol} @ "
                f"{inst.price_text(fill.price)}")


def _int_array(values: list[int]) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.int64)
    except OverflowError:
        return np.asarray(values, dtype=object)
