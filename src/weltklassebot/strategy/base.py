"""Strategy base class, the per-symbol context it acts through, and the bar it sees.

Prices in ``Bar`` and in order arguments ending in ``_ticks`` are integer ticks of the
instrument's price increment; plain ``price``/``qty`` arguments take human numbers
(``Decimal``, ``int`` or ``str``; floats are read via their shortest text) and are converted
exactly, half-even, to ticks.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any, ClassVar, NamedTuple, Protocol

from weltklassebot.model.enums import BUY, SELL, OrderType, TimeInForce
from weltklassebot.model.instrument import Instrument
from weltklassebot.model.records import Fill, Order, Trail
from weltklassebot.strategy.indicator_series import (
    ADXSeries,
    ATRSeries,
    BollingerSeries,
    EMASeries,
    IndicatorSeries,
    MACDSeries,
    ROCSeries,
    RSISeries,
    SMASeries,
    StdDevSeries,
    StochasticSeries,
    TrueRangeSeries,
    VWAPSeries,
    WMASeries,
    ZScoreSeries,
)
from weltklassebot.strategy.series import (
    ChangedSeries,
    CrossSeries,
    RollingMaxSeries,
    RollingMinSeries,
    RollingSumSeries,
    Series,
    SeriesSet,
)

Number = Decimal | int | str | float
_TIF = {t.value: t for t in TimeInForce}
_MARKET, _LIMIT, _STOP, _STOP_LIMIT = (OrderType.MARKET, OrderType.LIMIT, OrderType.STOP,
                                       OrderType.STOP_LIMIT)


class Bar:
    """The bar whose close event is being handled; one object per symbol, reused per bar."""

    __slots__ = ("close", "high", "index", "low", "open", "symbol", "ts_ns", "volume")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.index = -1
        self.ts_ns = 0
        self.open = 0
        self.high = 0
        self.low = 0
        self.close = 0
        self.volume = 0.0


class BracketIds(NamedTuple):
    """The order ids of a bracket: its entry, and its exits (None where not asked for)."""

    entry: int
    take_profit: int | None
    stop_loss: int | None


class Submitted(NamedTuple):
    """What a target order submitted: ``order_id`` (None when risk or buying power refused
    it, recorded as a denial), its side (+1 buy, -1 sell) and quantity in ticks."""

    order_id: int | None
    side: int
    qty_ticks: int


class PositionCell(Protocol):
    """A symbol's position as the engine keeps it, read (never written) by its context."""

    @property
    def qty(self) -> int: ...


class OrderRouter(Protocol):
    """What the engine offers a context: the strategy never sees risk or the venue directly."""

    def submit(self, symbol: str, side: int, qty: int, order_type: OrderType,
               limit: int | None, stop: int | None, tif: TimeInForce, tag: str,
               reduce_only: bool) -> int | None: ...

    def submit_oco(self, symbol: str, side: int, qty: int, limit: int, stop: int,
                   tif: TimeInForce, tag: str, reduce_only: bool) -> tuple[int, int] | None: ...

    def submit_bracket(self, symbol: str, side: int, qty: int, order_type: OrderType,
                       limit: int | None, stop: int | None, tif: TimeInForce, tag: str,
                       take_profit: int | None, stop_loss: int | None,
                       trail: Trail | None) -> tuple[int, int | None, int | None] | None: ...

    def submit_trailing(self, symbol: str, side: int, qty: int, stop: int, trail: Trail,
                        tif: TimeInForce, tag: str, reduce_only: bool) -> int | None: ...

    def last_price(self, symbol: str) -> int | None: ...

    def fit_buying_power(self, symbol: str, side: int, qty: int) -> int: ...

    def context_of(self, symbol: str) -> StrategyContext: ...

    @property
    def shared(self) -> dict[str, Any]: ...

    @property
    def symbols(self) -> list[str]: ...

    def cancel(self, symbol: str, order_id: int) -> bool: ...

    def open_orders(self, symbol: str) -> list[Order]: ...

    def position(self, symbol: str) -> int: ...

    def position_cell(self, symbol: str) -> PositionCell: ...

    def cash(self) -> int: ...

    def equity(self) -> int: ...

    def now_ns(self) -> int: ...

    def log(self, symbol: str, event: str, fields: dict[str, Any]) -> None: ...

    def series(self, symbol: str) -> SeriesSet: ...


class StrategyContext:
    """Everything a strategy may do for one symbol: orders, queries, conversions."""

    __slots__ = ("_open_orders", "_position", "_route_cancel", "_route_submit", "_router",
                 "instrument", "symbol")

    def __init__(self, router: OrderRouter, instrument: Instrument) -> None:
        self._router = router
        self.instrument = instrument
        self.symbol = instrument.symbol
        # The router's calls an order-heavy strategy makes about once a bar, bound once.
        self._route_submit = router.submit
        self._route_cancel = router.cancel
        self._open_orders = router.open_orders
        self._position = router.position_cell(instrument.symbol)

    # -- the run's other symbols -------------------------------------------------------------
    @property
    def symbols(self) -> tuple[str, ...]:
        """Every symbol of the run, sorted (the order of close events at an instant)."""
        return tuple(self._router.symbols)

    def context(self, symbol: str) -> StrategyContext:
        """The context of another symbol of the run: its orders, position and conversions, for
        decisions across symbols (an order placed through it is that symbol's order, placed
        now, on the event clock)."""
        if symbol not in self._router.symbols:
            raise KeyError(f"symbol {symbol!r} is not in this run (it has "
                           f"{', '.join(self._router.symbols)})")
        return self._router.context_of(symbol)

    @property
    def shared(self) -> dict[str, Any]:
        """One dict for the strategy instances of every symbol of the run (each symbol has its
        own instance): where they leave what decisions across symbols need. The strategy owns
        what is in it; the engine does not save it: ``load`` rebuilds it."""
        return self._router.shared

    # -- orders ----------------------------------------------------------------------------
    def buy(self, qty: Number, *, limit: Number | None = None, stop: Number | None = None,
            tif: str = "gtc", tag: str = "", reduce_only: bool = False) -> int | None:
        """Submit a buy; market unless ``limit``/``stop`` given. Returns the order id or None."""
        return self._submit(BUY, qty, limit, stop, tif, tag, reduce_only)

    def sell(self, qty: Number, *, limit: Number | None = None, stop: Number | None = None,
             tif: str = "gtc", tag: str = "", reduce_only: bool = False) -> int | None:
        """Submit a sell; market unless ``limit``/``stop`` given. Returns the order id or None."""
        return self._submit(SELL, qty, limit, stop, tif, tag, reduce_only)

    def submit_ticks(self, side: int, qty_ticks: int, *, limit_ticks: int | None = None,
                     stop_ticks: int | None = None, tif: str = "gtc", tag: str = "",
                     reduce_only: bool = False) -> int | None:
        """Submit with quantities and prices already in integer ticks (no conversion)."""
        if side != BUY and side != SELL:
            raise ValueError("side must be +1 (buy) or -1 (sell)")
        if qty_ticks <= 0:
            raise ValueError(f"order quantity must be positive, got {qty_ticks} ticks")
        return self._route_submit(self.symbol, side, qty_ticks,
                                  _order_type(limit_ticks, stop_ticks), limit_ticks, stop_ticks,
                                  _tif(tif), tag, reduce_only)

    def _submit(self, side: int, qty: Number, limit: Number | None, stop: Number | None,
                tif: str, tag: str, reduce_only: bool) -> int | None:
        inst = self.instrument
        return self.submit_ticks(
            side,
            inst.qty_ticks(qty),
            limit_ticks=None if limit is None else inst.price_ticks(limit),
            stop_ticks=None if stop is None else inst.price_ticks(stop),
            tif=tif,
            tag=tag,
            reduce_only=reduce_only,
        )

    def cancel(self, order_id: int) -> bool:
        """Cancel an open order at once; False if it is no longer open."""
        return self._route_cancel(self.symbol, order_id)

    def cancel_all(self) -> int:
        return sum(self._router.cancel(self.symbol, o.order_id) for o in self.open_orders)

    # -- linked orders (docs/fill-model.md: one-cancels-other, brackets, trailing stops) -----
    def buy_bracket(self, qty: Number, *, take_profit: Number | None = None,
                    stop_loss: Number | None = None, limit: Number | None = None,
                    stop: Number | None = None, trail_distance: Number | None = None,
                    trail_fraction: Number | None = None, tif: str = "gtc",
                    tag: str = "") -> BracketIds | None:
        """Buy (market, or at ``limit``/``stop``) with exits that rest once the entry fills:
        a take-profit sell limit and a stop-loss sell stop, one-cancels-other, for what the
        entry filled. ``trail_distance``/``trail_fraction`` make the stop-loss trail (without
        ``stop_loss`` it starts that far below the entry's fill price). None when refused."""
        return self._bracket(BUY, qty, take_profit, stop_loss, limit, stop, trail_distance,
                             trail_fraction, tif, tag)

    def sell_bracket(self, qty: Number, *, take_profit: Number | None = None,
                     stop_loss: Number | None = None, limit: Number | None = None,
                     stop: Number | None = None, trail_distance: Number | None = None,
                     trail_fraction: Number | None = None, tif: str = "gtc",
                     tag: str = "") -> BracketIds | None:
        """Sell with a take-profit buy limit below and a stop-loss buy stop above (the mirror
        of ``buy_bracket``)."""
        return self._bracket(SELL, qty, take_profit, stop_loss, limit, stop, trail_distance,
                             trail_fraction, tif, tag)

    def buy_oco(self, qty: Number, *, limit: Number, stop: Number, tif: str = "gtc",
                tag: str = "", reduce_only: bool = False) -> tuple[int, int] | None:
        """A buy limit and a buy stop as one-cancels-other: a fill of either takes the same
        quantity from the other. Returns (limit id, stop id), or None when refused."""
        return self._oco(BUY, qty, limit, stop, tif, tag, reduce_only)

    def sell_oco(self, qty: Number, *, limit: Number, stop: Number, tif: str = "gtc",
                 tag: str = "", reduce_only: bool = False) -> tuple[int, int] | None:
        """A sell limit (take profit, above) and a sell stop (stop loss, below) as
        one-cancels-other: the usual exit of a long position."""
        return self._oco(SELL, qty, limit, stop, tif, tag, reduce_only)

    def buy_trailing_stop(self, qty: Number, *, distance: Number | None = None,
                          fraction: Number | None = None, stop: Number | None = None,
                          tag: str = "", reduce_only: bool = False) -> int | None:
        """A buy stop above the price that follows each bar's low down by ``distance`` (a
        price) or ``fraction`` (of the price), never up: the exit of a short. It starts at
        ``stop``, or that far above the last close."""
        return self._trailing(BUY, qty, distance, fraction, stop, tag, reduce_only)

    def sell_trailing_stop(self, qty: Number, *, distance: Number | None = None,
                           fraction: Number | None = None, stop: Number | None = None,
                           tag: str = "", reduce_only: bool = False) -> int | None:
        """A sell stop below the price that follows each bar's high up by ``distance`` or
        ``fraction``, never down: the exit of a long that lets profits run."""
        return self._trailing(SELL, qty, distance, fraction, stop, tag, reduce_only)

    def _trail(self, distance: Number | None, fraction: Number | None) -> Trail:
        if (distance is None) == (fraction is None):
            raise ValueError("a trailing stop needs exactly one of distance= or fraction=")
        if distance is not None:
            ticks = self.instrument.price_ticks(distance)
            if ticks <= 0:
                raise ValueError(f"trail distance must be at least one price increment, got "
                                 f"{distance}")
            return Trail(distance=ticks)
        assert fraction is not None
        share = _fraction(fraction)
        if not 0 < share < 1:
            raise ValueError(f"trail fraction must be between 0 and 1, got {fraction}")
        return Trail(fraction=share)

    def _bracket(self, side: int, qty: Number, take_profit: Number | None,
                 stop_loss: Number | None, limit: Number | None, stop: Number | None,
                 trail_distance: Number | None, trail_fraction: Number | None, tif: str,
                 tag: str) -> BracketIds | None:
        inst = self.instrument
        trail = (None if trail_distance is None and trail_fraction is None
                 else self._trail(trail_distance, trail_fraction))
        if take_profit is None and stop_loss is None and trail is None:
            raise ValueError("a bracket needs take_profit=, stop_loss= or a trail")
        qty_ticks = _positive(inst.qty_ticks(qty), "order quantity")
        limit_ticks = None if limit is None else inst.price_ticks(limit)
        stop_ticks = None if stop is None else inst.price_ticks(stop)
        ids = self._router.submit_bracket(
            self.symbol, side, qty_ticks, _order_type(limit_ticks, stop_ticks), limit_ticks,
            stop_ticks, _tif(tif), tag,
            None if take_profit is None else _positive(inst.price_ticks(take_profit),
                                                       "take-profit price"),
            None if stop_loss is None else _positive(inst.price_ticks(stop_loss),
                                                     "stop-loss price"),
            trail)
        return None if ids is None else BracketIds(*ids)

    def _oco(self, side: int, qty: Number, limit: Number, stop: Number, tif: str, tag: str,
             reduce_only: bool) -> tuple[int, int] | None:
        inst = self.instrument
        return self._router.submit_oco(
            self.symbol, side, _positive(inst.qty_ticks(qty), "order quantity"),
            _positive(inst.price_ticks(limit), "limit price"),
            _positive(inst.price_ticks(stop), "stop price"), _tif(tif), tag, reduce_only)

    def _trailing(self, side: int, qty: Number, distance: Number | None,
                  fraction: Number | None, stop: Number | None, tag: str,
                  reduce_only: bool) -> int | None:
        trail = self._trail(distance, fraction)
        if stop is None:
            last = self._router.last_price(self.symbol)
            if last is None:
                raise ValueError("a trailing stop without stop= starts from the last close: "
                                 "submit it from on_bar, or give stop=")
            start = max(1, trail.level(side, last))
        else:
            start = _positive(self.instrument.price_ticks(stop), "stop price")
        return self._router.submit_trailing(
            self.symbol, side, _positive(self.instrument.qty_ticks(qty), "order quantity"),
            start, trail, TimeInForce.GTC, tag, reduce_only)

    # -- target orders: trade to a position, not by a quantity -------------------------------
    def order_target(self, qty: Number, *, limit: Number | None = None,
                     tag: str = "") -> Submitted | None:
        """Trade toward a signed target position of ``qty`` (negative: short).

        What is already under way counts: the position plus this symbol's open market and
        limit orders that are not reduce-only. Stops (which may never trigger), brackets'
        exits and other reduce-only orders protect a position rather than build it. The
        order is a market order (or a limit at ``limit``) for the difference, rounded toward
        zero to the quantity increment, and cut to what buying power allows when it adds to
        the exposure. None when nothing is to be
        done: at the target already, or less than one increment (or no buying power) left.
        """
        value = _fraction(qty) / Fraction(self.instrument.quantity_increment)
        return self._to_target(_toward_zero(value), limit, tag)

    def order_target_value(self, value: Number, *, limit: Number | None = None,
                           price: Number | None = None, tag: str = "") -> Submitted | None:
        """Trade toward a position worth ``value`` in the quote currency (negative: short),
        at ``price`` (default: ``limit``, else the last close); as ``order_target``."""
        money = _fraction(value) * 10 ** self.instrument.money.scale
        return self._to_target(self._qty_for_money(money, price, limit), limit, tag)

    def order_target_fraction(self, fraction: Number, *, limit: Number | None = None,
                              price: Number | None = None, tag: str = "") -> Submitted | None:
        """Trade toward a position worth ``fraction`` of equity (``0.5``: half long, ``-1``:
        fully short, ``0``: flat); as ``order_target_value``."""
        money = _fraction(fraction) * self._router.equity()
        return self._to_target(self._qty_for_money(money, price, limit), limit, tag)

    def _qty_for_money(self, money: Fraction, price: Number | None,
                       limit: Number | None) -> int:
        reference = price if price is not None else limit
        if reference is not None:
            ticks = _positive(self.instrument.price_ticks(reference), "price")
        else:
            last = self._router.last_price(self.symbol)
            if last is None:
                raise ValueError("a target value or fraction is converted at the last close: "
                                 "submit it from on_bar, or give price=")
            ticks = last
        return _toward_zero(money / (ticks * self.instrument.notional_ratio))

    def _to_target(self, target: int, limit: Number | None, tag: str) -> Submitted | None:
        router = self._router
        symbol = self.symbol
        working = router.position(symbol) + sum(
            o.side * o.remaining for o in router.open_orders(symbol)
            if not o.reduce_only and (o.type is _MARKET or o.type is _LIMIT))
        delta = target - working
        if delta == 0:
            return None
        side = BUY if delta > 0 else SELL
        qty = router.fit_buying_power(symbol, side, abs(delta))
        if qty <= 0:
            return None
        limit_ticks = None if limit is None else _positive(
            self.instrument.price_ticks(limit), "limit price")
        order_id = router.submit(symbol, side, qty, _MARKET if limit_ticks is None else _LIMIT,
                                 limit_ticks, None, TimeInForce.GTC, tag, False)
        return Submitted(order_id, side, qty)

    # -- queries ---------------------------------------------------------------------------
    @property
    def open_orders(self) -> list[Order]:
        return self._open_orders(self.symbol)

    @property
    def position_ticks(self) -> int:
        return self._position.qty

    @property
    def position(self) -> Decimal:
        return self.instrument.qty_decimal(self._position.qty)

    @property
    def cash(self) -> Decimal:
        return self.instrument.money.decimal(self._router.cash())

    @property
    def equity(self) -> Decimal:
        return self.instrument.money.decimal(self._router.equity())

    def qty_for_fraction(self, fraction: Number, price_ticks: int) -> int:
        """The largest quantity (ticks) whose value at ``price_ticks`` is at most ``fraction``
        of equity: rounded down to the quantity increment, never up, so the order stays within
        what the fraction allows (fees come on top). 0 when even one increment is more."""
        share = _fraction(fraction)
        if share <= 0 or price_ticks <= 0:
            return 0
        per_tick = price_ticks * self.instrument.notional_ratio  # money units per qty tick
        return max(0, int(self._router.equity() * share / per_tick))

    @property
    def now_ns(self) -> int:
        return self._router.now_ns()

    def price(self, ticks: int) -> Decimal:
        return self.instrument.price_decimal(ticks)

    def ticks(self, price: Number) -> int:
        return self.instrument.price_ticks(price)

    def log(self, event: str, **fields: Any) -> None:
        self._router.log(self.symbol, event, fields)

    # -- engine-computed series (declare in on_start) ----------------------------------------
    def rolling_sum(self, field: str, window: int) -> RollingSumSeries:
        """Exact sum of the last ``window`` values of ``field`` (ticks), computed by the engine."""
        series = RollingSumSeries(field, window)
        self._router.series(self.symbol).add(series)
        return series

    def cross(self, a: RollingSumSeries, b: RollingSumSeries) -> CrossSeries:
        """+1/-1 at bars where the mean of ``a`` crosses above/below the mean of ``b``, else 0."""
        series = CrossSeries(a, b)
        self._router.series(self.symbol).add(series)
        return series

    def rolling_max(self, field: str, window: int) -> RollingMaxSeries:
        """Highest ``field`` (ticks) of the last ``window`` bars, computed by the engine; before
        ``window`` bars the highest so far (``ready`` is False until the window is full)."""
        series = RollingMaxSeries(field, window)
        self._router.series(self.symbol).add(series)
        return series

    def rolling_min(self, field: str, window: int) -> RollingMinSeries:
        """Lowest ``field`` (ticks) of the last ``window`` bars, computed by the engine."""
        series = RollingMinSeries(field, window)
        self._router.series(self.symbol).add(series)
        return series

    def changed(self, *series: Series) -> ChangedSeries:
        """1 at bars where any of ``series`` (declared before) changed value or readiness since
        the bar before, else 0: a wake hint for decisions made from those values only."""
        handle = ChangedSeries(series)
        self._router.series(self.symbol).add(handle)
        return handle

    def wake_on(self, series: Series) -> None:
        """Call ``on_bar`` only at bars where ``series`` is non-zero (an optimisation hint),
        and at a bar where something happened to this symbol's orders or position since the
        last call that the strategy did not do itself: a fill, a refused or clipped order, an
        order triggered or closed by the venue, orders the risk limits placed.

        Fills, accounting and equity still happen at every bar; ``on_fill`` is unaffected.
        May be called again at any time (in ``on_bar`` too): the engine follows the latest
        series from the next bar on.
        """
        self._router.series(self.symbol).wake = series

    # -- engine-computed indicators (declare in on_start; docs/indicators.md) ----------------
    # Each equals the incremental indicator of weltklassebot.indicators of the same name, to
    # the bit; ``value`` / ``ready`` (and the named outputs) are the current bar's.

    def _declare(self, handle: SMASeries | IndicatorSeries) -> None:
        declared = self._router.series(self.symbol)
        for part in handle.parts():
            declared.add(part)

    def sma(self, field: str, window: int) -> SMASeries:
        """Simple moving average of ``field``; ``.total`` is the exact sum and ``.sums`` the
        rolling-sum series to pass to ``cross`` (declared with it)."""
        handle = SMASeries(field, window)
        self._declare(handle)
        return handle

    def ema(self, field: str, window: int) -> EMASeries:
        """Exponential moving average of ``field``, seeded with the first ``window`` values'
        mean."""
        handle = EMASeries(field, window)
        self._declare(handle)
        return handle

    def wma(self, field: str, window: int) -> WMASeries:
        """Linearly weighted moving average of ``field``."""
        handle = WMASeries(field, window)
        self._declare(handle)
        return handle

    def rsi(self, field: str = "close", window: int = 14) -> RSISeries:
        """Wilder's RSI of ``field``."""
        handle = RSISeries(field, window)
        self._declare(handle)
        return handle

    def roc(self, field: str = "close", window: int = 10) -> ROCSeries:
        """Rate of change of ``field`` over ``window`` bars, in percent."""
        handle = ROCSeries(field, window)
        self._declare(handle)
        return handle

    def stddev(self, field: str = "close", window: int = 20) -> StdDevSeries:
        """Population standard deviation of ``field`` over ``window`` bars."""
        handle = StdDevSeries(field, window)
        self._declare(handle)
        return handle

    def zscore(self, field: str = "close", window: int = 20) -> ZScoreSeries:
        """Z-score of ``field`` within its last ``window`` bars."""
        handle = ZScoreSeries(field, window)
        self._declare(handle)
        return handle

    def bollinger(self, field: str = "close", window: int = 20,
                  k: float = 2.0) -> BollingerSeries:
        """Bollinger bands of ``field``: ``.upper``, ``.middle``, ``.lower``."""
        handle = BollingerSeries(field, window, k)
        self._declare(handle)
        return handle

    def macd(self, field: str = "close", fast: int = 12, slow: int = 26,
             signal: int = 9) -> MACDSeries:
        """MACD of ``field``: ``.macd``, ``.signal``, ``.histogram``."""
        handle = MACDSeries(field, fast, slow, signal)
        self._declare(handle)
        return handle

    def true_range(self) -> TrueRangeSeries:
        """True range of each bar in exact ticks."""
        handle = TrueRangeSeries()
        self._declare(handle)
        return handle

    def atr(self, window: int = 14) -> ATRSeries:
        """Average true range, Wilder's smoothing."""
        handle = ATRSeries(window)
        self._declare(handle)
        return handle

    def stochastic(self, fastk: int = 14, slowk: int = 3, slowd: int = 3) -> StochasticSeries:
        """Stochastic oscillator: ``.k`` (slow %K) and ``.d``."""
        handle = StochasticSeries(fastk, slowk, slowd)
        self._declare(handle)
        return handle

    def adx(self, window: int = 14) -> ADXSeries:
        """Wilder's ADX: ``.adx``, ``.plus_di``, ``.minus_di``."""
        handle = ADXSeries(window)
        self._declare(handle)
        return handle

    def vwap(self, period_ns: int | None = None, offset_ns: int = 0) -> VWAPSeries:
        """Volume-weighted average price per session (``period_ns``: e.g. a UTC day)."""
        handle = VWAPSeries(period_ns, offset_ns)
        self._declare(handle)
        return handle


def _fraction(value: Number) -> Fraction:
    """A human number as an exact fraction: a float by its shortest text, a text as a decimal
    or a ratio ("0.25", "1/3")."""
    return Fraction(value) if isinstance(value, int) else Fraction(str(value))


def _order_type(limit_ticks: int | None, stop_ticks: int | None) -> OrderType:
    """The order type the prices given make; a price must be positive (limit checked first)."""
    if limit_ticks is not None:
        if limit_ticks <= 0:
            raise ValueError(f"limit price must be positive, got {limit_ticks} ticks")
        order_type = _LIMIT if stop_ticks is None else _STOP_LIMIT
    else:
        order_type = _MARKET if stop_ticks is None else _STOP
    if stop_ticks is not None and stop_ticks <= 0:
        raise ValueError(f"stop price must be positive, got {stop_ticks} ticks")
    return order_type


def _toward_zero(value: Fraction) -> int:
    return value.numerator // value.denominator if value >= 0 else -(
        -value.numerator // value.denominator)


def _positive(ticks: int, what: str) -> int:
    if ticks <= 0:
        raise ValueError(f"{what} must be positive, got {ticks} ticks")
    return ticks


def _tif(text: str) -> TimeInForce:
    return _TIF.get(text) or TimeInForce(text.lower())


class Strategy:
    """Base class: override the hooks you need. ``params`` declares names and defaults.

    Lifecycle: ``on_start`` once per symbol, ``on_bar`` at each bar's close event, ``on_fill``
    after each fill is booked, ``on_stop`` at the end of the data.
    """

    name: ClassVar[str] = "strategy"
    version: ClassVar[str] = "0"
    params: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, **params: Any) -> None:
        self.p = dict(params)

    def validate(self) -> None:
        """Raise ``ValueError`` for parameter combinations that make no sense."""

    def on_start(self, ctx: StrategyContext) -> None:
        """Called once before the first bar."""

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        """Called at the close event of every bar of this symbol."""

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> None:
        """Called after a fill of one of this strategy's orders has been booked."""

    def on_stop(self, ctx: StrategyContext) -> None:
        """Called once after the last bar."""

    # -- saved state: how a run continues after a restart -------------------------------------

    def save(self, ctx: StrategyContext) -> dict[str, Any] | None:
        """Plain data (JSON types) from which ``load`` rebuilds this instance mid-run.

        ``None`` (the default) means the strategy has no save/load hooks: a run is then
        restored by re-running it from the start of the feed to the saved cursor, with the
        re-run's state checked against the saved one (docs/strategy-api.md, Saved state).
        """
        return None

    def load(self, ctx: StrategyContext, data: dict[str, Any]) -> None:
        """Rebuild from ``save``'s data instead of ``on_start``: declare the same engine
        series in the same order (the engine restores their values), restore the fields."""
        raise NotImplementedError(f"strategy {self.name} has no load hook")

    @classmethod
    def has_saved_state(cls) -> bool:
        """True when the class implements both hooks."""
        return cls.save is not Strategy.save and cls.load is not Strategy.load
