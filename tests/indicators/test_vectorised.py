"""The vectorised path (``update_many``) and the engine-computed series give the values of the
incremental ``update``, to the bit, however the bars are cut into chunks; and both leave the
indicator in the same state. Random bars (flat stretches, negative and huge integers that leave
int64), random parameters, random chunk sizes (0 and 1 included: one bar takes the series'
plain-number path)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weltklassebot.indicators import (
    ADX,
    ATR,
    EMA,
    MACD,
    ROC,
    RSI,
    SMA,
    VWAP,
    WMA,
    Bollinger,
    RollingMax,
    RollingMin,
    RollingSum,
    StdDev,
    Stochastic,
    TrueRange,
    ZScore,
)
from weltklassebot.strategy import indicator_series as series
from weltklassebot.strategy.series import RollingSumSeries, Series

from .drive import fields_of, in_chunks, one_by_one, same_bits

P = st.integers(1, 7)

# kind -> (parameters, the indicator from them, its input columns, its series from them)
# (the rolling extremes' engine series are series.py's own)
KINDS: dict[str, tuple[st.SearchStrategy[tuple[Any, ...]], Callable[..., Any],
                       tuple[str, ...], Callable[..., Series] | None]] = {
    "rolling_sum": (st.tuples(P), RollingSum, ("close",),
                    lambda n: RollingSumSeries("close", n)),
    "rolling_max": (st.tuples(P), RollingMax, ("high",), None),
    "rolling_min": (st.tuples(P), RollingMin, ("low",), None),
    "sma": (st.tuples(P), SMA, ("close",), lambda n: series.SMASeries("close", n)),
    "ema": (st.tuples(P), EMA, ("close",), lambda n: series.EMASeries("close", n)),
    "wma": (st.tuples(P), WMA, ("close",), lambda n: series.WMASeries("close", n)),
    "rsi": (st.tuples(P), RSI, ("close",), lambda n: series.RSISeries("close", n)),
    "roc": (st.tuples(P), ROC, ("close",), lambda n: series.ROCSeries("close", n)),
    "stddev": (st.tuples(P), StdDev, ("close",), lambda n: series.StdDevSeries("close", n)),
    "zscore": (st.tuples(P), ZScore, ("close",), lambda n: series.ZScoreSeries("close", n)),
    "bollinger": (st.tuples(P, st.sampled_from([0.0, 1.0, 2.0, 2.5])), Bollinger, ("close",),
                  lambda n, k: series.BollingerSeries("close", n, k)),
    "true_range": (st.just(()), TrueRange, ("high", "low", "close"),
                   lambda: series.TrueRangeSeries()),
    "atr": (st.tuples(P), ATR, ("high", "low", "close"), lambda n: series.ATRSeries(n)),
    "macd": (st.tuples(st.integers(1, 4), st.integers(5, 8), P), MACD, ("close",),
             lambda a, b, c: series.MACDSeries("close", a, b, c)),
    "stochastic": (st.tuples(P, st.integers(1, 4), st.integers(1, 4)), Stochastic,
                   ("high", "low", "close"), lambda a, b, c: series.StochasticSeries(a, b, c)),
    "adx": (st.tuples(st.integers(2, 6)), ADX, ("high", "low", "close"),
            lambda n: series.ADXSeries(n)),
    "vwap": (st.tuples(st.sampled_from([None, 5, 17, 60]), st.integers(-3, 3)), VWAP,
             ("high", "low", "close", "volume", "ts"), lambda p, o: series.VWAPSeries(p, o)),
}


@st.composite
def bars(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """OHLC integer bars with flat stretches, sometimes negative or beyond int64 ranges."""
    n = draw(st.integers(0, 90))
    scale = draw(st.sampled_from([1, 1, 1000, 10**15, 2**61, 2**63]))
    base = draw(st.integers(-5, 50)) * scale
    steps = draw(st.lists(st.sampled_from([0, 0, 0, 1, -1, 2, -3, 7]), min_size=n,
                          max_size=n))
    spans = draw(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=n,
                          max_size=n))
    close, high, low = [], [], []
    price = base
    for step, (up, down) in zip(steps, spans, strict=True):
        price += step * max(1, scale // 1000)
        close.append(price)
        high.append(price + up * max(1, scale // 1000))
        low.append(price - down * max(1, scale // 1000))
    volume = draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 3.25, 1e6]), min_size=n,
                           max_size=n))
    gaps = draw(st.lists(st.integers(1, 9), min_size=n, max_size=n))
    return {"close": _ints(close), "high": _ints(high), "low": _ints(low),
            "volume": np.array(volume, dtype=np.float64), "ts": np.cumsum(
                np.array(gaps, dtype=np.int64))}


def _ints(values: list[int]) -> np.ndarray:
    if values and max(abs(v) for v in values) >= 1 << 63:
        return np.array(values, dtype=object)
    return np.array(values, dtype=np.int64)


@pytest.mark.parametrize("kind", sorted(KINDS))
@settings(max_examples=30, deadline=None)
@given(data=st.data(), columns=bars(), sizes=st.lists(st.integers(0, 30), max_size=8))
def test_vectorised_and_series_equal_incremental(kind: str, data: st.DataObject,
                                                 columns: dict[str, np.ndarray],
                                                 sizes: list[int]) -> None:
    params_strategy, make, inputs, make_series = KINDS[kind]
    params = data.draw(params_strategy)
    cols = [columns[name] for name in inputs]
    single = make(*params)
    expected, expected_ready = one_by_one(single, cols)
    many = make(*params)
    got, got_ready = in_chunks(many, cols, sizes)
    assert np.array_equal(got_ready, expected_ready)
    for field in expected:
        assert same_bits(got[field], expected[field]), field
    assert json.loads(json.dumps(many.state())) == json.loads(json.dumps(single.state()))
    if make_series is not None and all(
            columns[name].dtype != object for name in inputs):  # engine columns are int64
        _check_series(lambda: make_series(*params), columns, sizes, _output_names(single),
                      expected, expected_ready)


def _check_series(make_series: Callable[[], Series], columns: dict[str, np.ndarray],
                  sizes: list[int], names: dict[str, str], expected: dict[str, np.ndarray],
                  expected_ready: np.ndarray) -> None:
    """Computed chunk by chunk as the engine does (a chunk of one bar takes the plain-number
    path), every output of the series equals the incremental indicator's; the kernel states
    go through JSON after the second chunk, as a resumed engine's do."""
    handle = make_series()
    parts = _parts(handle)
    got: dict[str, list[np.ndarray]] = {name: [] for name in names}
    ready_parts = []
    total = columns["close"].size
    start = 0
    for number, size in enumerate([*sizes, total]):
        end = min(start + size, total)
        chunk = {name: column[start:end] for name, column in columns.items()}
        if number == 2:
            saved = [json.loads(json.dumps(p.kernel_state())) for p in parts]
            handle = make_series()
            parts = _parts(handle)
            for part, state in zip(parts, saved, strict=True):
                part.load_kernel_state(state)
        results = {id(p): p.compute(chunk) for p in parts}
        for name, holder in names.items():
            got[name].append(results[id(_resolve(handle, holder))][0])
        ready_parts.append(results[id(handle)][1])
        start = end
        if start >= total:
            break
    assert np.array_equal(np.concatenate(ready_parts), expected_ready)
    for name in names:
        assert same_bits(np.concatenate(got[name]), expected[name]), name


def _parts(handle: Series) -> list[Series]:
    if isinstance(handle, series.IndicatorSeries | series.SMASeries):
        return handle.parts()
    return [handle]


PRIMARY = ("value", "middle", "macd", "k", "adx")  # the series' own value; others are outputs


def _output_names(indicator: Any) -> dict[str, str]:
    """Our field -> the part of the series holding it: "main" or the output's name."""
    return {field: "main" if field in PRIMARY else field for field in fields_of(indicator)}


def _resolve(handle: Series, part: str) -> Series:
    if part == "main":
        return handle
    assert isinstance(handle, series.IndicatorSeries)
    return handle.output(part)
