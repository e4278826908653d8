"""Volatility: true range, ATR (Wilder), rolling standard deviation, z-score, Bollinger bands.

The window statistics keep exact integer sums of the values and of their squares, so the
variance ``(n * sum(x^2) - sum(x)^2) / n^2`` is exact before its one square root (TA-Lib
computes ``mean(x^2) - mean(x)^2`` in floats, which cancels digits when the spread is small).
The standard deviation is the population one (divided by ``n``), as TA-Lib's.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from weltklassebot.core.ints import int_array
from weltklassebot.indicators._base import (
    INT64_SAFE,
    ArrayLike,
    check_period,
    check_saved,
    fits,
    floats,
    int_input,
    ready_after,
    window_sums,
)


class TrueRange:
    """True range of a bar: ``max(high - low, |high - previous close|, |low - previous close|)``
    in exact integer ticks. Ready from the second bar on (the first has no previous close,
    as in TA-Lib); 0 until then."""

    __slots__ = ("_bars", "_prev_close", "value")

    def __init__(self) -> None:
        self._prev_close: int | None = None
        self._bars = 0  # bars seen, counted up to 2
        self.value = 0

    @property
    def ready(self) -> bool:
        return self._bars >= 2

    def update(self, high: int, low: int, close: int) -> int:
        previous = self._prev_close
        self._prev_close = close
        if self._bars < 2:
            self._bars += 1
        if previous is None:
            return self.value
        self.value = max(high - low, abs(high - previous), abs(low - previous))
        return self.value

    def update_many(self, high: ArrayLike, low: ArrayLike, close: ArrayLike) -> tuple[
            np.ndarray, np.ndarray]:
        """``update`` for each bar in turn: (true ranges, ready), vectorised."""
        highs = int_input(high, "high")
        lows = int_input(low, "low")
        closes = int_input(close, "close")
        m = closes.size
        if not (highs.size == lows.size == m):
            raise ValueError("high, low and close must have the same length")
        ready = ready_after(self._bars, m, 2)
        if not m:
            return np.zeros(0, dtype=np.int64), ready
        limit = INT64_SAFE // 2
        previous = self._prev_close
        if not (fits(highs, limit) and fits(lows, limit) and fits(closes, limit)) or (
                previous is not None and abs(previous) >= limit):
            out = [self.update(h, lo, c) for h, lo, c in zip(
                highs.tolist(), lows.tolist(), closes.tolist(), strict=True)]
            return int_array(out), ready
        prev = np.concatenate((np.array([0 if previous is None else previous],
                                        dtype=np.int64), closes[:-1]))
        out = np.maximum(np.maximum(highs - lows, np.abs(highs - prev)), np.abs(lows - prev))
        if previous is None:
            out[0] = self.value
        self._prev_close = int(closes[-1])
        self._bars = min(self._bars + m, 2)
        self.value = int(out[-1])
        return out, ready

    def state(self) -> dict[str, Any]:
        """Plain data to continue exactly where this left off (a strategy's ``save``)."""
        return {"kind": "true_range", "bars": self._bars, "prev_close": self._prev_close,
                "value": self.value}

    def load_state(self, state: dict[str, Any]) -> None:
        check_saved(state, "true_range", {})
        previous = state["prev_close"]
        self._prev_close = None if previous is None else int(previous)
        self._bars = int(state["bars"])
        self.value = int(state["value"])


class ATR:
    """Average true range, Wilder's smoothing: the first value is the mean of the first
    ``window`` true ranges, then ``atr = (atr * (window - 1) + tr) / window``. Ready after
    ``window + 1`` bars (TA-Lib's first value); 0.0 until then."""

    __slots__ = ("_count", "_seed", "_tr", "value", "window")

    def __init__(self, window: int = 14) -> None:
        self.window = check_period("window", window)
        self._tr = TrueRange()
        self._count = 0  # true ranges seen, counted up to window
        self._seed = 0
        self.value = 0.0

    @property
    def ready(self) -> bool:
        return self._count >= self.window

    def update(self, high: int, low: int, close: int) -> float:
        tr = self._tr.update(high, low, close)
        if not self._tr.ready:
            return self.value
        n = self.window
        if self._count < n:
            self._seed += tr
            self._count += 1
            if self._count == n:
                self.value = float(self._seed) / n
            return self.value
        self.value = (self.value * (n - 1) + tr) / n
        return self.value

    def update_many(self, high: ArrayLike, low: ArrayLike, close: ArrayLike) -> tuple[
            np.ndarray, np.ndarray]:
        """``update`` for each bar in turn: (ATR values, ready). The true ranges are
        vectorised; Wilder's recursion is the same loop as ``update``."""
        ranges, tr_ready = self._tr.update_many(high, low, close)
        m = ranges.size
        out = [0.0] * m
        ready = [False] * m
        n = self.window
        keep = n - 1
        value, seed, count = self.value, self._seed, self._count
        for k, (tr, ok) in enumerate(zip(ranges.tolist(), tr_ready.tolist(), strict=True)):
            if not ok:
                continue
            if count < n:
                seed += tr
                count += 1
                if count == n:
                    value = float(seed) / n
            else:
                value = (value * keep + tr) / n
            out[k] = value
            ready[k] = count >= n
        self.value, self._seed, self._count = value, seed, count
        return np.array(out, dtype=np.float64), np.array(ready, dtype=bool)

    def state(self) -> dict[str, Any]:
        """Plain data to continue exactly where this left off (a strategy's ``save``)."""
        return {"kind": "atr", "window": self.window, "tr": self._tr.state(),
                "count": self._count, "seed": self._seed, "value": self.value}

    def load_state(self, state: dict[str, Any]) -> None:
        check_saved(state, "atr", {"window": self.window})
        self._tr.load_state(state["tr"])
        self._count = int(state["count"])
        self._seed = int(state["seed"])
        self.value = float(state["value"])


class _Moments:
    """Exact sums of the last ``window`` integers and of their squares (O(1) per value)."""

    __slots__ = ("s1", "s2", "values", "window")

    def __init__(self, window: int) -> None:
        self.window = check_period("window", window)
        self.values: deque[int] = deque(maxlen=self.window)
        self.s1 = 0
        self.s2 = 0

    @property
    def full(self) -> bool:
        return len(self.values) == self.window

    def add(self, value: int) -> None:
        if len(self.values) == self.window:
            old = self.values[0]
            self.s1 -= old
            self.s2 -= old * old
        self.values.append(value)
        self.s1 += value
        self.s2 += value * value

    def spread(self) -> int:
        """``n * sum(x^2) - sum(x)^2``: n^2 times the variance, exact and never negative."""
        return self.window * self.s2 - self.s1 * self.s1

    def add_many(self, arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(sums, spreads, ready) after each value of the int64 ``arr``, vectorised; None (and
        nothing added) when the squares could leave int64: then add them one by one."""
        n = self.window
        limit = (1 << 31) // n
        head = list(self.values)[1:] if self.full else list(self.values)
        if not fits(arr, limit) or any(abs(v) >= limit for v in head):
            return None
        m = arr.size
        ready = ready_after(len(self.values), m, n)
        ext = np.concatenate((np.array(head, dtype=np.int64), arr))
        s1 = window_sums(ext, n)[len(head):]
        s2 = window_sums(ext * ext, n)[len(head):]
        spread = n * s2 - s1 * s1
        self.values.extend(arr[max(0, m - n):].tolist())
        self.s1 = int(s1[-1])
        self.s2 = int(s2[-1])
        return s1, spread, ready

    def state(self) -> list[int]:
        return list(self.values)

    def load_state(self, values: list[int]) -> None:
        self.values = deque((int(v) for v in values), maxlen=self.window)
        self.s1 = sum(self.values)
        self.s2 = sum(v * v for v in self.values)


class StdDev:
    """Population standard deviation of the last ``window`` integers (TA-Lib's STDDEV with
    ``nbdev`` 1): ``sqrt(n * sum(x^2) - sum(x)^2) / n`` from exact integer sums. Ready after
    ``window`` values; 0.0 until then."""

    __slots__ = ("_m", "value")

    def __init__(self, window: int = 20) -> None:
        self._m = _Moments(window)
        self.value = 0.0

    @property
    def window(self) -> int:
        return self._m.window

    @property
    def ready(self) -> bool:
        return self._m.full

    def update(self, value: int) -> float:
        self._m.add(value)
        if self._m.full:
            self.value = math.sqrt(float(self._m.spread())) / self._m.window
        return self.value

    def update_many(self, values: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``update`` for each value in turn: (deviations, ready), vectorised."""
        arr = int_input(values)
        before = len(self._m.values)
        if not arr.size:
            return np.zeros(0, dtype=np.float64), np.zeros(0, dtype=bool)
        done = self._m.add_many(arr)
        if done is None:
            looped = [self.update(v) for v in arr.tolist()]
            return np.array(looped, dtype=np.float64), ready_after(before, arr.size, self.window)
        _s1, spread, ready = done
        out = np.where(ready, np.sqrt(floats(spread)) / self.window, 0.0)
        self.value = float(out[-1]) if ready[-1] else self.value
        return out, ready

    def state(self) -> dict[str, Any]:
        """Plain data to continue exactly where this left off (a strategy's ``save``)."""
        return {"kind": "stddev", "window": self.window, "values": self._m.state()}

    def load_state(self, state: dict[str, Any]) -> None:
        check_saved(state, "stddev", {"window": self.window})
        self._m.load_state(state["values"])
        self.value = (math.sqrt(float(self._m.spread())) / self.window if self._m.full
                      else 0.0)


class ZScore:
    """How many standard deviations the latest value lies from the mean of the last ``window``
    values (itself included): ``(x - mean) / stddev`` = ``(n * x - sum) / sqrt(n * sum(x^2) -
    sum^2)``, exact up to the final division. 0.0 when the window is flat; 0.0 until ready
    (after ``window`` values)."""

    __slots__ = ("_m", "value")

    def __init__(self, window: int = 20) -> None:
        self._m = _Moments(window)
        self.value = 0.0

    @property
    def window(self) -> int:
        return self._m.window

    @property
    def ready(self) -> bool:
        return self._m.full

    def update(self, value: int) -> float:
        moments = self._m
        moments.add(value)
        if moments.full:
            spread = moments.spread()
            self.value = (float(moments.window * value - moments.s1) / math.sqrt(float(spread))
                          if spread else 0.0)
        return self.value

    def update_many(self, values: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``update`` for each value in turn: (z-scores, ready), vectorised."""
        arr = int_input(values)
        before = len(self._m.values)
        if not arr.size:
            return np.zeros(0, dtype=np.float64), np.zeros(0, dtype=bool)
        done = self._m.add_many(arr)
        if done is None:
            looped = [self.update(v) for v in arr.tolist()]
            return np.array(looped, dtype=np.float64), ready_after(before, arr.size, self.window)
        s1, spread, ready = done
        out = np.zeros(arr.size, dtype=np.float64)
        np.divide(floats(self.window * arr - s1), np.sqrt(floats(spread)), out=out,
                  where=ready & (spread != 0))
        self.value = float(out[-1]) if ready[-1] else self.value
        return out, ready

    def state(self) -> dict[str, Any]:
        """Plain data to continue exactly where this left off (a strategy's ``save``)."""
        return {"kind": "zscore", "window": self.window, "values": self._m.state(),
                "value": self.value}

    def load_state(self, state: dict[str, Any]) -> None:
        check_saved(state, "zscore", {"window": self.window})
        self._m.load_state(state["values"])
        self.value = float(state["value"])


class Bollinger:
    """Bollinger bands: ``middle`` the simple mean of the last ``window`` integers, ``upper``
    and ``lower`` ``k`` population standard deviations above and below (TA-Lib's BBANDS with a
    simple average). ``value`` is ``middle``. Ready after ``window`` values; 0.0 until then."""

    __slots__ = ("_m", "k", "lower", "middle", "upper")

    def __init__(self, window: int = 20, k: float = 2.0) -> None:
        self._m = _Moments(window)
        self.k = float(k)
        if not math.isfinite(self.k) or self.k < 0:
            raise ValueError(f"k must be a finite number >= 0, got {k!r}")
        self.upper = 0.0
        self.middle = 0.0
        self.lower = 0.0

    @property
    def window(self) -> int:
        return self._m.window

    @property
    def value(self) -> float:
        return self.middle

    @property
    def ready(self) -> bool:
        return self._m.full

    def _set(self) -> None:
        moments = self._m
        n = moments.window
        self.middle = float(moments.s1) / n
        width = math.sqrt(float(moments.spread())) / n * self.k
        self.upper = self.middle + width
        self.lower = self.middle - width

    def update(self, value: int) -> float:
        self._m.add(value)
        if self._m.full:
            self._set()
        return self.middle

    def update_many(self, values: ArrayLike) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """``update`` for each value in turn: ({"upper", "middle", "lower"}, ready),
        vectorised."""
        arr = int_input(values)
        n = self.window
        before = len(self._m.values)
        m = arr.size
        done = self._m.add_many(arr) if m else None
        if done is None:
            upper, middle, lower = [], [], []
            for v in arr.tolist():
                self.update(v)
                upper.append(self.upper)
                middle.append(self.middle)
                lower.append(self.lower)
            return {"upper": np.array(upper, dtype=np.float64),
                    "middle": np.array(middle, dtype=np.float64),
                    "lower": np.array(lower, dtype=np.float64)}, ready_after(before, m, n)
        s1, spread, ready = done
        mid = floats(s1) / n
        width = np.sqrt(floats(spread)) / n * self.k
        out = {"upper": np.where(ready, mid + width, 0.0), "middle": np.where(ready, mid, 0.0),
               "lower": np.where(ready, mid - width, 0.0)}
        if ready[-1]:
            self.upper = float(out["upper"][-1])
            self.middle = float(out["middle"][-1])
            self.lower = float(out["lower"][-1])
        return out, ready

    def state(self) -> dict[str, Any]:
        """Plain data to continue exactly where this left off (a strategy's ``save``)."""
        return {"kind": "bollinger", "window": self.window, "k": self.k,
                "values": self._m.state()}

    def load_state(self, state: dict[str, Any]) -> None:
        check_saved(state, "bollinger", {"window": self.window, "k": self.k})
        self._m.load_state(state["values"])
        if self._m.full:
            self._set()
        else:
            self.upper = self.middle = self.lower = 0.0
