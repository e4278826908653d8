"""Engine-computed forms of the indicators (``ctx.sma(...)``, ``ctx.rsi(...)``, ...).

Each handle owns one incremental indicator of ``weltklassebot.indicators`` and lets the engine
drive it: a chunk of bars goes through the indicator's vectorised ``update_many``, a single bar
(a live step) through plain ``update`` with Python numbers, and the kernel state the engine
saves is the indicator's own ``state()``. So the engine-computed values are the incremental
ones, to the bit, however the bars were cut into chunks. As with every series, ``value`` and
``ready`` are the current bar's (the strategy never sees the arrays, so it cannot look ahead).

A multi-output indicator (Bollinger, MACD, Stochastic, ADX) registers one extra series per
further output right after its own, so the engine sets, saves and restores every output; the
handle's named fields (``bb.upper``, ``macd.signal``, ...) read them.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import numpy as np

from weltklassebot.indicators import (
    ADX,
    ATR,
    EMA,
    MACD,
    ROC,
    RSI,
    VWAP,
    WMA,
    Bollinger,
    StdDev,
    Stochastic,
    TrueRange,
    ZScore,
)
from weltklassebot.strategy.series import RollingSumSeries, Series

PRICE_FIELDS = ("open", "high", "low", "close")
_INT64_SAFE = 1 << 62


class _Indicator(Protocol):
    @property
    def value(self) -> Any: ...

    @property
    def ready(self) -> bool: ...

    def update(self, *args: Any, **kwargs: Any) -> Any: ...

    def update_many(self, *args: Any, **kwargs: Any) -> tuple[Any, np.ndarray]: ...

    def state(self) -> dict[str, Any]: ...

    def load_state(self, state: dict[str, Any]) -> None: ...


def _price_field(field: str) -> str:
    if field not in PRICE_FIELDS:
        raise ValueError(f"field must be one of {', '.join(PRICE_FIELDS)}, not {field!r}")
    return field


def _one(value: Any) -> np.ndarray:
    """A single bar's value as a one-element column (int64, object for huge ints, float64)."""
    if isinstance(value, int):
        return np.array([value], dtype=np.int64 if abs(value) < _INT64_SAFE else object)
    return np.array([value], dtype=np.float64)


class OutputSeries(Series):
    """A further output of a multi-output indicator series (e.g. Bollinger's upper band). It is
    computed together with that series, which is declared just before it."""

    __slots__ = ("_last", "name", "of")

    def __init__(self, of: str, name: str) -> None:
        super().__init__()
        self.of = of
        self.name = name
        self._last: tuple[np.ndarray, np.ndarray] = (np.zeros(0), np.zeros(0, dtype=bool))

    def compute(self, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return self._last

    def kernel_state(self) -> dict[str, Any]:
        return {"kind": "output", "of": self.of, "name": self.name}

    def load_kernel_state(self, state: dict[str, Any]) -> None:
        if (state.get("kind"), state.get("of"), state.get("name")) != ("output", self.of,
                                                                        self.name):
            raise ValueError(f"saved series {state.get('kind')} is not output {self.name} of "
                             f"{self.of}: the strategy declared other series")


class IndicatorSeries(Series):
    """An incremental indicator driven by the engine from the bar columns ``inputs``."""

    __slots__ = ("_inputs", "_outputs", "_primary", "indicator")
    kind: ClassVar[str] = "indicator"

    def __init__(self, indicator: _Indicator, inputs: tuple[str, ...],
                 outputs: tuple[str, ...] = (), primary: str = "value") -> None:
        super().__init__()
        self.indicator = indicator
        self.value = indicator.value
        self._inputs = inputs
        self._primary = primary
        self._outputs = {name: OutputSeries(self.kind, name) for name in outputs}

    def parts(self) -> list[Series]:
        """The series to register, in order: this one, then one per further output."""
        return [self, *self._outputs.values()]

    def output(self, name: str) -> OutputSeries:
        """The series of one further output (to pass to ``wake_on``, say)."""
        return self._outputs[name]

    def compute(self, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        missing = [name for name in self._inputs if name not in columns]
        if missing:
            raise RuntimeError(
                f"the {self.kind} series needs the bar column(s) {', '.join(missing)}, which "
                "this engine does not pass to series; update the incremental indicator from "
                "on_bar instead")
        cols = [columns[name] for name in self._inputs]
        indicator = self.indicator
        if cols[0].size == 1:
            # One bar (a live step): plain Python numbers through update, no array set-up.
            indicator.update(*[c.tolist()[0] for c in cols])
            ready = np.array([indicator.ready])
            for name, child in self._outputs.items():
                child._last = (_one(getattr(indicator, name)), ready)
            return _one(indicator.value), ready
        result, ready = indicator.update_many(*cols)
        if isinstance(result, dict):
            for name, child in self._outputs.items():
                child._last = (result[name], ready)
            return result[self._primary], ready
        return result, ready

    def kernel_state(self) -> dict[str, Any]:
        return {"kind": self.kind, "inputs": list(self._inputs),
                "state": self.indicator.state()}

    def load_kernel_state(self, state: dict[str, Any]) -> None:
        if (state.get("kind"), state.get("inputs")) != (self.kind, list(self._inputs)):
            raise ValueError(f"saved series {state.get('kind')}({state.get('inputs')}) is not "
                             f"{self.kind}({list(self._inputs)}): the strategy declared other "
                             "series")
        self.indicator.load_state(state["state"])


class _SumFeed(RollingSumSeries):
    """The exact rolling sums under an ``SMASeries``: a plain rolling-sum series (usable with
    ``ctx.cross``) that keeps its last result for the average computed from it."""

    __slots__ = ("last", "last_one")

    def __init__(self, field: str, window: int) -> None:
        super().__init__(field, window)
        self.last_one: tuple[Any, bool] | None = None  # this bar's, when stepped one bar

    def compute(self, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        self.last = super().compute(columns)
        self.last_one = None
        return self.last

    def one_value(self, value: int) -> tuple[int, bool]:
        self.last_one = result = RollingSumSeries.one_value(self, value)
        return result


class SMASeries(Series):
    """Simple moving average of a price field: ``value`` = sum / window (0.0 until ready),
    ``total`` the exact integer sum, ``sums`` the exact rolling-sum series itself (declared
    just before: pass it to ``ctx.cross`` for exact crossings)."""

    __slots__ = ("field", "sums", "window")

    def __init__(self, field: str, window: int) -> None:
        super().__init__()
        self.sums: RollingSumSeries = _SumFeed(_price_field(field), window)
        self.field = field
        self.window = window

    def parts(self) -> list[Series]:
        return [self.sums, self]

    @property
    def total(self) -> int:
        return int(self.sums.value)

    def one(self, row: dict[str, Any]) -> tuple[Any, bool]:
        assert isinstance(self.sums, _SumFeed)
        last = self.sums.last_one
        if last is None:  # the sums were stepped as a chunk
            values, readiness = self.compute({})
            return float(values[0]), bool(readiness[0])
        total, ready = last
        return (float(total) / self.window if ready else 0.0), ready

    def compute(self, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        assert isinstance(self.sums, _SumFeed)
        if self.sums.last_one is not None:  # the sums were stepped one bar: this bar alone
            one_value, one_ready = self.one(columns)
            return np.array([one_value]), np.array([one_ready])
        sums, ready = self.sums.last
        if sums.size == 1:
            value = float(sums.tolist()[0]) / self.window if ready[0] else 0.0
            return np.array([value]), ready
        if sums.dtype == object:
            as_float = np.array([float(v) for v in sums.tolist()], dtype=np.float64)
        else:
            as_float = sums.astype(np.float64)
        return np.where(ready, as_float / self.window, 0.0), ready

    def kernel_state(self) -> dict[str, Any]:
        return {"kind": "sma", "field": self.field, "window": self.window}

    def load_kernel_state(self, state: dict[str, Any]) -> None:
        if (state.get("kind"), state.get("field"), state.get("window")) != (
                "sma", self.field, self.window):
            raise ValueError(f"saved series {state.get('kind')}({state.get('field')}, "
                             f"{state.get('window')}) is not sma({self.field}, {self.window}): "
                             "the strategy declared other series")


class EMASeries(IndicatorSeries):
    """Exponential moving average of a price field (``weltklassebot.indicators.EMA``)."""

    __slots__ = ()
    kind = "ema"

    def __init__(self, field: str, window: int) -> None:
        super().__init__(EMA(window), (_price_field(field),))


class WMASeries(IndicatorSeries):
    """Linearly weighted moving average of a price field (``WMA``)."""

    __slots__ = ()
    kind = "wma"

    def __init__(self, field: str, window: int) -> None:
        super().__init__(WMA(window), (_price_field(field),))


class RSISeries(IndicatorSeries):
    """Wilder's RSI of a price field (``RSI``)."""

    __slots__ = ()
    kind = "rsi"

    def __init__(self, field: str, window: int) -> None:
        super().__init__(RSI(window), (_price_field(field),))


class ROCSeries(IndicatorSeries):
    """Rate of change of a price field in percent (``ROC``)."""

    __slots__ = ()
    kind = "roc"

    def __init__(self, field: str, window: int) -> None:
        super().__init__(ROC(window), (_price_field(field),))


class StdDevSeries(IndicatorSeries):
    """Population standard deviation of a price field (``StdDev``)."""

    __slots__ = ()
    kind = "stddev"

    def __init__(self, field: str, window: int) -> None:
        super().__init__(StdDev(window), (_price_field(field),))


class ZScoreSeries(IndicatorSeries):
    """Z-score of a price field within its window (``ZScore``)."""

    __slots__ = ()
    kind = "zscore"

    def __init__(self, field: str, window: int) -> None:
        super().__init__(ZScore(window), (_price_field(field),))


class TrueRangeSeries(IndicatorSeries):
    """True range in exact ticks (``TrueRange``)."""

    __slots__ = ()
    kind = "true_range"

    def __init__(self) -> None:
        super().__init__(TrueRange(), ("high", "low", "close"))


class ATRSeries(IndicatorSeries):
    """Average true range, Wilder's smoothing (``ATR``)."""

    __slots__ = ()
    kind = "atr"

    def __init__(self, window: int) -> None:
        super().__init__(ATR(window), ("high", "low", "close"))


class BollingerSeries(IndicatorSeries):
    """Bollinger bands of a price field (``Bollinger``): ``value`` and ``middle`` the mean,
    ``upper`` / ``lower`` the bands."""

    __slots__ = ()
    kind = "bollinger"

    def __init__(self, field: str, window: int, k: float) -> None:
        super().__init__(Bollinger(window, k), (_price_field(field),), ("upper", "lower"),
                         primary="middle")

    @property
    def middle(self) -> float:
        return float(self.value)

    @property
    def upper(self) -> float:
        return float(self._outputs["upper"].value)

    @property
    def lower(self) -> float:
        return float(self._outputs["lower"].value)


class MACDSeries(IndicatorSeries):
    """MACD of a price field (``MACD``): ``value`` and ``macd`` the line, ``signal``,
    ``histogram``."""

    __slots__ = ()
    kind = "macd"

    def __init__(self, field: str, fast: int, slow: int, signal: int) -> None:
        super().__init__(MACD(fast, slow, signal), (_price_field(field),),
                         ("signal", "histogram"), primary="macd")

    @property
    def macd(self) -> float:
        return float(self.value)

    @property
    def signal(self) -> float:
        return float(self._outputs["signal"].value)

    @property
    def histogram(self) -> float:
        return float(self._outputs["histogram"].value)


class StochasticSeries(IndicatorSeries):
    """Stochastic oscillator (``Stochastic``): ``value`` and ``k`` the slow %K, ``d``."""

    __slots__ = ()
    kind = "stochastic"

    def __init__(self, fastk: int, slowk: int, slowd: int) -> None:
        super().__init__(Stochastic(fastk, slowk, slowd), ("high", "low", "close"), ("d",),
                         primary="k")

    @property
    def k(self) -> float:
        return float(self.value)

    @property
    def d(self) -> float:
        return float(self._outputs["d"].value)


class ADXSeries(IndicatorSeries):
    """Wilder's ADX (``ADX``): ``value`` and ``adx``, ``plus_di``, ``minus_di``."""

    __slots__ = ()
    kind = "adx"

    def __init__(self, window: int) -> None:
        super().__init__(ADX(window), ("high", "low", "close"), ("plus_di", "minus_di"),
                         primary="adx")

    @property
    def adx(self) -> float:
        return float(self.value)

    @property
    def plus_di(self) -> float:
        return float(self._outputs["plus_di"].value)

    @property
    def minus_di(self) -> float:
        return float(self._outputs["minus_di"].value)


class VWAPSeries(IndicatorSeries):
    """Session VWAP (``VWAP``), from the bar columns high, low, close, volume and ts."""

    __slots__ = ()
    kind = "vwap"

    def __init__(self, period_ns: int | None, offset_ns: int) -> None:
        super().__init__(VWAP(period_ns, offset_ns), ("high", "low", "close", "volume", "ts"))
