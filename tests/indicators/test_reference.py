"""The indicators TA-Lib does not have (VWAP, z-score) against plain references written here,
on real data; the documented conventions; saved states; and the errors a user can meet."""

from __future__ import annotations

import json
import math
import statistics
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from weltklassebot.core.timeutil import NS_PER_DAY
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
    Cross,
    RollingMax,
    RollingMin,
    RollingSum,
    StdDev,
    Stochastic,
    TrueRange,
    ZScore,
)
from weltklassebot.strategy import indicators as legacy

from .drive import one_by_one
from .real_data import Bars

RTOL = 1e-9


def _close(ours: float, expected: float) -> bool:
    return abs(ours - expected) <= RTOL * max(abs(expected), 1.0)


@pytest.mark.parametrize("dataset", ["msft_daily", "spy_minute", "btc_hourly"])
@pytest.mark.parametrize("window", [5, 20])
def test_zscore_equals_a_plain_reference(real_bars: dict[str, Bars], dataset: str,
                                         window: int) -> None:
    closes = real_bars[dataset].close.tolist()[:6000]
    z = ZScore(window)
    for i, close in enumerate(closes):
        z.update(close)
        assert z.ready == (i >= window - 1)
        if not z.ready:
            assert z.value == 0.0
            continue
        part = closes[i - window + 1:i + 1]
        spread = statistics.pstdev(part)  # exact arithmetic inside, one rounding
        expected = 0.0 if spread == 0 else (close - statistics.fmean(part)) / spread
        assert _close(z.value, expected), (i, z.value, expected)


@pytest.mark.parametrize(("dataset", "period"), [("spy_minute", NS_PER_DAY),
                                                 ("btc_hourly", NS_PER_DAY),
                                                 ("msft_daily", None)])
def test_vwap_equals_a_plain_reference(real_bars: dict[str, Bars], dataset: str,
                                       period: int | None) -> None:
    """Exact fractions: sum((h + l + c) / 3 * volume) / sum(volume) per UTC day (or since the
    start)."""
    bars = real_bars[dataset]
    vwap = VWAP(period)
    pv, vol, session = Fraction(0), Fraction(0), None
    resets = 0
    rows = zip(bars.high.tolist(), bars.low.tolist(), bars.close.tolist(),
               bars.volume.tolist(), bars.ts.tolist(), strict=True)
    for i, (h, lo, c, v, ts) in enumerate(rows):
        if i >= 8000:
            break
        day = 0 if period is None else ts // period
        if day != session:
            pv, vol, session = Fraction(0), Fraction(0), day
            resets += 1
        pv += Fraction(h + lo + c, 3) * Fraction(v)
        vol += Fraction(v)
        vwap.update(h, lo, c, v, ts)
        assert vwap.ready == (vol > 0)
        expected = float(pv / vol) if vol else 0.0
        assert _close(vwap.value, expected), (i, vwap.value, expected)
    assert resets > 1 if period else resets == 1


def test_rsi_is_50_where_nothing_moved_and_100_or_0_one_way() -> None:
    rsi = RSI(3)
    for price in (10, 10, 10, 10):
        rsi.update(price)
    assert rsi.ready
    assert rsi.value == 50.0
    assert rsi.update(11) == 100.0
    falling = RSI(2)
    for price in (10, 9, 8):
        falling.update(price)
    assert falling.value == 0.0


def test_stochastic_is_50_over_a_flat_range() -> None:
    stoch = Stochastic(3, 1, 1)
    for _ in range(3):
        stoch.update(7, 7, 7)
    assert stoch.ready
    assert stoch.k == 50.0


def test_warm_ups_and_the_value_before_ready() -> None:
    """The first ready bar of each (0-based), as docs/indicators.md lists them."""
    cases: list[tuple[Any, int]] = [
        (SMA(4), 3), (EMA(4), 3), (WMA(4), 3), (RSI(4), 4), (ROC(4), 4), (TrueRange(), 1),
        (ATR(4), 4), (StdDev(4), 3), (ZScore(4), 3), (Bollinger(4), 3), (MACD(2, 4, 3), 5),
        (Stochastic(4, 2, 3), 6), (ADX(4), 7), (RollingMax(4), 3), (RollingMin(4), 3),
        (RollingSum(4), 3),
    ]
    closes = [100, 103, 101, 104, 108, 107, 111, 109, 115, 112]
    for indicator, first in cases:
        ready = []
        for c in closes:
            args = (c,) if isinstance(indicator, SMA | EMA | WMA | RSI | ROC | StdDev | ZScore
                                      | Bollinger | MACD | RollingMax | RollingMin
                                      | RollingSum) else (c + 2, c - 3, c)
            indicator.update(*args)
            ready.append(indicator.ready)
            if not indicator.ready and isinstance(indicator.value, float):
                assert indicator.value == 0.0
        assert ready.index(True) == first, type(indicator).__name__
        assert all(ready[first:])


def test_ema_is_seeded_with_the_simple_mean() -> None:
    ema = EMA(3)
    for c in (3, 6, 9):
        ema.update(c)
    assert ema.value == 6.0
    assert ema.update(14) == (14 - 6.0) * 0.5 + 6.0


def test_macd_starts_both_averages_on_the_same_bar() -> None:
    """TA-Lib's alignment: at bar slow - 1 the fast average is the mean of the last `fast`
    values, not an EMA running since bar fast - 1."""
    values = [5, 1, 9, 2, 8, 3]
    macd = MACD(2, 4, 1)
    for v in values[:4]:
        macd.update(v)
    assert macd.ready
    assert macd.macd == (9 + 2) / 2 - (5 + 1 + 9 + 2) / 4
    assert macd.histogram == 0.0  # a signal window of 1 is the line itself


def test_sma_total_and_cross_are_exact() -> None:
    """Means that are equal never cross, whatever float division would say; a real crossing
    is seen at its bar."""
    fast, slow, cross = SMA(3), SMA(9), Cross()
    crossings = []
    for price in [10**15 + k for k in (1, 2, 3, 4, 5, 6, 7, 8, 9, 5, 5, 5, 1, 1, 1, 9, 9, 9)]:
        fast.update(price)
        slow.update(price)
        crossings.append(cross.update(fast, slow))
        assert (fast.total * slow.window > slow.total * fast.window) == (
            Fraction(fast.total, 3) > Fraction(slow.total, 9))
    assert crossings.count(0) == len(crossings) - 2
    assert -1 in crossings
    assert 1 in crossings
    tie_a, tie_b, tie = RollingSum(2), RollingSum(4), Cross()
    for price in (1, 3, 2, 2, 4, 0):
        tie_a.update(price)
        tie_b.update(price)
        assert tie.update(tie_a, tie_b) == 0


def test_rolling_sum_value_and_its_deprecated_alias() -> None:
    rolling = RollingSum(3)
    for v in (4, 5, 6, 7):
        rolling.update(v)
    assert rolling.value == rolling.sum == 18
    assert legacy.RollingSum is RollingSum
    assert legacy.RollingMax is RollingMax


def test_roc_is_exact_from_its_integer_change() -> None:
    roc = ROC(1)
    roc.update(3)
    roc.update(4)
    assert roc.change == 1
    assert roc.value == float(Fraction(100, 3))
    zero = ROC(1)
    zero.update(0)
    assert zero.update(5) == 0.0


def test_bollinger_uses_the_population_deviation() -> None:
    bands = Bollinger(4, 2)
    for v in (2, 4, 4, 6):
        bands.update(v)
    deviation = math.sqrt(2)  # population: sqrt(((-2)^2 + 0 + 0 + 2^2) / 4)
    assert bands.middle == 4.0
    assert bands.upper == 4.0 + deviation * 2
    assert bands.lower == 4.0 - deviation * 2


ALL: list[tuple[Any, tuple[str, ...]]] = [
    (SMA(5), ("close",)), (EMA(5), ("close",)), (WMA(5), ("close",)), (RSI(5), ("close",)),
    (ROC(5), ("close",)), (StdDev(5), ("close",)), (ZScore(5), ("close",)),
    (Bollinger(5, 2), ("close",)), (MACD(3, 7, 4), ("close",)),
    (TrueRange(), ("high", "low", "close")), (ATR(5), ("high", "low", "close")),
    (Stochastic(5, 3, 3), ("high", "low", "close")), (ADX(5), ("high", "low", "close")),
    (RollingMax(5), ("high",)), (RollingMin(5), ("low",)), (RollingSum(5), ("close",)),
    (VWAP(NS_PER_DAY), ("high", "low", "close", "volume", "ts")),
]


@pytest.mark.parametrize("pair", ALL, ids=[type(i).__name__ for i, _ in ALL])
@pytest.mark.parametrize("cut", [0, 3, 40, 400])
def test_a_saved_state_continues_exactly(real_bars: dict[str, Bars], pair: tuple[Any, ...],
                                         cut: int) -> None:
    """Save as plain JSON at a cut, load into a fresh indicator, go on: the same values to
    the bit as without the break."""
    indicator, inputs = pair
    bars = real_bars["btc_hourly"]
    columns = [bars.column(name)[:600] for name in inputs]
    fresh = type(indicator)
    params = _params(indicator)
    whole, _ = one_by_one(fresh(*params), columns)
    first = fresh(*params)
    one_by_one(first, [c[:cut] for c in columns])
    saved = json.loads(json.dumps(first.state()))
    second = fresh(*params)
    second.load_state(saved)
    rest, _ = one_by_one(second, [c[cut:] for c in columns])
    for field, values in rest.items():
        assert np.array_equal(values.view(np.int64) if values.dtype.kind == "f" else values,
                              whole[field][cut:].view(np.int64)
                              if values.dtype.kind == "f" else whole[field][cut:]), field


def _params(indicator: Any) -> tuple[Any, ...]:
    for cls, names in ((Bollinger, ("window", "k")), (MACD, ("fast", "slow", "signal_window")),
                       (Stochastic, ("fastk", "slowk", "slowd")), (TrueRange, ()),
                       (VWAP, ("period_ns", "offset_ns"))):
        if isinstance(indicator, cls):
            return tuple(getattr(indicator, n) for n in names)
    return (indicator.window,)


def test_a_state_from_another_indicator_is_refused() -> None:
    sma = SMA(5)
    with pytest.raises(ValueError, match=r"saved state of sma \{'window': 5\} is not this"):
        SMA(6).load_state(sma.state())
    with pytest.raises(ValueError, match="saved state of sma"):
        EMA(5).load_state(sma.state())
    with pytest.raises(ValueError, match="saved window 5 is not this indicator's 6"):
        RollingMax(6).load_state(RollingMax(5).state())


@pytest.mark.parametrize(("make", "message"), [
    (lambda: SMA(0), "window must be >= 1, got 0"),
    (lambda: EMA(2.5), "window must be a whole number of bars"),  # type: ignore[arg-type]
    (lambda: MACD(26, 12), r"fast \(26\) must be shorter than slow \(12\)"),
    (lambda: ADX(1), "window must be >= 2"),
    (lambda: Bollinger(20, -1), "k must be a finite number >= 0"),
    (lambda: VWAP(0), "period_ns must be a positive whole number"),
])
def test_bad_parameters_say_what_is_wrong(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_exact_indicators_refuse_floats_in_bulk() -> None:
    with pytest.raises(TypeError, match=r"values must be integers \(price ticks\)"):
        SMA(3).update_many(np.array([1.5, 2.5]))
    assert EMA(2).update_many(np.array([1.5, 2.5]))[0].tolist() == [0.0, 2.0]
