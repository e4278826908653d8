"""Every indicator TA-Lib has, against TA-Lib on real data: the same first valid bar, and the
same values to 1e-9 relative from there on (values below 1 in size to 1e-9 absolute: TA-Lib's
running float sums leave residues such as -4e-15 where the exact value is 0).

The only other differences are the documented neutral values: RSI where there was no movement
at all and the stochastic's fast %K over a flat range are 50 here and 0 in TA-Lib; they are
checked to be exactly that, and the bars they feed into are left out of the comparison.
Prices go to TA-Lib as the same integer ticks, in float64 (exact)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from weltklassebot.indicators import (
    ADX,
    ATR,
    EMA,
    MACD,
    ROC,
    RSI,
    SMA,
    WMA,
    Bollinger,
    RollingMax,
    RollingMin,
    StdDev,
    Stochastic,
    TrueRange,
)

from .drive import in_chunks, one_by_one, same_bits
from .real_data import Bars

DATASETS = ["msft_daily", "spy_minute", "btc_hourly"]
RTOL = 1e-9


def _talib() -> ModuleType:
    try:
        import talib
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("ta-lib is not installed: `pip install -e '.[test]'` (a binary wheel)")
    return talib


@dataclass(frozen=True)
class Case:
    """Our ``cls(*params)`` against TA-Lib's functions called on ``inputs`` and ``args``; each
    call's outputs are our fields ``fields``, in order."""

    label: str
    cls: type
    params: tuple[float, ...]
    inputs: tuple[str, ...]
    args: tuple[float, ...]
    calls: tuple[tuple[str, tuple[str, ...]], ...]

    def make(self) -> Any:
        return self.cls(*self.params)

    def reference(self, ta: ModuleType, columns: dict[str, np.ndarray]) -> dict[str,
                                                                                np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for function, fields in self.calls:
            result = getattr(ta, function)(*[columns[c] for c in self.inputs], *self.args)
            results = result if isinstance(result, tuple) else (result,)
            out.update(zip(fields, results, strict=True))
        return out


HLC = ("high", "low", "close")
VALUE = ("value",)


def _simple(cls: type, function: str, inputs: tuple[str, ...], *windows: int) -> list[Case]:
    return [Case(f"{cls.__name__}({n})", cls, (n,), inputs, (n,), ((function, VALUE),))
            for n in windows]


CASES = [
    *_simple(SMA, "SMA", ("close",), 10, 50),
    *_simple(EMA, "EMA", ("close",), 10, 50),
    *_simple(WMA, "WMA", ("close",), 10, 50),
    *_simple(RSI, "RSI", ("close",), 14, 2),
    *_simple(ROC, "ROC", ("close",), 10, 1),
    Case("TrueRange", TrueRange, (), HLC, (), (("TRANGE", VALUE),)),
    *_simple(ATR, "ATR", HLC, 14, 5),
    *[Case(f"StdDev({n})", StdDev, (n,), ("close",), (n, 1), (("STDDEV", VALUE),))
      for n in (20, 5)],
    *[Case(f"Bollinger({n}, {k})", Bollinger, (n, k), ("close",), (n, k, k, 0),
           (("BBANDS", ("upper", "middle", "lower")),)) for n, k in ((20, 2.0), (10, 1.5))],
    *[Case(f"MACD{p}", MACD, p, ("close",), p, (("MACD", ("macd", "signal", "histogram")),))
      for p in ((12, 26, 9), (5, 35, 5))],
    *_simple(RollingMax, "MAX", ("high",), 20, 55),
    *_simple(RollingMin, "MIN", ("low",), 20, 55),
    *[Case(f"Stochastic{p}", Stochastic, p, HLC, (p[0], p[1], 0, p[2], 0),
           (("STOCH", ("k", "d")),)) for p in ((14, 3, 3), (5, 3, 3), (14, 1, 1))],
    *[Case(f"ADX({n})", ADX, (n,), HLC, (n,), (("ADX", ("adx",)), ("PLUS_DI", ("plus_di",)),
                                                ("MINUS_DI", ("minus_di",))))
      for n in (14, 5)],
]


def _neutral(bars: Bars, indicator: Any) -> np.ndarray:
    """Bars whose value rests on a documented neutral value (left out of the comparison)."""
    n = bars.close.size
    if isinstance(indicator, RSI):
        # gain and loss both zero: no movement over the whole smoothing memory
        rsi = RSI(indicator.window)
        out = np.zeros(n, dtype=bool)
        for i, close in enumerate(bars.close.tolist()):
            rsi.update(close)
            out[i] = rsi.ready and rsi.avg_gain + rsi.avg_loss == 0.0
        return out
    if isinstance(indicator, Stochastic):
        flat = _flat_ranges(bars, indicator.fastk)
        k = _spread(flat, indicator.slowk)
        return _spread(k, indicator.slowd)
    return np.zeros(n, dtype=bool)


def _flat_ranges(bars: Bars, window: int) -> np.ndarray:
    high, low = RollingMax(window), RollingMin(window)
    highest, full = high.update_many(bars.high)
    lowest, _ = low.update_many(bars.low)
    flat: np.ndarray = full & (highest == lowest)
    return flat


def _spread(mask: np.ndarray, window: int) -> np.ndarray:
    """True where any of the last ``window`` entries of ``mask`` is."""
    counts = np.convolve(mask.astype(np.int64), np.ones(window, dtype=np.int64))[:mask.size]
    out: np.ndarray = counts > 0
    return out


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_equals_talib_on_real_data(real_bars: dict[str, Bars], dataset: str,
                                   case: Case) -> None:
    ta = _talib()
    bars = real_bars[dataset]
    columns = [bars.column(name) for name in case.inputs]
    indicator = case.make()
    ours, ready = one_by_one(indicator, columns)
    reference = case.reference(ta, {name: bars.column(name).astype(np.float64)
                                    for name in ("high", "low", "close")})
    neutral = _neutral(bars, case.make())
    first = int(np.argmax(ready))
    assert ready[first]
    assert not ready[:first].any()
    assert ready[first:].all()
    for field, expected in reference.items():
        valid = ~np.isnan(expected)
        got = ours[field].astype(np.float64)
        if field in ("plus_di", "minus_di"):
            # TA-Lib's PLUS_DI / MINUS_DI start at bar `window`; ours are outputs of the ADX,
            # ready with it at bar 2 * window - 1.
            assert int(np.argmax(valid)) == indicator.window
            valid[:first] = False
        else:
            assert int(np.argmax(valid)) == first, f"{field}: first valid bar"
        if ours[field].dtype.kind == "f":  # (the integer windows hold their partial value)
            assert not got[~ready].any(), f"{field}: 0.0 until ready"
        compare = valid & ~neutral
        error = np.abs(got - expected)
        allowed = RTOL * np.maximum(np.abs(expected), 1.0)
        worst = int(np.argmax(np.where(compare, error / allowed, 0.0)))
        assert (error[compare] <= allowed[compare]).all(), (
            f"{case.label} {field} on {dataset}: bar {worst} ours {got[worst]!r} "
            f"TA-Lib {expected[worst]!r}")
        if isinstance(indicator, RSI):
            assert (got[neutral] == 50.0).all()
            assert (expected[neutral] == 0.0).all()
    # The vectorised path gives the same values to the bit, in any chunks.
    many, many_ready = in_chunks(case.make(), columns, [1, 4095, 7, 4096])
    assert np.array_equal(many_ready, ready)
    for field, values in ours.items():
        assert same_bits(many[field], values), field


@pytest.mark.parametrize("dataset", DATASETS)
def test_stochastic_is_neutral_where_talib_says_0(real_bars: dict[str, Bars],
                                                  dataset: str) -> None:
    """Over a flat range fast %K is 50 here and 0 in TA-Lib; everywhere else they agree."""
    ta = _talib()
    bars = real_bars[dataset]
    columns = [bars.high, bars.low, bars.close]
    ours, _ready = one_by_one(Stochastic(14, 1, 1), columns)
    fast_k, _fast_d = ta.STOCHF(*[c.astype(np.float64) for c in columns], 14, 1, 0)
    flat = _flat_ranges(bars, 14)
    assert (ours["k"][flat] == 50.0).all()
    assert (fast_k[flat] == 0.0).all()
    other = ~np.isnan(fast_k) & ~flat
    assert np.allclose(ours["k"][other], fast_k[other], rtol=RTOL, atol=RTOL)
