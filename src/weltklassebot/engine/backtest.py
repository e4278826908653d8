"""The event loop: for every bar, in (ts, symbol) order — execution against the bar, then the
strategy at the bar's close event, then accounting; one equity point per distinct timestamp.

Pure: no files, no wall clock. Time is the event clock; randomness comes from named streams.
Orders pass strategy -> risk (optional gate) -> buying-power check -> latency -> venue.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import heapq
import itertools
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol

import numpy as np

from weltklassebot.core.clock import SimClock
from weltklassebot.core.decimal import format_scaled
from weltklassebot.core.rng import RandomStreams
from weltklassebot.core.timeutil import ns_to_iso
from weltklassebot.engine.costs import (
    FeeModel,
    FixedSlippage,
    LatencyModel,
    SlippageModel,
    StochasticSlippage,
)
from weltklassebot.engine.probe import StageProbe
from weltklassebot.engine.risk_gate import RiskGate
from weltklassebot.engine.state import (
    ENGINE_STATE_VERSION,
    StateMismatch,
    denial_data,
    denial_from,
    fill_data,
    fill_from,
    links_data,
    links_from,
    order_data,
    order_from,
)
from weltklassebot.engine.venue import SimulatedVenue
from weltklassebot.engine.venue_api import Venue, VenueFactory
from weltklassebot.errors import StrategyError
from weltklassebot.model.bars import BarChunk
from weltklassebot.model.enums import OrderStatus, OrderType, TimeInForce
from weltklassebot.model.instrument import Instrument, MoneySpec
from weltklassebot.model.intents import OrderIntent
from weltklassebot.model.records import Denial, Fill, Order, Trail
from weltklassebot.portfolio.ledger import Ledger, Position
from weltklassebot.portfolio.view import LedgerView, PortfolioView
from weltklassebot.strategy.base import Bar, Strategy, StrategyContext
from weltklassebot.strategy.series import Series, SeriesSet

_INT64_SAFE = 1 << 62
_new = tuple.__new__
_OPEN = OrderStatus.OPEN
_REJECTED = OrderStatus.REJECTED
_LIMIT = OrderType.LIMIT
_STOP = OrderType.STOP
SEEN_FILLS = 1 << 16
"""Fill ids remembered for dropping resends (and saved with the engine state)."""
_VECTOR_MIN = 64  # below this many bars a plain loop beats NumPy's per-call overhead


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
    """Pre-trade risk: returns the quantity allowed (0 = denied) and a reason label.

    The gate sees the portfolio through a read-only view and never calls the engine: orders it
    wants placed come back from ``on_equity`` as intents, which the engine places at once.
    """

    def check_order(self, order: Order, view: PortfolioView) -> tuple[int, str | None, str]:
        ...

    def on_fill(self, fill: Fill, realised_net: int, view: PortfolioView) -> None: ...

    def on_equity(self, ts_ns: int, equity: int, view: PortfolioView) -> list[OrderIntent]: ...

    def on_engine_denial(self, reason: str, ts_ns: int, detail: str) -> None: ...


# Equity points as they are taken: times (ns), equity and cash (money units), plain Python
# integers (exact at any size; a one-bar step builds no arrays). The lists are the sink's.
EquitySink = Callable[[list[int], list[int], list[int]], None]


@dataclass(frozen=True)
class EngineBatch:
    """What the engine produced since the last batch: closed orders (by id), fills, denials
    and strategy log lines. Handing batches to a sink keeps memory flat on long runs."""

    fills: list[Fill]
    orders: list[Order]
    denials: list[Denial]
    logs: list[dict[str, Any]]


BatchSink = Callable[[EngineBatch], None]


@dataclass
class EngineResult:
    """End-of-run facts. With a batch sink the lists are empty (everything went to the sink)
    and the counts say how much there was."""

    fills: list[Fill]
    orders: list[Order]
    denials: list[Denial]
    fill_count: int
    order_count: int
    final_equity: int
    final_cash: int
    fees_paid: int
    realised: Fraction | int
    bars: int
    equity_points: int
    denial_counts: dict[str, int] = field(default_factory=dict)
    first_ts_ns: int | None = None
    last_ts_ns: int | None = None


# What the single-symbol bar body binds at every call: the engine's venue, ledger, clock,
# gate, portfolio view, volume participation and the venue's reach (fixed once built), then
# the slot's position, bar record, symbol, interval, on_bar, context, and the position's mark
# ratio (numerator, denominator) and money step.
_Shared = tuple[Venue, Ledger, SimClock, "OrderGate | None", LedgerView, Fraction | None,
                Callable[[str], tuple[float, float] | None] | None]
_Bound = tuple[Venue, Ledger, SimClock, "OrderGate | None", LedgerView, Fraction | None,
               Callable[[str], tuple[float, float] | None] | None, Position, Bar, str, int,
               Callable[[StrategyContext, Bar], None], StrategyContext, int, int, int]


class _SymbolSlot:
    __slots__ = ("bar", "bars_seen", "bound", "ctx", "instrument", "interval", "on_bar",
                 "participation_ticks", "position", "series", "stirred", "strategy", "symbol")

    def __init__(self, symbol: str, instrument: Instrument, interval: int, strategy: Strategy,
                 ctx: StrategyContext, ledger: Ledger, shared: _Shared) -> None:
        self.symbol = symbol
        self.instrument = instrument
        self.interval = interval
        self.strategy = strategy
        self.ctx = ctx
        self.bar = Bar(symbol)
        self.position = ledger.positions[symbol]
        self.on_bar = strategy.on_bar
        self.series = SeriesSet()
        self.bars_seen = 0
        # Something happened to this symbol's orders or position since on_bar last ran that
        # the strategy did not do itself (a fill, a refusal, a venue-side change, risk's
        # orders): the next close event calls on_bar whatever the wake series says.
        self.stirred = False
        # What the bar body binds at every call: one load instead of twenty per live step.
        pos = self.position
        self.bound: _Bound = (*shared, pos, self.bar, symbol, interval, self.on_bar, ctx,
                              pos.ratio_num, pos.ratio_den, pos.step)


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
        venue_factory: VenueFactory | None = None,
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
        make_venue: VenueFactory = venue_factory or SimulatedVenue
        self.venue: Venue = make_venue(self.instruments, execution.fees, slippage,
                                       self._on_fill)
        self.portfolio_view = LedgerView(self.ledger, self.venue, execution.money.scale)
        # The venue's own method, one call less per query (strategies read their open orders
        # about once a bar in order-heavy runs).
        self.open_orders: Callable[[str], list[Order]] = self.venue.open_orders
        # How far a bar must reach to touch a resting order, when the venue can tell (quiet
        # stretches with resting orders need it; without it they are never quiet).
        self._reach: Callable[[str], tuple[float, float] | None] | None = getattr(
            self.venue, "reach", None)
        self.fills: list[Fill] = []
        self.denials: list[Denial] = []
        self.denial_counts: Counter[str] = Counter()
        self.logs: list[dict[str, Any]] = []
        self._next_order_id = 1
        self._slots: list[_SymbolSlot] = []
        shared: _Shared = (self.venue, self.ledger, self.clock, gate, self.portfolio_view,
                           execution.participation, self._reach)
        for symbol in self.symbols:
            strategy = strategy_factory()
            ctx = StrategyContext(self, self.instruments[symbol])
            self._slots.append(_SymbolSlot(symbol, self.instruments[symbol], intervals[symbol],
                                           strategy, ctx, self.ledger, shared))
        self._slot_by_symbol = {s.symbol: s for s in self._slots}
        self.shared: dict[str, Any] = {}
        """The strategies' own dict across symbols (StrategyContext.shared)."""
        self._several = len(self._slots) > 1
        self._leverage = (execution.leverage.numerator, execution.leverage.denominator)
        # The latency of every order when it has no jitter (no random draw to make).
        jitter = self.latency.jitter_ns > 0 and self.latency.stream is not None
        self._fixed_delay = None if jitter else self.latency.delay_ns
        self._where: tuple[str, int] | None = None
        self._bars = 0
        self._equity_points = 0
        self._first_ts: int | None = None
        self._last_ts: int | None = None
        self._batch_sink: BatchSink | None = None
        self._equity_sink: EquitySink | None = None
        self._started = False
        self._stopped = False
        # Several symbols: close events wait here, by (event time, symbol, sequence), until no
        # bar of an earlier instant is still to be matched (see _run_instants).
        self._closes: list[tuple[int, int, int, tuple[Any, ...]]] = []
        self._close_seq = 0
        self._open_instant: int | None = None
        self.quiet_skip = True
        """Account for runs of quiet bars in bulk (see _run_single); off only to prove that
        results do not depend on it."""
        self._fill_count = 0
        self._order_count = 0
        self._seen_fills: dict[int, None] = {}
        self.duplicate_fills = 0
        """Fills a venue sent again, dropped at the accounting boundary."""
        self.probe: StageProbe | None = None
        """Stage timings (engine/probe.py); None in a backtest: nothing is measured."""
        self.run_key = "wkb-" + hashlib.sha256(
            f"{strategy_name}|{seed}|{','.join(self.symbols)}".encode()).hexdigest()[:12]

    # -- OrderRouter (what strategies may do) ------------------------------------------------
    def submit(self, symbol: str, side: int, qty: int, order_type: OrderType,
               limit: int | None, stop: int | None, tif: TimeInForce, tag: str,
               reduce_only: bool) -> int | None:
        order = self._admit(symbol, side, qty, order_type, limit, stop, tif, tag, reduce_only)
        if order is None:
            return None
        self.venue.accept(order)
        return order.order_id

    def _admit(self, symbol: str, side: int, qty: int, order_type: OrderType,
               limit: int | None, stop: int | None, tif: TimeInForce, tag: str,
               reduce_only: bool) -> Order | None:
        """The order as the venue should get it (risk's clip applied, latency drawn), or None
        when risk or buying power refused it (recorded as a denial)."""
        # The order record is built once, positionally, with its final quantity and activation
        # time (strategies submit about once per bar in order-heavy runs).
        now = self.clock._now
        order_id = self._next_order_id
        self._next_order_id = order_id + 1
        reason = ""
        gate = self.gate
        if gate is not None:
            order = _new(Order, (order_id, symbol, side, order_type, qty, limit, stop, tif, now,
                                 now, 0, _OPEN, False, "", None, tag, reduce_only))
            allowed, clip, detail = gate.check_order(order, self.portfolio_view)
            if allowed <= 0:
                self._deny(order, clip or "denied", detail)
                return None
            if allowed < qty:
                qty = allowed
                reason = f"clipped:{clip}"
                self._slot_by_symbol[symbol].stirred = True
        detail = self._buying_power_refusal(self._slot_by_symbol[symbol], side, qty, limit,
                                            stop)
        if detail:
            self._deny(_new(Order, (order_id, symbol, side, order_type, qty, limit, stop, tif,
                                    now, now, 0, _OPEN, False, reason, None, tag, reduce_only)),
                       "insufficient_buying_power", detail)
            return None
        delay = self._fixed_delay
        if delay is None:
            delay = self.latency.draw()
        return _new(Order, (order_id, symbol, side, order_type, qty, limit, stop, tif, now,
                            now + delay, 0, _OPEN, False, reason, None, tag, reduce_only))

    def submit_oco(self, symbol: str, side: int, qty: int, limit: int, stop: int,
                   tif: TimeInForce, tag: str, reduce_only: bool) -> tuple[int, int] | None:
        """A limit and a stop of one side and quantity as one-cancels-other: checked as one
        order at the worse of the two prices; the stop takes the next order id."""
        first = self._admit(symbol, side, qty, _LIMIT, limit, stop, tif, tag, reduce_only)
        if first is None:
            return None
        second_id = self._next_order_id
        self._next_order_id = second_id + 1
        limit_leg = first._replace(stop=None)
        stop_leg = first._replace(order_id=second_id, type=_STOP, limit=None)
        self.venue.accept_oco(limit_leg, stop_leg)
        return first.order_id, second_id

    def submit_bracket(self, symbol: str, side: int, qty: int, order_type: OrderType,
                       limit: int | None, stop: int | None, tif: TimeInForce, tag: str,
                       take_profit: int | None, stop_loss: int | None,
                       trail: Trail | None) -> tuple[int, int | None, int | None] | None:
        """An entry with a take-profit limit and/or a stop-loss stop that rest once it fills
        (docs/fill-model.md, Brackets). Risk and buying power check the entry; the exits only
        ever close what it opened. Ids: the entry, then the take-profit, then the stop-loss."""
        entry = self._admit(symbol, side, qty, order_type, limit, stop, tif, tag, False)
        if entry is None:
            return None
        exits: list[Order] = []
        ids: list[int | None] = []
        for wanted, kind, label in ((take_profit, _LIMIT, "take_profit"),
                                    (stop_loss, _STOP, "stop_loss")):
            if wanted is None and not (kind is _STOP and trail is not None):
                ids.append(None)
                continue
            exit_id = self._next_order_id
            self._next_order_id = exit_id + 1
            ids.append(exit_id)
            exits.append(_new(Order, (
                exit_id, symbol, -side, kind, entry.qty, wanted if kind is _LIMIT else None,
                wanted if kind is _STOP else None, TimeInForce.GTC, entry.ts_submitted_ns,
                entry.active_from_ns, 0, _OPEN, False, "", None,
                f"{tag}:{label}" if tag else label, True)))
        if not exits:
            raise ValueError("a bracket needs a take-profit, a stop-loss or a trail")
        self.venue.accept_bracket(entry, exits, trail)
        return entry.order_id, ids[0], ids[1]

    def submit_trailing(self, symbol: str, side: int, qty: int, stop: int, trail: Trail,
                        tif: TimeInForce, tag: str, reduce_only: bool) -> int | None:
        """A stop at ``stop`` that then follows the price by ``trail``, only in the trade's
        favour (docs/fill-model.md, Trailing stops)."""
        order = self._admit(symbol, side, qty, _STOP, None, stop, tif, tag, reduce_only)
        if order is None:
            return None
        self.venue.accept_trailing(order, trail)
        return order.order_id

    def fit_buying_power(self, symbol: str, side: int, qty: int) -> int:
        """The largest quantity up to ``qty`` that the buying-power check accepts now for a
        market order of ``side`` (at the last close): ``qty`` when it adds no exposure."""
        slot = self._slot_by_symbol[symbol]

        def fits(q: int) -> bool:
            return not self._buying_power_refusal(slot, side, q, None, None)

        if fits(qty):
            return qty
        low, high = 0, qty  # fits(low), not fits(high): exposure only grows with q from here
        while high - low > 1:
            middle = (low + high) // 2
            if fits(middle):
                low = middle
            else:
                high = middle
        return low

    def context_of(self, symbol: str) -> StrategyContext:
        return self._slot_by_symbol[symbol].ctx

    def last_price(self, symbol: str) -> int | None:
        """The symbol's last close seen (ticks), None before its first bar."""
        return self._slot_by_symbol[symbol].position.last_price

    def _place(self, intents: list[OrderIntent]) -> None:
        """Place the gate's orders (flatten on halt) now, in order, through the normal path."""
        for i in intents:
            self._slot_by_symbol[i.symbol].stirred = True
            self.submit(i.symbol, i.side, i.qty, i.order_type, i.limit, i.stop, i.tif, i.tag,
                        i.reduce_only)

    def _deny(self, order: Order, reason: str, detail: str) -> None:
        now = self.clock._now
        self.denials.append(_new(Denial, (order.order_id, now, order.symbol, order.side,
                                          order.qty, reason, detail)))
        self.denial_counts[reason] += 1
        self._slot_by_symbol[order.symbol].stirred = True
        if self.gate is not None and reason == "insufficient_buying_power":
            self.gate.on_engine_denial(reason, now, detail)
        self.venue.record_closed(order.closed(_REJECTED, now, reason))

    def _buying_power_refusal(self, slot: _SymbolSlot, side: int, qty: int,
                              limit: int | None, stop: int | None) -> str:
        """Why buying power refuses this order now, or "": one that would lift gross exposure
        above equity x leverage is refused, one that does not add to it always allowed."""
        before = slot.position.qty + side * self.venue.open_qty(slot.symbol, side)
        after = before + side * qty
        if after < 0:
            after = -after
        if after > (before if before >= 0 else -before):
            return self._exposure_shortfall(slot, after, limit, stop)
        return ""

    def _exposure_shortfall(self, slot: _SymbolSlot, after: int, limit: int | None,
                            stop: int | None) -> str:
        """The refusal's detail when ``after`` (the side's gross exposure in quantity ticks once
        the order fills) costs more than equity x leverage, else ""."""
        pos = slot.position
        # The worst price the order can fill at: the higher of its limit and stop (a
        # stop-limit fills at either), else the last close for a market order.
        if limit is None:
            reference = pos.last_price if stop is None else stop
        else:
            reference = limit if stop is None or stop < limit else stop
        if reference is None:
            return ""
        # Instrument.notional, inlined (its denominator is positive).
        den = pos.ratio_den
        needed, r = divmod(after * reference * pos.ratio_num, den)
        twice = 2 * r
        if twice > den or (twice == den and needed & 1):
            needed += 1
        needed *= pos.step
        if self._several:
            needed += sum(abs(s.position.mark()) for s in self._slots if s is not slot)
            equity = self.ledger.equity()
        else:
            equity = self.ledger.cash + pos.mark() if pos.qty else self.ledger.cash
        lev_num, lev_den = self._leverage
        if needed * lev_den > equity * lev_num:
            return _exposure_text(needed, equity, self.execution.money.scale, lev_num, lev_den)
        return ""

    def cancel(self, symbol: str, order_id: int) -> bool:
        return self.venue.cancel(order_id, symbol, self.clock._now, "cancelled_by_strategy")

    def position(self, symbol: str) -> int:
        return self._slot_by_symbol[symbol].position.qty

    def position_cell(self, symbol: str) -> Position:
        """The ledger's position of ``symbol`` itself (a context reads its ``qty``)."""
        return self.ledger.positions[symbol]

    def cash(self) -> int:
        return self.ledger.cash

    def equity(self) -> int:
        return self.ledger.equity()

    def now_ns(self) -> int:
        return self.clock.now_ns()

    def series(self, symbol: str) -> SeriesSet:
        return self._slot_by_symbol[symbol].series

    def log(self, symbol: str, event: str, fields: dict[str, Any]) -> None:
        self.logs.append({"ts_ns": self.clock.now_ns(), "symbol": symbol, "event": event,
                          **fields})

    # -- accounting --------------------------------------------------------------------------
    def _on_fill(self, fill: Fill) -> None:
        """The venue-to-accounting boundary: a fill is applied once, whatever the venue sends.

        A fill id seen before (a venue resending after a reconnect, a replayed message) is
        dropped and counted in ``duplicate_fills``; an id is marked seen only after its fill
        was applied, so a failure while applying leaves it to be applied again.
        """
        seen = self._seen_fills
        if fill.fill_id in seen:
            self.duplicate_fills += 1
            return
        probe = self.probe
        if probe is not None:
            probe.enter("accounting")
        realised = self.ledger.apply(fill)
        self.fills.append(fill)
        self.venue.reduce_to(fill.symbol, self._slot_by_symbol[fill.symbol].position.qty,
                             fill.ts_ns)
        seen[fill.fill_id] = None
        if len(seen) > SEEN_FILLS:
            del seen[next(iter(seen))]  # the oldest: ids arrive in (roughly) increasing order
        if self.gate is not None:
            if probe is not None:
                probe.enter("risk")
            net = realised - fill.fee
            # Risk counts whole money units; a fractional remainder rounds down (toward a loss).
            self.gate.on_fill(fill, net.numerator // net.denominator, self.portfolio_view)
            if probe is not None:
                probe.exit()
        slot = self._slot_by_symbol[fill.symbol]
        slot.stirred = True
        if probe is not None:
            probe.enter("strategy")
            slot.strategy.on_fill(slot.ctx, fill)
            probe.exit()
            probe.exit()
        else:
            slot.strategy.on_fill(slot.ctx, fill)

    @property
    def orders_submitted(self) -> int:
        """Orders submitted so far, accepted or refused (each took the next order id)."""
        return self._next_order_id - 1

    def client_order_id(self, order_id: int) -> str:
        """The id an outside venue sees for ``order_id``: the run's key and the integer id,
        derived from the run's identity alone (no clock, no process state), so a restarted
        or replayed run sends the same ids and a venue can recognise a resend."""
        return f"{self.run_key}-{order_id}"

    # -- the lifecycle: start, step, stop ----------------------------------------------------
    # Backtest, replay and the live service drive the same three calls: ``run`` below is the
    # backtest's driver (every chunk of a file); a service steps one bar at a time as bars
    # arrive and stops without expiring its resting orders.

    def start(self, first_ts_ns: int | None = None, *,
              equity_sink: EquitySink | None = None,
              batch_sink: BatchSink | None = None) -> None:
        """Call every strategy's ``on_start`` at ``first_ts_ns`` (the start of the data: orders
        it submits are stamped with the first bar's start and may fill at that bar's open).
        ``equity_sink`` receives equity points, ``batch_sink`` orders, fills, denials and logs
        after each step (without it they are kept until ``stop``)."""
        if self._started:
            raise RuntimeError("the engine was started already")
        self._started = True
        self._equity_sink = equity_sink
        self._batch_sink = batch_sink
        if first_ts_ns is not None:
            self.clock.advance_to(first_ts_ns)
        for slot in self._slots:
            self._where = (slot.symbol, -1)
            self._guard(slot.strategy.on_start, slot.ctx)
        self._where = None

    def step(self, chunk: BarChunk) -> None:
        """Run a batch of bars in event order (one bar, or a chunk of a file); an instant of
        several symbols must not be split across steps."""
        if not self._started or self._stopped:
            raise RuntimeError("step needs a started engine that has not stopped")
        n = chunk.ts.size
        if n:
            if self._first_ts is None:
                self._first_ts = int(chunk.ts[0])
            try:  # _guard, inlined: a live service steps once per event
                if chunk.codes is None:
                    eq_ts, eq_val, eq_cash = self._run_single(chunk, n)
                    self._last_ts = eq_ts[-1]  # every bar of one symbol is an equity point
                else:
                    eq_ts, eq_val, eq_cash = self._run_instants(chunk)
                    self._last_ts = int(chunk.ts[-1])
                self._where = None
                self._bars += n
                self._equity_points += len(eq_val)
                sink = self._equity_sink
                if sink is not None:
                    sink(eq_ts, eq_val, eq_cash)
            except Exception as exc:
                error = self._strategy_error(exc)
                if error is None:
                    raise
                raise error from exc
        if self._batch_sink is not None:
            self._batch_sink(self._take_batch())

    def stop(self, *, expire_open_orders: bool = True) -> EngineResult:
        """Run close events still due, call every strategy's ``on_stop`` and end the run.

        A backtest expires the orders still open (``expire_open_orders``); a service that stops
        keeps them, so they rest again when it resumes from its saved state.
        """
        if not self._started:
            raise RuntimeError("stop needs a started engine")
        if self._stopped:
            raise RuntimeError("the engine was stopped already")
        if self._closes or self._open_instant is not None:
            self._guard(self._drain_instants, self._emit_equity)
        for slot in self._slots:
            self._where = (slot.symbol, -2)
            self._guard(slot.strategy.on_stop, slot.ctx)
        self._where = None
        if expire_open_orders:
            self.venue.expire_all(self.clock.now_ns())
        self._stopped = True
        return self._result()

    def run(self, chunks: Iterable[BarChunk], equity_sink: EquitySink,
            progress: Callable[[int], None] | None = None,
            batch_sink: BatchSink | None = None) -> EngineResult:
        """The backtest: start at the first bar, step through every chunk, stop. With
        ``batch_sink``, orders, fills, denials and logs are handed over after each chunk
        instead of being kept until the end."""
        iterator = iter(chunks)
        first = next(iterator, None)
        while first is not None and not len(first):
            first = next(iterator, None)
        self.start(None if first is None else int(first.ts[0]), equity_sink=equity_sink,
                   batch_sink=batch_sink)
        if first is not None:
            for chunk in itertools.chain((first,), iterator):
                self.step(chunk)
                if progress is not None:
                    progress(len(chunk))
        return self.stop()

    # -- saved state: continue a run in this process or another (engine/state.py) -----------

    def save_state(self) -> dict[str, Any]:
        """The engine state record between steps: plain JSON data, exact, versioned."""
        if not self._started or self._stopped:
            raise RuntimeError("save_state needs a started engine that has not stopped")
        slots = []
        for slot in self._slots:
            items = slot.series.items
            saved = (slot.strategy.save(slot.ctx) if type(slot.strategy).has_saved_state()
                     else None)
            slots.append({
                "symbol": slot.symbol,
                "bars_seen": slot.bars_seen,
                "series": [{"value": _plain(item.value), "ready": bool(item.ready),
                            "kernel": item.kernel_state()} for item in items],
                "strategy": saved,
            })
        closes = []
        for close_ts, code, seq, (ts, o, h, lo, c, v, values) in sorted(self._closes):
            items = self._slots[code].series.items
            closes.append([close_ts, code, seq, [ts, o, h, lo, c, v, [
                [items.index(series), _plain(value), bool(ready)]
                for series, value, ready in values]]])
        book = self.venue.book_state()
        gate = self.gate
        return {
            "version": ENGINE_STATE_VERSION,
            "strategy": self.strategy_name,
            "symbols": list(self.symbols),
            "seed": self.seed,
            "clock_ns": self.clock.now_ns(),
            "cursor": self._bars,
            "counters": {
                "next_order_id": self._next_order_id, "equity_points": self._equity_points,
                "first_ts": self._first_ts, "last_ts": self._last_ts,
                "fill_count": self._fill_count, "order_count": self._order_count,
                "close_seq": self._close_seq, "open_instant": self._open_instant,
                "duplicate_fills": self.duplicate_fills,
            },
            "seen_fills": list(self._seen_fills),
            "denial_counts": dict(sorted(self.denial_counts.items())),
            "ledger": self.ledger.state(),
            "venue": {"orders": [order_data(o) for o in book["orders"]],
                      "next_fill_id": book["next_fill_id"],
                      **({"links": links_data(book["links"])} if _any_link(book) else {})},
            "rng": self.streams.states(),
            "risk": gate.risk.snapshot() if isinstance(gate, RiskGate) else None,
            "closes": closes,
            "slots": slots,
            "pending": {"fills": [fill_data(f) for f in self.fills],
                        "orders": [order_data(o) for o in self.venue.pending_closed()],
                        "denials": [denial_data(d) for d in self.denials],
                        "logs": list(self.logs)},
        }

    def resume(self, state: dict[str, Any], *, equity_sink: EquitySink | None = None,
               batch_sink: BatchSink | None = None,
               feed: Iterable[BarChunk] | None = None) -> None:
        """Continue from ``save_state``'s record instead of ``start``; then ``step`` on from
        bar ``state["cursor"]`` of the feed.

        Strategies with save/load hooks are rebuilt from their data. Without them the run is
        re-played from the start of ``feed`` to the cursor (outputs discarded) and the state
        it reaches must equal the saved one, else ``StateMismatch``.
        """
        if self._started:
            raise RuntimeError("resume needs an engine that was not started")
        self._check_fits(state)
        if all(saved["strategy"] is not None for saved in state["slots"]):
            self._started = True
            for slot, saved in zip(self._slots, state["slots"], strict=True):
                self._where = (slot.symbol, -1)
                self._guard(slot.strategy.load, slot.ctx, saved["strategy"])
            self._where = None
            self._load_state(state)
        else:
            if feed is None:
                missing = [s.strategy.name for s in self._slots
                           if not type(s.strategy).has_saved_state()]
                raise StateMismatch(
                    f"strategy {missing[0]} has no save/load hooks, so resuming it re-runs the "
                    "feed from its start to the saved cursor: pass the feed")
            self._replay_to(state, feed)
        for slot in self._slots:
            # What stirred a strategy before the save is not in the record: each looks at the
            # next bar (an extra on_bar call changes nothing a wake hint may skip).
            slot.stirred = True
        self._equity_sink = equity_sink
        self._batch_sink = batch_sink

    def _check_fits(self, state: dict[str, Any]) -> None:
        if state.get("version") != ENGINE_STATE_VERSION:
            raise StateMismatch(f"engine state version {state.get('version')!r} is not "
                                f"{ENGINE_STATE_VERSION}: it was saved by another release")
        for key, mine in (("strategy", self.strategy_name), ("symbols", list(self.symbols)),
                          ("seed", self.seed)):
            if state.get(key) != mine:
                raise StateMismatch(f"the saved state is for {key} {state.get(key)!r}, this "
                                    f"engine runs {mine!r}")

    def _load_state(self, state: dict[str, Any]) -> None:
        counters = state["counters"]
        self.clock._now = int(state["clock_ns"])
        self._bars = int(state["cursor"])
        self._next_order_id = int(counters["next_order_id"])
        self._equity_points = int(counters["equity_points"])
        self._first_ts = counters["first_ts"]
        self._last_ts = counters["last_ts"]
        self._fill_count = int(counters["fill_count"])
        self._order_count = int(counters["order_count"])
        self._close_seq = int(counters["close_seq"])
        self._open_instant = counters["open_instant"]
        self.duplicate_fills = int(counters["duplicate_fills"])
        self._seen_fills = dict.fromkeys(int(i) for i in state["seen_fills"])
        self.denial_counts = Counter(state["denial_counts"])
        self.ledger.load_state(state["ledger"])
        self.venue.load_book([order_from(o) for o in state["venue"]["orders"]],
                             int(state["venue"]["next_fill_id"]),
                             links_from(state["venue"].get("links")))
        self.streams.restore_states(state["rng"])
        if state["risk"] is not None:
            gate = self.gate
            if not isinstance(gate, RiskGate):
                raise StateMismatch("the saved state has risk limits; this engine has none")
            gate.risk = type(gate.risk).restore(gate.risk.config, state["risk"])
        for slot, saved in zip(self._slots, state["slots"], strict=True):
            items = slot.series.items
            if len(items) != len(saved["series"]):
                raise StateMismatch(
                    f"strategy {slot.strategy.name} declared {len(items)} engine series for "
                    f"{slot.symbol}; the saved state has {len(saved['series'])}")
            for item, data in zip(items, saved["series"], strict=True):
                item.value = data["value"]
                item.ready = data["ready"]
                item.load_kernel_state(data["kernel"])
            slot.bars_seen = int(saved["bars_seen"])
        self._closes = []
        for close_ts, code, seq, (ts, o, h, lo, c, v, values) in state["closes"]:
            items = self._slots[code].series.items
            self._closes.append((close_ts, code, seq, (ts, o, h, lo, c, v, tuple(
                (items[index], value, ready) for index, value, ready in values))))
        heapq.heapify(self._closes)
        pending = state["pending"]
        self.fills = [fill_from(f) for f in pending["fills"]]
        self.venue.restore_closed([order_from(o) for o in pending["orders"]])
        self.denials = [denial_from(d) for d in pending["denials"]]
        self.logs = list(pending["logs"])

    def _replay_to(self, state: dict[str, Any], feed: Iterable[BarChunk]) -> None:
        cursor = int(state["cursor"])
        chunks = iter(feed)
        first = next(chunks, None)
        self.start(None if first is None or not len(first) else int(first.ts[0]))
        done = 0
        for chunk in itertools.chain(() if first is None else (first,), chunks):
            if done >= cursor:
                break
            take = min(len(chunk), cursor - done)
            self.step(chunk if take == len(chunk) else chunk.slice(0, take))
            done += take
        if done != cursor:
            raise StateMismatch(f"the feed ended after {done} bars, before the saved cursor "
                                f"{cursor}")
        reached = self.save_state()
        for key in ("pending", "counters"):
            reached.pop(key)
        expected = {k: v for k, v in state.items() if k not in ("pending", "counters")}
        reached["slots"] = [{**s, "strategy": None} for s in reached["slots"]]
        expected["slots"] = [{**s, "strategy": None} for s in expected["slots"]]
        if reached != expected:
            differing = sorted(k for k in expected if reached.get(k) != expected[k])
            raise StateMismatch(
                f"re-running the feed to bar {cursor} did not reach the saved state (differs "
                f"in: {', '.join(differing)}): the feed or the strategy is not the one saved")
        # The re-run's outputs went to the sinks of the original run: keep only what was
        # pending there, and its counters.
        self._load_pending_and_counters(state)

    def _load_pending_and_counters(self, state: dict[str, Any]) -> None:
        counters = state["counters"]
        self._fill_count = int(counters["fill_count"])
        self._order_count = int(counters["order_count"])
        self.duplicate_fills = int(counters["duplicate_fills"])
        pending = state["pending"]
        self.fills = [fill_from(f) for f in pending["fills"]]
        self.venue.restore_closed([order_from(o) for o in pending["orders"]])
        self.denials = [denial_from(d) for d in pending["denials"]]
        self.logs = list(pending["logs"])

    def _emit_equity(self, ts: list[int], equity: list[int], cash: list[int]) -> None:
        if self._equity_sink is not None:
            self._equity_sink(ts, equity, cash)

    def _result(self) -> EngineResult:
        last = self._take_batch()
        if self._batch_sink is not None:
            self._batch_sink(last)
            last = EngineBatch([], [], [], [])
        return EngineResult(
            fills=last.fills,
            orders=last.orders,
            denials=last.denials,
            fill_count=self._fill_count,
            order_count=self._order_count,
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

    def _take_batch(self) -> EngineBatch:
        """Everything since the last batch (the whole run when there is no batch sink)."""
        # Orders in the order they closed: a sequence the events decide, so a run stepped bar
        # by bar lists them exactly as a run over whole chunks does.
        if self._batch_sink is None:
            batch = EngineBatch(self.fills, self.venue.pending_closed(), self.denials,
                                self.logs)
            self._fill_count = len(batch.fills)
            self._order_count = len(batch.orders)
            return batch
        batch = EngineBatch(self.fills, self.venue.take_closed(), self.denials, self.logs)
        self.fills, self.denials, self.logs = [], [], []
        self._fill_count += len(batch.fills)
        self._order_count += len(batch.orders)
        return batch

    def _series_lists(self, chunk: BarChunk) -> list[list[tuple[Series, list[Any],
                                                                  list[bool]]]]:
        """Per slot: its series' values and readiness aligned to the chunk's rows."""
        per_slot: list[list[tuple[Series, list[Any], list[bool]]]] = []
        for code, slot in enumerate(self._slots):
            if not slot.series.items:
                per_slot.append([])
                continue
            if chunk.codes is None:
                evaluated = slot.series.evaluate(_columns(chunk, None))
                per_slot.append([(s, v.tolist(), r.tolist()) for s, v, r in evaluated])
                continue
            mask = chunk.codes == code
            evaluated = slot.series.evaluate(_columns(chunk, mask))
            aligned = []
            for series, values, ready in evaluated:
                full = np.zeros(len(chunk), dtype=values.dtype)
                full[mask] = values
                full_ready = np.zeros(len(chunk), dtype=bool)
                full_ready[mask] = ready
                aligned.append((series, full.tolist(), full_ready.tolist()))
            per_slot.append(aligned)
        return per_slot

    def _run_instants(self, chunk: BarChunk) -> tuple[list[int], list[int], list[int]]:
        """Several symbols, in event-time order: events run by (event time, symbol, sequence).

        At an instant every symbol's bar is matched (fills at ``ts``) before any close event
        (the strategy's ``on_bar`` at ``ts + interval``); a close event runs once no bar
        starting before its time is left to match, so the event clock never goes back, also
        when symbols have different intervals. The equity point of an instant is taken when
        the next instant starts (or the data ends), after every close event due by then.
        """
        codes_arr = chunk.codes
        assert codes_arr is not None
        n = len(chunk)
        ts_l, o_l, h_l, l_l, c_l, v_l = chunk.as_lists()
        codes = codes_arr.tolist()
        slots = self._slots
        series_by_slot = self._series_lists(chunk)
        venue = self.venue
        clock = self.clock
        participation = self.execution.participation
        closes = self._closes
        eq: tuple[list[int], list[int], list[int]] = ([], [], [])
        # The wake series in force and their rows in this chunk (rebuilt when a strategy
        # switches series).
        wakes: list[Series | None] | None = None
        wake_rows: list[int] | None = None
        w = 0
        i = 0
        while i < n:
            ts = ts_l[i]
            self._close_instant(ts, eq)
            if ts < clock._now:
                raise AssertionError(f"event clock would go back from {clock._now} to {ts}")
            # With a stage probe (the service) every instant is one event: none in bulk.
            if self.quiet_skip and self.probe is None and not venue.open_count and not closes \
                    and not any(slot.stirred for slot in slots):
                now_wakes = [slot.series.wake for slot in slots]
                if now_wakes != wakes:
                    wakes = now_wakes
                    wake_rows = self._wake_rows(codes, series_by_slot)
                    w = 0
            else:
                now_wakes = None
            if now_wakes is not None and wake_rows is not None:
                while w < len(wake_rows) and wake_rows[w] < i:
                    w += 1
                quiet_end = wake_rows[w] if w < len(wake_rows) else n
                while quiet_end > i and quiet_end < n and ts_l[quiet_end - 1] == ts_l[quiet_end]:
                    quiet_end -= 1  # whole instants only: the one that wakes runs in full
                after = self._quiet_instants(i, quiet_end, ts_l, c_l, codes, series_by_slot, eq)
                if after > i:
                    i = after
                    continue
            j = i
            while j < n and ts_l[j] == ts:
                j += 1
            clock._now = ts  # fills happen inside the bars; on_fill acts at their start
            for k in range(i, j):
                slot = slots[codes[k]]
                if venue.open_count:
                    self._where = (slot.symbol, ts)
                    cap = None if participation is None else _volume_cap(v_l[k], participation,
                                                                          slot)
                    if self.probe is not None:
                        self.probe.enter("execution")
                    venue.process_bar(slot.symbol, ts, o_l[k], h_l[k], l_l[k], cap)
                    if self.probe is not None:
                        self.probe.exit()
                values = tuple((series, values[k], ready[k])
                               for series, values, ready in series_by_slot[codes[k]])
                self._close_seq += 1
                heapq.heappush(closes, (ts + slot.interval, codes[k], self._close_seq,
                                        (ts, o_l[k], h_l[k], l_l[k], c_l[k], v_l[k], values)))
            self._open_instant = ts
            i = j
        return eq

    def _wake_rows(self, codes: list[int], series_by_slot: list[list[tuple[
            Series, list[Any], list[bool]]]]) -> list[int] | None:
        """Rows of the chunk where some strategy wakes, when the quiet-bar skip applies to
        several symbols: every strategy declared ``wake_on`` and every symbol has the same
        interval (so each instant's close events all run before the next instant). None
        otherwise: every bar then goes to ``on_bar``."""
        slots = self._slots
        if not self.quiet_skip or any(slot.series.wake is None for slot in slots):
            return None
        if len({slot.interval for slot in slots}) != 1:
            return None
        wake_values: list[list[Any]] = []
        for code, slot in enumerate(slots):
            found = [values for series, values, _ready in series_by_slot[code]
                     if series is slot.series.wake]
            if not found:
                return None
            wake_values.append(found[0])
        return [row for row, code in enumerate(codes) if wake_values[code][row]]

    def _quiet_instants(self, i: int, end: int, ts_l: list[int], c_l: list[int],
                        codes: list[int],
                        series_by_slot: list[list[tuple[Series, list[Any], list[bool]]]],
                        eq: tuple[list[int], list[int], list[int]]) -> int:
        """Instants of rows i..end-1 where nothing can happen: no order open, no strategy
        woken. Each instant's close events only move last prices; its equity point is cash
        plus the marks at those prices. With risk limits each instant's equity still goes to
        the gate, and an intent it returns ends the stretch after that instant. An instant is
        closed here only when the next one, in this chunk, starts at or after its close
        events (as the full path would order them); the rest go the full path. Returns the row
        to go on from."""
        n = len(ts_l)
        slots = self._slots
        clock = self.clock
        interval = slots[0].interval
        k = i
        while k < end:
            ts = ts_l[k]
            nxt = k
            while nxt < n and ts_l[nxt] == ts:
                nxt += 1
            if nxt >= n or ts_l[nxt] < ts + interval:
                return k
            self._where = (slots[codes[k]].symbol, ts)
            while k < end and ts_l[k] == ts:
                slot = slots[codes[k]]
                slot.position.last_price = c_l[k]
                slot.bars_seen += 1
                for series, values, ready in series_by_slot[codes[k]]:
                    series.value = values[k]
                    series.ready = ready[k]
                k += 1
            clock._now = ts + interval
            if self._instant_point(ts, eq):
                return k  # risk placed orders: the stretch is no longer quiet
        return k

    def _drain_instants(self, equity_sink: EquitySink) -> None:
        """At the end of the data: every close event still due, then the last equity point."""
        eq: tuple[list[int], list[int], list[int]] = ([], [], [])
        self._close_instant(None, eq)
        self._where = None
        self._equity_points += len(eq[0])
        equity_sink(*eq)

    def _close_instant(self, until: int | None,
                       eq: tuple[list[int], list[int], list[int]]) -> None:
        """Run close events due at or before ``until`` (all with None), then take the equity
        point of the open instant."""
        closes = self._closes
        clock = self.clock
        slots = self._slots
        while closes and (until is None or closes[0][0] <= until):
            close_ts, code, _seq, (ts, o, h, lo, c, v, values) = heapq.heappop(closes)
            slot = slots[code]
            if close_ts < clock._now:
                raise AssertionError(f"event clock would go back from {clock._now} to {close_ts}")
            clock._now = close_ts
            self._where = (slot.symbol, ts)
            bar = slot.bar
            bar.index = slot.bars_seen
            slot.bars_seen += 1
            bar.ts_ns = ts
            bar.open = o
            bar.high = h
            bar.low = lo
            bar.close = c
            bar.volume = v
            slot.position.last_price = c
            for series, value, ready in values:
                series.value = value
                series.ready = ready
            slot.stirred = False
            probe = self.probe
            if probe is not None:
                probe.enter("strategy")
                slot.on_bar(slot.ctx, bar)
                probe.exit()
            else:
                slot.on_bar(slot.ctx, bar)
        instant = self._open_instant
        if instant is None:
            return
        self._open_instant = None
        probe = self.probe
        if probe is not None:
            probe.enter("accounting")
        self._instant_point(instant, eq)
        if probe is not None:
            probe.exit()
            probe.event_done()  # an instant, with every bar and close event it held

    def _instant_point(self, instant: int, eq: tuple[list[int], list[int], list[int]]) -> bool:
        """The equity point of an instant whose close events have run, and risk's look at it
        on the event clock; True when risk returned intents (they are placed)."""
        cash = self.ledger.cash
        equity = cash
        for slot in self._slots:
            if slot.position.qty:
                equity += slot.position.mark()
        eq[0].append(instant)
        eq[1].append(equity)
        eq[2].append(cash)
        gate = self.gate
        if gate is None:
            return False
        probe = self.probe
        if probe is not None:
            probe.enter("risk")
        intents = gate.on_equity(self.clock._now, equity, self.portfolio_view)
        if intents:
            self._place(intents)
        if probe is not None:
            probe.exit()
        return bool(intents)

    def _run_single(self, chunk: BarChunk, n: int) -> tuple[list[int], list[int], list[int]]:
        """One symbol, bar by bar: match at ``ts``, the close event at ``ts + interval``
        (``on_bar``), the equity point, risk.

        The guarded fast path: when the strategy declared a ``wake_on`` series and the skip is
        on, ``on_bar`` runs at wake bars and at bars where something happened to the symbol's
        orders or position that the strategy did not do itself (``stirred``: a fill, a refused
        or clipped order, a venue-side change, risk's orders). A run of bars before the next
        wake bar where no resting order can be touched (every bar's open, high and low inside
        the book's reach, see ``SimulatedVenue.reach``) is accounted for in bulk: exact marks,
        no matching, no strategy call; with risk limits the gate still sees every bar's
        equity at its close event, and an intent it returns (flatten) ends the run there.
        Results are the same with the skip off (``quiet_skip = False``: ``on_bar`` at every
        bar).
        """
        ts_l, o_l, h_l, l_l, c_l, v_l = chunk.as_lists()
        slot = self._slots[0]
        declared = slot.series
        # Per wake series used in this chunk (a strategy may switch), the rows it wakes at.
        wake_rows: dict[int, list[int] | None] = {}
        arrays: dict[int, np.ndarray] = {}
        # What each woken bar hands the strategy: every value, and the readiness only of series
        # not already ready through the whole chunk (after warm-up, none).
        values_at: list[tuple[Series, list[Any]]]
        ready_at: list[tuple[Series, list[bool]]]
        if not declared.items:
            values_at, ready_at = [], []
        elif n == 1:  # one bar (a live step): plain values in cells read at row 0
            declared.step_one((o_l[0], h_l[0], l_l[0], c_l[0], v_l[0], ts_l[0]))
            values_at = declared.one_values
            ready_at = declared.one_ready  # set at a woken bar: rare, unlike a filter per bar
        else:
            evaluated = declared.evaluate(_columns(chunk, None))
            values_at = [(series, values.tolist()) for series, values, _ready in evaluated]
            ready_at = [(series, ready.tolist()) for series, _values, ready in evaluated
                        if not (series.ready and bool(ready.all()))]
            # Wake rows come from the arrays (one C-level pass each), when a series is used.
            arrays = {id(series): values for series, values, _ready in evaluated}
        current = declared.wake if self.quiet_skip else None
        wake: list[int] | None
        if current is None:
            wake = None
        elif n == 1:  # the wake series' one cell (None: not one of the set's, every bar wakes)
            cell = declared.one_cells.get(id(current))
            wake = None if cell is None else [0] if cell[0] else []
        else:
            wake = _rows_of(current, values_at, arrays, wake_rows)
        # Position.mark is inlined below (ratio_num, ratio_den, step): the engine marks every
        # bar held in a position.
        (venue, ledger, clock, gate, view, participation, reach, pos, bar, symbol, interval,
         on_bar, ctx, ratio_num, ratio_den, step) = slot.bound
        probe = self.probe
        eq_val: list[int] = []
        eq_cash: list[int] = []
        every = wake is None
        n_wake = 0 if wake is None else len(wake)
        w = 0
        next_wake = 0
        i = 0
        try:
            while i < n:
                if not every:
                    assert wake is not None
                    next_wake = wake[w] if w < n_wake else n
                    # A lone quiet bar (a live step's usual case) costs less in the body
                    # below than in looking for a stretch and accounting it in bulk. With a
                    # stage probe (the service) every bar is one event: none in bulk.
                    if i + 1 < next_wake and probe is None and not slot.stirred:
                        j = next_wake
                        if venue.open_count:
                            bounds = None if reach is None else reach(symbol)
                            if bounds is None:
                                j = i
                            else:
                                j = _first_touch(i, j, bounds[0], bounds[1], chunk, o_l, h_l,
                                                 l_l)
                        if j > i:
                            if gate is None:
                                self._quiet_bulk(slot, chunk, i, j, ts_l, c_l, eq_val, eq_cash)
                                i = j
                            else:
                                i = self._quiet_with_gate(i, j, ts_l, c_l, eq_val, eq_cash)
                            continue
                ts = ts_l[i]
                if venue.open_count:
                    cap = (None if participation is None
                           else _volume_cap(v_l[i], participation, slot))
                    clock._now = ts  # fills happen inside the bar; on_fill acts at its start
                    if probe is not None:
                        probe.enter("execution")
                    if venue.process_bar(symbol, ts, o_l[i], h_l[i], l_l[i], cap) is not False:
                        slot.stirred = True
                    if probe is not None:
                        probe.exit()
                clock._now = ts + interval  # close event of this bar
                close = c_l[i]
                pos.last_price = close
                if every or i == next_wake or slot.stirred:
                    slot.stirred = False
                    bar.index = slot.bars_seen
                    bar.ts_ns = ts
                    bar.open = o_l[i]
                    bar.high = h_l[i]
                    bar.low = l_l[i]
                    bar.close = close
                    bar.volume = v_l[i]
                    for series, values in values_at:
                        series.value = values[i]
                    for series, ready in ready_at:
                        series.ready = ready[i]
                    if probe is not None:
                        probe.enter("strategy")
                        on_bar(ctx, bar)
                        probe.exit()
                    else:
                        on_bar(ctx, bar)
                    if not every:
                        if i == next_wake:
                            w += 1
                        if declared.wake is not current:
                            # The strategy follows another series from the next bar on.
                            current = declared.wake
                            wake = (None if current is None
                                    else _rows_of(current, values_at, arrays, wake_rows))
                            if wake is None:
                                every = True
                            else:
                                n_wake = len(wake)
                                w = bisect.bisect_right(wake, i)
                slot.bars_seen += 1
                if probe is not None:
                    probe.enter("accounting")
                cash = ledger.cash
                qty = pos.qty
                if qty:
                    q, r = divmod(qty * close * ratio_num, ratio_den)
                    if 2 * r > ratio_den or (2 * r == ratio_den and q & 1):
                        q += 1
                    equity = cash + q * step
                else:
                    equity = cash
                eq_cash.append(cash)
                eq_val.append(equity)
                if gate is not None:
                    if probe is not None:
                        probe.enter("risk")
                    # Risk runs on the event clock: this equity is known at the bar's close.
                    intents = gate.on_equity(ts + interval, equity, view)
                    if intents:
                        self._place(intents)
                    if probe is not None:
                        probe.exit()
                if probe is not None:
                    probe.exit()
                    probe.event_done()
                i += 1
        except BaseException:
            # Where it happened, for the error a strategy's exception becomes (set here, not
            # at every bar).
            if i < n:
                self._where = (symbol, ts_l[i])
            raise
        return ts_l, eq_val, eq_cash

    def _quiet_bulk(self, slot: _SymbolSlot, chunk: BarChunk, i: int, j: int,
                    ts_l: list[int], c_l: list[int], eq_val: list[int],
                    eq_cash: list[int]) -> None:
        """Quiet bars i..j-1 without risk limits: equity points from the closes and the
        position, the clock at the last one's close event."""
        pos = slot.position
        cash = self.ledger.cash
        m = j - i
        eq_cash.extend([cash] * m)
        qty = pos.qty
        if not qty:
            eq_val.extend([cash] * m)
        elif m < _VECTOR_MIN:
            ratio_num, ratio_den, step = pos.ratio_num, pos.ratio_den, pos.step
            for close in c_l[i:j]:
                q, r = divmod(qty * close * ratio_num, ratio_den)
                if 2 * r > ratio_den or (2 * r == ratio_den and q & 1):
                    q += 1
                eq_val.append(cash + q * step)
        else:
            eq_val.extend(_equity_values(cash, _marks(qty, chunk.close[i:j], slot)))
        pos.last_price = c_l[j - 1]
        slot.bars_seen += m
        self.clock._now = ts_l[j - 1] + slot.interval

    def _quiet_with_gate(self, i: int, j: int, ts_l: list[int], c_l: list[int],
                         eq_val: list[int], eq_cash: list[int]) -> int:
        """Quiet bars i..j-1 with risk limits: no strategy call, but every close event's equity
        goes to the gate. Returns where to go on (after an intent, the next bar)."""
        slot = self._slots[0]
        pos = slot.position
        ledger = self.ledger
        clock = self.clock
        gate = self.gate
        assert gate is not None
        view = self.portfolio_view
        interval = slot.interval
        for k in range(i, j):
            close_ts = ts_l[k] + interval
            self._where = (slot.symbol, ts_l[k])
            clock._now = close_ts
            pos.last_price = c_l[k]
            slot.bars_seen += 1
            cash = ledger.cash
            equity = cash + pos.mark() if pos.qty else cash
            eq_cash.append(cash)
            eq_val.append(equity)
            intents = gate.on_equity(close_ts, equity, view)
            if intents:
                self._place(intents)
                return k + 1
        return j

    def _guard(self, call: Callable[..., None], *args: Any) -> None:
        """Run ``call``; an exception raised inside strategy code becomes a StrategyError."""
        try:
            call(*args)
        except Exception as exc:
            error = self._strategy_error(exc)
            if error is None:
                raise
            raise error from exc

    def _strategy_error(self, exc: Exception) -> StrategyError | None:
        """The StrategyError ``exc`` becomes, naming the strategy's line and the bar, when it
        was raised inside strategy code (and is not one already); else None."""
        if isinstance(exc, StrategyError) or not self._raised_in_strategy(exc):
            return None
        where = self._where
        symbol, ts = where if where is not None else ("?", -3)
        if ts == -1:
            when = "in on_start"
        elif ts == -2:
            when = "in on_stop"
        else:
            when = f"at the bar starting {ns_to_iso(ts)} (ts {ts})"
        frames = traceback.extract_tb(exc.__traceback__)
        # The strategy's own line (the call the user wrote), and where it was raised when
        # that is deeper, in the library the strategy called.
        files = self._strategy_files()
        own = [frame for frame in frames if frame.filename in files][-1]
        deepest = frames[-1]
        place = f"{own.filename}:{own.lineno}"
        if own.line:
            place += f" ({own.line.strip()})"
        if deepest is not own:
            place += f", raised in {deepest.filename}:{deepest.lineno}"
        return StrategyError(
            f"strategy {self.strategy_name} raised {type(exc).__name__}: {exc} — symbol "
            f"{symbol}, {when}, at {place}. No run directory was written; fix the "
            "strategy and run again.")

    def _strategy_files(self) -> set[str]:
        names = {slot.strategy.__class__.__module__ for slot in self._slots}
        files = {str(sys.modules[m].__file__) for m in names if m in sys.modules}
        if self.strategy_file:
            files.add(self.strategy_file)
        return files

    def _raised_in_strategy(self, exc: BaseException) -> bool:
        files = self._strategy_files()
        return any(frame.filename in files for frame in traceback.extract_tb(exc.__traceback__))


def _rows_of(series: Series, values_at: list[tuple[Series, list[Any]]],
             arrays: dict[int, np.ndarray], cache: dict[int, list[int] | None]) -> (
                 list[int] | None):
    """Rows of the chunk where ``series`` is non-zero (from its array when there is one);
    None when it is not one of the evaluated series (then every bar wakes)."""
    key = id(series)
    if key in cache:
        return cache[key]
    if key in arrays:
        rows: list[int] | None = np.flatnonzero(arrays[key]).tolist()
    else:  # a one-bar step: no arrays, each series' one cell
        rows = None
        for item, values in values_at:
            if item is series:
                rows = [0] if values[0] else []
                break
    cache[key] = rows
    return rows


_SCAN = 24  # quiet bars looked at one by one before the rest of a stretch goes to NumPy


def _first_touch(i: int, j: int, up: float, down: float, chunk: BarChunk, o_l: list[int],
                 h_l: list[int], l_l: list[int]) -> int:
    """The first bar of i..j-1 whose path reaches ``up`` or ``down`` (its open counts too,
    whatever the data), j when none does."""
    stop = j if j - i <= _SCAN else i + _SCAN
    k = i
    while k < stop:
        o = o_l[k]
        if h_l[k] >= up or l_l[k] <= down or o >= up or o <= down:
            return k
        k += 1
    if k < j:
        opens = chunk.open[k:j]
        hit = ((chunk.high[k:j] >= up) | (chunk.low[k:j] <= down) | (opens >= up)
               | (opens <= down))
        first = int(hit.argmax())
        return k + first if hit[first] else j
    return j


def _volume_cap(volume: float, participation: Fraction, slot: _SymbolSlot) -> int:
    """Quantity ticks a bar can fill in all: floor(volume * participation), exact."""
    return int(Fraction(volume) * participation / Fraction(slot.instrument.quantity_increment))


def _columns(chunk: BarChunk, mask: np.ndarray | None) -> dict[str, np.ndarray]:
    """The bar columns engine series read: prices (ticks), volume (float) and ts (ns)."""
    cols = {"open": chunk.open, "high": chunk.high, "low": chunk.low, "close": chunk.close,
            "volume": chunk.volume, "ts": chunk.ts}
    if mask is None:
        return cols
    return {k: v[mask] for k, v in cols.items()}


def _marks(qty: int, closes: np.ndarray, slot: _SymbolSlot) -> np.ndarray:
    """Exact marks of ``qty`` at each close, half-even to the cash increment: int64 when every
    intermediate product fits, else Python ints in an object array."""
    inst = slot.instrument
    k = qty * inst.value_num
    den = inst.value_den
    step = inst.money.step
    top = int(closes.max()) if closes.size else 0
    if closes.size >= _VECTOR_MIN and abs(k) * top < _INT64_SAFE and den < _INT64_SAFE:
        prod = closes * k
        q = prod // den
        r = prod - q * den
        up = (2 * r > den) | ((2 * r == den) & (q % 2 == 1))
        return np.asarray((q + up) * step, dtype=np.int64)
    out = []
    for c in closes.tolist():
        q, r = divmod(k * c, den)
        twice = 2 * r
        if twice > den or (twice == den and q & 1):
            q += 1
        out.append(q * step)
    return np.array(out, dtype=object)


def _equity_values(cash: int, marks: np.ndarray) -> list[int]:
    """cash + each mark, exact (int64 while every value fits, else Python ints)."""
    if marks.dtype != object and abs(cash) < _INT64_SAFE and (
            not marks.size or int(np.abs(marks).max()) < _INT64_SAFE):
        values: list[int] = (marks + cash).tolist()
        return values
    return [cash + int(m) for m in marks.tolist()]


def _any_link(book: dict[str, Any]) -> bool:
    """Whether the venue's book holds links (a record without them keeps its old layout)."""
    links = book.get("links")
    return links is not None and any(links.values())


def _plain(value: Any) -> Any:
    """A series value as a JSON type (NumPy scalars become Python numbers)."""
    return value.item() if hasattr(value, "item") else value


@functools.lru_cache(maxsize=256)
def _exposure_text(needed: int, equity: int, scale: int, lev_num: int, lev_den: int) -> str:
    """The detail of a buying-power refusal. A refused order is often resubmitted bar after
    bar with the same figures, so the texts are kept (a pure function of its arguments)."""
    return (f"exposure after fill {format_scaled(needed, scale)} > equity "
            f"{format_scaled(equity, scale)} x leverage {Fraction(lev_num, lev_den)}")
