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
from typing import Any, ClassVar, Protocol

from weltklassebot.model.enums import BUY, SELL, OrderType, TimeInForce
from weltklassebot.model.instrument import Instrument
from weltklassebot.model.records import Fill, Order
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


class OrderRouter(Protocol):
    """What the engine offers a context: the strategy never sees risk or the venue directly."""

    def submit(self, symbol: str, side: int, qty: int, order_type: OrderType,
               limit: int | None, stop: int | None, tif: TimeInForce, tag: str,
               reduce_only: bool) -> int | None: ...

    def cancel(self, symbol: str, order_id: int) -> bool: ...

    def open_orders(self, symbol: str) -> list[Order]: ...

    def position(self, symbol: str) -> int: ...

    def cash(self) -> int: ...

    def equity(self) -> int: ...

    def now_ns(self) -> int: ...

    def log(self, symbol: str, event: str, fields: dict[str, Any]) -> None: ...

    def series(self, symbol: str) -> SeriesSet: ...


class StrategyContext:
    """Everything a strategy may do for one symbol: orders, queries, conversions."""

    __slots__ = ("_router", "instrument", "symbol")

    def __init__(self, router: OrderRouter, instrument: Instrument) -> None:
        self._router = router
        self.instrument = instrument
        self.symbol = instrument.symbol

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
        # The order type from the prices given; a price must be positive (limit checked first).
        if limit_ticks is not None:
            if limit_ticks <= 0:
                raise ValueError(f"limit price must be positive, got {limit_ticks} ticks")
            order_type = _LIMIT if stop_ticks is None else _STOP_LIMIT
        else:
            order_type = _MARKET if stop_ticks is None else _STOP
        if stop_ticks is not None and stop_ticks <= 0:
            raise ValueError(f"stop price must be positive, got {stop_ticks} ticks")
        time_in_force = _TIF.get(tif) or TimeInForce(tif.lower())
        return self._router.submit(self.symbol, side, qty_ticks, order_type, limit_ticks,
                                   stop_ticks, time_in_force, tag, reduce_only)

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
        return self._router.cancel(self.symbol, order_id)

    def cancel_all(self) -> int:
        return sum(self._router.cancel(self.symbol, o.order_id) for o in self.open_orders)

    # -- queries ---------------------------------------------------------------------------
    @property
    def open_orders(self) -> list[Order]:
        return self._router.open_orders(self.symbol)

    @property
    def position_ticks(self) -> int:
        return self._router.position(self.symbol)

    @property
    def position(self) -> Decimal:
        return self.instrument.qty_decimal(self._router.position(self.symbol))

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
        share = Fraction(str(fraction)) if not isinstance(fraction, int) else Fraction(fraction)
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
