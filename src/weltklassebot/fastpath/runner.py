"""Plan, bound and run one fast-path backtest, and render its equity hash.

``available`` says whether the fast path implements a strategy and config at all; ``run``
checks the figures of this run against int64 before starting the kernel (and the kernel checks
what grows while it runs), raising ``FallBack`` whenever the engine is needed instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, TypedDict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from weltklassebot.config.model import BacktestConfig
from weltklassebot.core.rng import RandomStream
from weltklassebot.engine.backtest import ExecutionSettings
from weltklassebot.engine.equity_hash import (
    EquityHasher,
    fill_lines_text,
    format_scaled_array,
)
from weltklassebot.fastpath import kernels as k
from weltklassebot.fastpath.bars import (
    CAP_MAX,
    Bars,
    FallBack,
    derived,
    instrument_settings,
    volume_caps,
)
from weltklassebot.fastpath.stats import BarArrays, market_tape, run_stats
from weltklassebot.model.enums import Liquidity, OrderStatus, OrderType, TimeInForce
from weltklassebot.model.instrument import Instrument
from weltklassebot.model.records import Fill, Order
from weltklassebot.risk import RiskConfig
from weltklassebot.runs.backtest import execution_settings
from weltklassebot.strategy.builtin.donchian_breakout import DonchianBreakout
from weltklassebot.strategy.builtin.sma_cross import SmaCross
from weltklassebot.strategy.loader import StrategySpec

LIMIT = 1 << 62
"""Every product the kernel forms stays below this (half of int64's range: sums of two such
terms cannot wrap either)."""

RENDER_POINTS = 1 << 16
"""Equity lines are rendered and hashed this many at a time (a few MB of text)."""

_STRATEGIES: dict[type[Any], tuple[int, str, str]] = {
    SmaCross: (k.SMA_CROSS, "fast", "slow"),
    DonchianBreakout: (k.DONCHIAN, "entry", "exit"),
}
_PARAMETERS: dict[type[Any], frozenset[str]] = {
    SmaCross: frozenset({"fast", "slow", "qty", "fraction"}),
    DonchianBreakout: frozenset({"entry", "exit", "qty"}),
}
"""The parameters the kernel implements: a built-in that declares another one runs on the
engine until the kernel learns it."""
_AT_DEFAULT_ONLY: dict[type[Any], frozenset[str]] = {
    DonchianBreakout: frozenset({"fraction"}),
}
"""Parameters the kernel implements only at their default (sizing by fraction of equity is
compiled for sma_cross alone): a run that sets another value runs on the engine."""
TAGS = {k.TAG_NONE: "", k.TAG_ENTRY: "entry", k.TAG_EXIT: "exit",
        k.TAG_LONG_ENTRY: "long_entry", k.TAG_SHORT_ENTRY: "short_entry",
        k.TAG_LONG_EXIT: "long_exit", k.TAG_SHORT_EXIT: "short_exit"}
_TYPES = {k.MARKET: OrderType.MARKET, k.LIMIT: OrderType.LIMIT, k.STOP: OrderType.STOP,
          k.STOP_LIMIT: OrderType.STOP_LIMIT}
_STATUS = {k.FILLED: OrderStatus.FILLED, k.CANCELLED: OrderStatus.CANCELLED,
           k.EXPIRED: OrderStatus.EXPIRED, k.REJECTED: OrderStatus.REJECTED}
_REASONS = {k.R_NONE: "", k.R_CANCELLED: "cancelled_by_strategy", k.R_END: "end_of_data",
            k.R_BUYING_POWER: "insufficient_buying_power"}


class FastResult(TypedDict):
    """What one fast-path run gives: the summary's figures and statistics (the ``stats`` of
    summary.json, from the backtest's own code), the equity curve and the records.

    Money is in cash units, prices and quantities in ticks (as the engine's records).
    ``fill_table`` has the columns fill_id, order_id, ts, side, price, qty, fee, notional and
    liquidity (0 taker, 1 maker); ``order_table`` the closed orders in the order they closed
    (order_id, side, type, qty, limit, stop, submitted, active_from, filled, status, triggered,
    reason, closed, tag; codes as in ``fastpath.kernels``; ``records`` makes engine records).
    """

    equity_hash: str | None
    stats: dict[str, Any] | None
    fills: int
    orders: int
    denials: int
    denial_counts: dict[str, int]
    final_equity: int
    final_cash: int
    fees_paid: int
    bars: int
    symbol: str
    ts: np.ndarray
    equity: np.ndarray
    cash: np.ndarray
    fill_table: dict[str, np.ndarray]
    order_table: dict[str, np.ndarray]


def why_not(spec: StrategySpec, config: BacktestConfig) -> str | None:
    """Why the fast path does not run this strategy and config, or None when it does."""
    if spec.cls not in _STRATEGIES:
        return (f"strategy {spec.name} has no compiled fast path (only the built-ins "
                f"{', '.join(sorted(c.name for c in _STRATEGIES))} have one)")
    at_default = _AT_DEFAULT_ONLY.get(spec.cls, frozenset())
    unknown = sorted(set(spec.cls.params) - _PARAMETERS[spec.cls] - at_default)
    unknown += sorted(name for name in at_default
                      if Decimal(str(spec.params.get(name, spec.cls.params[name])))
                      != Decimal(str(spec.cls.params[name])))
    if unknown:
        return (f"strategy {spec.name}'s parameter {', '.join(unknown)} has no compiled fast "
                "path" + (" at that value" if set(unknown) & at_default else ""))
    if config.risk != RiskConfig():
        return ("[risk] limits are configured; the fast path does not implement the risk "
                "engine")
    return None


def available(spec: StrategySpec, config: BacktestConfig) -> bool:
    """True when the fast path implements this strategy and config. A run can still fall back
    on its data (several symbols, figures beyond int64): ``run`` raises ``FallBack`` then."""
    return why_not(spec, config) is None


@dataclass(frozen=True)
class _Plan:
    prm: np.ndarray
    instrument: Instrument
    interval: int
    execution: ExecutionSettings


def plan(spec: StrategySpec, config: BacktestConfig, bars: BarArrays) -> _Plan:
    """The kernel's parameters for this run, after every int64 bound was checked; raises
    ``FallBack`` when the fast path cannot run it exactly."""
    reason = why_not(spec, config)
    if reason is not None:
        raise FallBack(reason)
    if isinstance(bars, Bars) and instrument_settings(config.data) != bars.data:
        raise ValueError("the bars were prepared with another [data] section than this run's "
                         "config: prepare them again with this config")
    if bars.codes is not None or len(bars.instruments) != 1:
        raise FallBack(f"the snapshot holds {len(bars.instruments)} symbols; the fast path "
                       "runs one symbol")
    if not bool(np.isfinite(bars.volume).all()):
        raise FallBack("a volume is not a finite number; the engine decides what that means")
    ex = execution_settings(config)
    symbol, inst = next(iter(bars.instruments.items()))
    instrument = Instrument(symbol, inst.price_increment, inst.quantity_increment, ex.money)
    interval = bars.intervals[symbol]
    code, a_name, b_name = _STRATEGIES[spec.cls]
    a_window, b_window = int(spec.params[a_name]), int(spec.params[b_name])
    qty = instrument.qty_ticks(spec.params["qty"])
    if qty <= 0:
        raise FallBack("the strategy's qty is below one quantity increment: the engine "
                       "reports that")
    if a_window < 1 or b_window < 1:
        raise FallBack("window below 1: the engine reports that")
    fraction = Fraction(str(spec.params.get("fraction", 0)))
    if fraction < 0:
        raise FallBack("a negative fraction: the engine decides what that means")
    prm = np.zeros(k.P_SIZE, dtype=np.int64)
    values = _bounded(code, a_window, b_window, qty, fraction, bars, instrument, interval, ex)
    for index, value in values.items():
        prm[index] = value
    return _Plan(prm, instrument, interval, ex)


def _bounded(code: int, a_window: int, b_window: int, qty: int, fraction: Fraction,
             bars: BarArrays, instrument: Instrument, interval: int,
             ex: ExecutionSettings) -> dict[int, int]:
    """The parameter values, each bound on the kernel's products checked (module docstring of
    ``kernels``); ``FallBack`` names the first that does not hold."""
    n = len(bars)
    top = 1
    if n:
        for column in (bars.open, bars.high, bars.low, bars.close):
            top = max(top, abs(int(column.max())), abs(int(column.min())))
    top += 1  # a donchian stop sits one tick beyond the channel
    slip_buy, slip_sell, slip_den, slip_bound = 1, 1, 1, 1
    if ex.slippage_model == "fixed":
        bps = Fraction(ex.slippage_bps)
        slip_buy = 10_000 * bps.denominator + bps.numerator
        slip_sell = 10_000 * bps.denominator - bps.numerator
        slip_den = 10_000 * bps.denominator
    elif ex.slippage_model == "stochastic":
        max_milli = int(Fraction(ex.slippage_max_bps) * 1000)
        slip_buy, slip_sell, slip_den = 10_000_000 + max_milli, 10_000_000, 10_000_000
        slip_bound = max_milli + 1
    slip_code = {"none": 0, "fixed": 1, "stochastic": 2}[ex.slippage_model]
    fees = ex.fees
    taker = Fraction(fees.taker_bps) / 10_000 / fees.cash_step
    maker = Fraction(fees.maker_bps) / 10_000 / fees.cash_step
    leverage = Fraction(ex.leverage)
    vnum, vden, step = instrument.value_num, instrument.value_den, ex.money.step

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise FallBack(f"{what} could overflow int64 in the fast path; the engine computes "
                           "it exactly")

    # Products are formed in 128 bits where needed; what must fit are the operands the kernel
    # multiplies and every result it keeps.
    price = -(-(top * max(abs(slip_buy), abs(slip_sell))) // slip_den) + 1
    need(price < LIMIT and max(abs(slip_buy), abs(slip_sell)) < LIMIT, "the prices with slippage")
    bound = qty  # of the position and of any order
    if fraction:
        # Sized by equity: any quantity whose notional (four times over) stays far inside
        # int64 is allowed; the kernel stops at a larger one.
        bound = max(qty, min((LIMIT // 16 // step - 1) * vden // (4 * price * vnum),
                             LIMIT // (4 * vnum), CAP_MAX // 8))
    quantity = 4 * bound  # position + open orders + a new order, and some room
    need(quantity * vnum < LIMIT and quantity < CAP_MAX, f"a quantity of {bound} ticks")
    notional = (quantity * price * vnum // vden + 1) * step
    need(notional < LIMIT, f"a quantity of {bound} ticks at prices up to {price} ticks")
    fee = max((notional * abs(f.numerator) // f.denominator + 1) * step for f in (taker, maker))
    fee += fees.min_fee_units
    need(max(abs(taker.numerator), abs(maker.numerator)) < LIMIT and fee < LIMIT,
         "the fees of the largest notional")
    cash_limit = LIMIT // 4 - notional - fee
    ratio = instrument.notional_ratio
    if fraction:
        need(fraction.denominator * top * ratio.numerator < LIMIT
             and fraction.numerator * ratio.denominator < LIMIT, "the sizing by fraction")
    need(abs(ex.initial_cash) < cash_limit, "the initial cash")
    last = int(bars.ts.max()) if n else 0
    need(last + interval + ex.latency_ns + ex.jitter_ns < LIMIT, "the order times")
    need(ex.jitter_ns >= 0 and ex.latency_ns >= 0, "the latency")
    if code == k.SMA_CROSS:
        need(top * a_window * b_window < LIMIT, "the moving-average sums")
    for den in (vden, taker.denominator, maker.denominator, leverage.denominator, slip_den,
                slip_bound):
        need(den < LIMIT, "a denominator of the costs")
    need(leverage.numerator < LIMIT, "the leverage")
    return {
        k.P_STRATEGY: code, k.P_A: a_window, k.P_B: b_window, k.P_QTY: qty,
        k.P_INTERVAL: interval, k.P_CASH: ex.initial_cash,
        k.P_VNUM: vnum, k.P_VDEN: vden, k.P_STEP: step,
        k.P_TAKER_NUM: taker.numerator, k.P_TAKER_DEN: taker.denominator,
        k.P_MAKER_NUM: maker.numerator, k.P_MAKER_DEN: maker.denominator,
        k.P_MIN_FEE: fees.min_fee_units,
        k.P_SLIP: slip_code, k.P_SLIP_BUY: slip_buy, k.P_SLIP_SELL: slip_sell,
        k.P_SLIP_DEN: slip_den, k.P_SLIP_BOUND: slip_bound,
        k.P_DELAY: ex.latency_ns, k.P_JITTER: ex.jitter_ns,
        k.P_LEV_NUM: leverage.numerator, k.P_LEV_DEN: leverage.denominator,
        k.P_HAS_CAP: 0 if ex.participation is None else 1,
        k.P_QTY_LIMIT: bound, k.P_CASH_LIMIT: cash_limit,
        k.P_FRACTION_NUM: fraction.numerator, k.P_FRACTION_DEN: fraction.denominator,
        k.P_RATIO_NUM: ratio.numerator, k.P_RATIO_DEN: ratio.denominator,
    }


def stream_state(seed: int, name: str) -> np.ndarray:
    """A named stream's PCG64 state as the kernel's four uint64 words."""
    state = RandomStream(seed, name).state()["state"]
    s, inc = int(state["state"]), int(state["inc"])
    mask = (1 << 64) - 1
    return np.array([s >> 64, s & mask, inc >> 64, inc & mask], dtype=np.uint64)


def run(spec: StrategySpec, config: BacktestConfig, bars: BarArrays, *,
        with_hash: bool = True, with_stats: bool = True) -> FastResult:
    """One backtest of ``spec`` with ``config`` on ``bars`` (``prepare``'s, or a sweep's
    snapshot arrays of one symbol): the engine's fills, orders and equity curve, exactly, and
    the run's statistics. ``with_hash=False`` skips the equity hash, ``with_stats=False`` the
    statistics (None then).

    Raises ``FallBack`` when the engine must run it instead (see ``available`` and ``plan``).
    """
    planned = plan(spec, config, bars)
    prm = planned.prm
    ex = planned.execution
    n = len(bars)
    caps = (volume_caps(bars.volume, ex.participation, planned.instrument.quantity_increment)
            if ex.participation is not None else np.zeros(n, dtype=np.int64))
    status, equity, cash, fills, closed, state = run_tables(
        prm, bars, caps, stream_state(config.seed, "slippage"),
        stream_state(config.seed, "latency"))
    if status != k.OK:
        raise FallBack("the run's position, cash or fees grew beyond the fast path's int64 "
                       "bounds; the engine computes it exactly")
    fill_table = {name: fills[:, i] for i, name in enumerate(FILL_COLUMNS)}
    order_table = {name: closed[:, i] for i, name in enumerate(ORDER_COLUMNS)}
    symbol = planned.instrument.symbol
    denials = int(state[k.S_DENIALS])
    fees_paid = int(state[k.S_FEES])
    stats = None
    if with_stats:
        tape = derived(bars.close, "tape", lambda: market_tape(bars))
        stats = run_stats(fill_table=fill_table, symbol=symbol, ts=bars.ts, equity=equity,
                          bars=bars, money=ex.money, initial_cash=ex.initial_cash,
                          fees_paid=fees_paid, denials=denials,
                          periods_per_year=config.data.periods_per_year,
                          steps=getattr(bars, "steps", ()), tape=tape)
    return FastResult(
        equity_hash=(equity_hash(fill_table, bars.ts, equity, planned.instrument)
                     if with_hash else None),
        stats=stats, fills=len(fills), orders=len(closed), denials=denials,
        denial_counts={"insufficient_buying_power": denials} if denials else {},
        final_equity=int(equity[-1]) if n else int(ex.initial_cash),
        final_cash=int(state[k.S_CASH]), fees_paid=fees_paid, bars=n, symbol=symbol,
        ts=bars.ts, equity=equity, cash=cash, fill_table=fill_table, order_table=order_table)


FILL_COLUMNS = ("fill_id", "order_id", "ts", "side", "price", "qty", "fee", "notional",
                "liquidity")
ORDER_COLUMNS = ("order_id", "side", "type", "qty", "limit", "stop", "submitted",
                 "active_from", "filled", "status", "triggered", "reason", "closed", "tag")


def run_tables(prm: np.ndarray, bars: BarArrays, caps: np.ndarray, slip_state: np.ndarray,
               lat_state: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray,
                                               np.ndarray, np.ndarray]:
    """The kernel over all bars: tables grown whenever it asks for room, then the orders still
    resting at the end expired (in id order, at the last close event).

    Returns (status, equity, cash, fills, closed orders, state vector).
    """
    from weltklassebot.fastpath.compiled import kernel, rolling

    n = len(bars)
    ts, op, hi, lo, cl = (_ro(bars.ts), _ro(bars.open), _ro(bars.high), _ro(bars.low),
                          _ro(bars.close))
    caps = _ro(caps)
    if prm[k.P_STRATEGY] == k.DONCHIAN:
        extreme = rolling()
        channels = [extreme(hi, int(prm[k.P_A]), 1), extreme(lo, int(prm[k.P_A]), -1),
                    extreme(hi, int(prm[k.P_B]), 1), extreme(lo, int(prm[k.P_B]), -1)]
    else:
        channels = [np.zeros(0, dtype=np.int64)] * 4
    equity = np.empty(n, dtype=np.int64)
    cash = np.empty(n, dtype=np.int64)
    book = np.empty((4, k.B_COLS), dtype=np.int64)
    fills = np.empty((64, k.F_COLS), dtype=np.int64)
    closed = np.empty((64, k.C_COLS), dtype=np.int64)
    snapshot = np.empty(4, dtype=np.int64)
    wanted = np.zeros((2, 4), dtype=np.int64)
    st = np.zeros(k.S_SIZE, dtype=np.int64)
    st[k.S_CASH] = prm[k.P_CASH]
    st[k.S_NEXT_ORDER] = 1
    st[k.S_NEXT_FILL] = 1
    st[k.S_MARK_DEN] = 1
    st[k.S_HOW_FILLED] = k.FILLED * 16 + k.R_NONE
    st[k.S_HOW_CANCELLED] = k.CANCELLED * 16 + k.R_CANCELLED
    st[k.S_HOW_EXPIRED] = k.EXPIRED * 16 + k.R_END
    run_bars = kernel()
    at = 0
    while True:
        at = int(run_bars(prm, st, ts, op, hi, lo, cl, caps, slip_state, lat_state, *channels,
                          equity, cash, book, fills, closed, snapshot, wanted, at))
        if at >= n or st[k.S_STATUS] != k.OK:
            break
        resting = int(st[k.S_BOOK])
        fills = _room(fills, int(st[k.S_FILLS]) + resting)
        closed = _room(closed, int(st[k.S_CLOSED]) + resting + 2)
        book = _room(book, resting + 2)
        if snapshot.size < resting:
            snapshot = np.empty(2 * resting, dtype=np.int64)
    n_fills, n_closed, resting = (int(st[k.S_FILLS]), int(st[k.S_CLOSED]),
                                  int(st[k.S_BOOK]))
    if st[k.S_STATUS] == k.OK and resting:
        expired = np.empty((resting, k.C_COLS), dtype=np.int64)
        expired[:, :k.B_TRIG] = book[:resting, :k.B_TRIG]  # id .. filled
        expired[:, k.C_STATUS] = k.EXPIRED
        expired[:, k.C_TRIG] = book[:resting, k.B_TRIG]
        expired[:, k.C_REASON] = k.R_END
        expired[:, k.C_CLOSED] = st[k.S_NOW]
        expired[:, k.C_TAG] = book[:resting, k.B_TAG]
        closed = np.concatenate((closed[:n_closed], expired))
        n_closed += resting
        st[k.S_BOOK] = 0
    return (int(st[k.S_STATUS]), equity, cash, fills[:n_fills].copy(),
            closed[:n_closed].copy(), st)


def _room(table: np.ndarray, rows: int) -> np.ndarray:
    """``table`` with at least ``rows`` rows (a copy twice as large when it has fewer)."""
    if table.shape[0] >= rows:
        return table
    bigger = np.empty((max(rows, 2 * table.shape[0]), table.shape[1]), dtype=table.dtype)
    bigger[:table.shape[0]] = table
    return bigger


def _ro(values: np.ndarray) -> np.ndarray:
    """A read-only view: the kernel is compiled once, for read-only arrays (what a shared
    snapshot, e.g. from an object store, is)."""
    view = values.view()
    view.flags.writeable = False
    return view


def equity_hash(fill_table: dict[str, np.ndarray], ts: np.ndarray, equity: np.ndarray,
                instrument: Instrument) -> str:
    """The equity hash of docs/equity-hash.md from the arrays (the engine's text, byte for
    byte: the same renderers)."""
    from weltklassebot.fastpath.compiled import renderer

    hasher = EquityHasher()
    hasher.add_fills(fill_text(fill_table, instrument))
    scale = instrument.money.scale
    render = renderer()
    block = min(len(ts), RENDER_POINTS)
    out = np.empty(block * (23 + max(21, scale + 3)), dtype=np.uint8)
    for start in range(0, len(ts), RENDER_POINTS):
        size = render(_ro(ts[start:start + RENDER_POINTS]), equity[start:start + RENDER_POINTS],
                      scale, out)
        hasher.add_equity_text(out.data[:size])
    return hasher.hexdigest()


def fill_text(fill_table: dict[str, np.ndarray], instrument: Instrument) -> bytes:
    """The fill lines of the equity hash: ``fill_lines_text``'s Arrow rendering from columns;
    its per-record route where that one takes it (values beyond 2**62)."""
    n = fill_table["ts"].size
    if not n:
        return b""
    price_units = [int(p) * instrument.price_step for p in (fill_table["price"].min(),
                                                            fill_table["price"].max())]
    qty_units = [int(q) * instrument.qty_step for q in (fill_table["qty"].min(),
                                                        fill_table["qty"].max())]
    if max(price_units) >= LIMIT or max(qty_units) >= LIMIT or min(price_units) <= -LIMIT:
        records = fill_records(fill_table, instrument.symbol)
        return fill_lines_text(records, {instrument.symbol: instrument})
    money = instrument.money
    side = pa.array(fill_table["side"] > 0)
    columns = [
        pa.array(fill_table["ts"], type=pa.int64()).cast(pa.string()),
        pa.array(np.full(n, instrument.symbol, dtype=object), type=pa.string()),
        pc.if_else(side, "buy", "sell"),
        format_scaled_array(fill_table["price"] * instrument.price_step,
                            instrument.price_scale),
        format_scaled_array(fill_table["qty"] * instrument.qty_step, instrument.qty_scale),
        format_scaled_array(fill_table["fee"], money.scale),
        pa.array(fill_table["order_id"], type=pa.int64()).cast(pa.string()),
        pa.array(fill_table["fill_id"], type=pa.int64()).cast(pa.string()),
    ]
    lines = pc.binary_join_element_wise(*columns, ",")
    return _utf8_bytes(pc.binary_join_element_wise(lines, "", "\n"))


def _utf8_bytes(array: pa.Array) -> bytes:
    """The concatenated UTF-8 bytes of a string array, without building Python strings."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)
    start = int(offsets[array.offset])
    end = int(offsets[array.offset + len(array)])
    data: bytes = array.buffers()[2].slice(start, end - start).to_pybytes()
    return data


def fill_records(fill_table: dict[str, np.ndarray], symbol: str) -> list[Fill]:
    """The fills as the engine's ``Fill`` records."""
    rows = zip(*(fill_table[name].tolist() for name in FILL_COLUMNS), strict=True)
    return [Fill(fid, oid, ts, symbol, side, price, qty, fee, notional,
                 Liquidity.MAKER if liq == k.MAKER else Liquidity.TAKER)
            for fid, oid, ts, side, price, qty, fee, notional, liq in rows]


def order_records(order_table: dict[str, np.ndarray], symbol: str) -> list[Order]:
    """The closed orders as the engine's ``Order`` records, in the order they closed."""
    out = []
    for (oid, side, kind, qty, limit, stop, sub, act, filled, status, trig, reason, closed,
         tag) in zip(*(order_table[name].tolist() for name in ORDER_COLUMNS), strict=True):
        out.append(Order(oid, symbol, side, _TYPES[kind], qty,
                         None if limit == k.NONE else limit, None if stop == k.NONE else stop,
                         TimeInForce.GTC, sub, act, filled, _STATUS[status], bool(trig),
                         _REASONS[reason], closed, TAGS[tag], False))
    return out


def records(result: FastResult) -> tuple[list[Fill], list[Order]]:
    """The run's fills and closed orders as the engine's records (what a backtest writes to
    fills.parquet and orders.parquet)."""
    return (fill_records(result["fill_table"], result["symbol"]),
            order_records(result["order_table"], result["symbol"]))
