"""Momentum: RSI (Wilder), rate of change, the stochastic oscillator and MACD.

Warm-ups and formulas follow TA-Lib (the tests compare them on real data); where a value is
undefined these give a neutral one instead of TA-Lib's 0 (docs/indicators.md says where and why).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from weltklassebot.indicators._base import (
    ArrayLike,
    check_period,
    check_saved,
    fits,
    int_input,
    mean_of,
    number_input,
    ready_after,
    running_means,
)
from weltklassebot.indicators.rolling import RollingMax, RollingMin

_NEUTRAL = 50.0


class RSI:
    """Wilder's relative strength index over ``window`` changes (default 14).

    The average gain and loss start as the plain means of the first ``window`` changes and are
    then smoothed as ``avg = (avg * (window - 1) + change) / window``; ``value`` is
    ``100 * gain / (gain + loss)``. Ready after ``window + 1`` values (``window`` changes);
    0.0 until then; 50.0 while gain and loss are both zero (no movement at all). Takes floats
    too.
    """

    __slots__ = ("_count", "_gain", "_loss", "_prev", "value", "window")

    def __init__(self, window: int = 14) -> None:
        self.window = check_period("window", window)
        self._count = 0
        self._prev: float = 0
        self._gain: float = 0
        self._loss: float = 0
        self.value = 0.0

    @property
    def ready(self) -> bool:
        return self._count > self.window

    @property
    def avg_gain(self) -> float:
        """Wilder's average gain (0.0 until ready)."""
        return float(self._gain) if self.ready else 0.0

    @property
    def avg_loss(self) -> float:
        """Wilder's average loss, a positive number (0.0 until ready)."""
        return float(self._loss) if self.ready else 0.0

    def update(self, value: float) -> float:
        count = self._count
        change = value - self._prev
        self._prev = value
        if count == 0:
            self._count = 1
            return self.value
        n = self.window
        if count <= n:
            # the first window changes: plain (exact, for integers) sums
            if change < 0:
                self._loss -= change
            else:
                self._gain += change
            self._count = count + 1
            if count < n:
                return self.value
            gain = float(self._gain) / n
            loss = float(self._loss) / n
        else:
            gain = self._gain * (n - 1)
            loss = self._loss * (n - 1)
            if change < 0:
                loss -= change
            else:
                gain += change
            gain /= n
            loss /= n
        self._gain, self._loss = gain, loss
        total = gain + loss
        self.value = 100.0 * (gain / total) if total != 0.0 else _NEUTRAL
        return self.value

    def update_many(self, values: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``update`` for each value in turn: (RSI values, ready). A recursion: the same loop
        as ``update`` (vectorising it would change its rounding)."""
        items = number_input(values)
        before = self._count
        out = [0.0] * len(items)
        k = 0
        n = self.window
        while k < len(items) and self._count <= n:
            out[k] = self.update(items[k])
            k += 1
        if k < len(items):
            prev, gain, loss, value = self._prev, self._gain, self._loss, self.value
            keep = n - 1
            for j in range(k, len(items)):
                x = items[j]
                change = x - prev
                prev = x
                gain = gain * keep
                loss = loss * keep
                if change < 0:
                    loss -= change
                else:
                    gain += change
                gain /= n
                loss /= n
                total = gain + loss
                value = 100.0 * (gain / total) if total != 0.0 else _NEUTRAL
                out[j] = value
            self._prev, self._gain, self._loss, self.value = prev, gain, loss, value
        return np.array(out, dtype=np.float64), ready_after(before, len(items), n + 1)

    def state(self) -> dict[str, Any]:
        """Plain data to continue exactly where this left off (a strategy's ``save``)."""
        return {"kind": "rsi", "window": self.window, "count": self._count, "prev": self._prev,
                "gain": self._gain, "loss": self._loss, "value": self.value}

    def load_state(self, state: dict[str, Any]) -> None:
        check_saved(state, "rsi", {"window": self.window})
        self._count = int(state["count"])
        self._prev = state["prev"]
        self._gain = state["gain"]
        self._loss = state["loss"]
        self.value = float(state["value"])


class ROC:
    """Rate of change over ``window`` bars, in percent: ``100 * (x - x[-window]) / x[-window]``
    (0.0 where ``x[-window]`` is 0). ``change`` is the exact integer ``x - x[-window]``.

    Computed from the exact integer change with one rounding (TA-Lib rounds ``x / x[-window]``
    first, then subtracts 1). Ready after ``window + 1`` values; 0.0 and 0 until then.
    """

    __slots__ = ("_ready", "_values", "change", "value", "window")

    def __init__(self, window: int = 10) -> None:
        self.window = check_period("window", window)
        self._values: deque[int] = deque(maxlen=self.window)
        self.change = 0
        self.value = 0.0
        self._ready = False

    @property
    def ready(self) -> bool:
        return self._ready

    def update(self, value: int) -> float:
        values = self._values
        if len(values) == self.window:
            before = values[0]
            self.change = value - before
            self.value = float(self.change * 100) / before if before else 0.0
            self._ready = True
        values.append(value)
        return self.value

    def update_many(self, values: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``update`` for each value in turn: (rates of change, ready), vectorised."""
        arr = int_input(values)
        m = arr.size
        n = self.window
        if not m:
            return np.zeros(0, dtype=np.float64), np.zeros(0, dtype=bool)
        head = list(self._values)
        seen = len(head) + (1 if self._ready else 0)  # only "more than window" matters
        if not fits(arr, 1 << 55) or any(abs(v) >= 1 << 55 for v in head):
            looped = [self.update(v) for v in arr.tolist()]
            return np.array(looped, dtype=np.float64), ready_after(seen, m, n + 1)
        ready = ready_after(seen, m, n + 1)
        ext = np.concatenate((np.array(head, dtype=np.int64), arr))
        at = np.arange(len(head), ext.size)
        before = ext[np.maximum(at - n, 0)]
        change = ext[at] - before
        base = before.astype(np.float64)
        scaled = (change * 100).astype(np.float64)
        out = np.zeros(m, dtype=np.float64)
        np.divide(scaled, base, out=out, where=ready & (before != 0))
        self._values.extend(arr[max(0, m - n):].tolist())
        if ready[-1]:
            self.change = int(change[-1])
            self.value = float(out[-1])
            self._ready = True
        return out, ready

    def state(self) -> dict[str, Any]:
        """Plain data to continue exactly where this left off (a strategy's ``save``)."""
        return {"kind": "roc", "window": self.window, "values": list(self._values),
                "ready": self._ready, "change": self.change, "value": self.value}

    def load_state(self, state: dict[str, Any]) -> None:
        check_saved(state, "roc", {"window": self.window})
        self._values = deque((int(v) for v in state["values"]), maxlen=self.window)
        self._ready = bool(state["ready"])
        self.change = int(state["change"])
        self.value = float(state["value"])


class Stochastic:
    """Stochastic oscillator (TA-Lib's STOCH with simple averages): fast %K =
    ``100 * (close - lowest low) / (highest high - lowest low)`` over ``fastk`` bars (50.0 when
    the range is zero); ``k`` is its ``slowk``-bar mean, ``d`` the ``slowd``-bar mean of ``k``.

    Ready after ``fastk + slowk + slowd - 2`` bars; 0.0 until then. ``value`` is ``k``. The
    short means are summed afresh each bar (O(slowk + slowd)), oldest first.
    """

    __slots__ = ("_bars", "_fast", "_high", "_low", "_slow", "d", "fastk", "k", "slowd",
                 "slowk")

    def __init__(self, fastk: int = 14, slowk: int = 3, slowd: int = 3) -> None:
        self.fastk = check_period("fastk", fastk)
        self.slowk = check_period("slowk", slowk)
        self.slowd = check_period("slowd", slowd)
        self._high = RollingMax(self.fastk)
        self._low = RollingMin(self.fastk)
        self._fast: deque[float] = deque(maxlen=self.slowk)
        self._slow: deque[float] = deque(maxlen=self.slowd)
        self._bars = 0  # bars seen, counted up to readiness
        self.k = 0.0
        self.d = 0.0

    @property
    def value(self) -> float:
        return self.k

    @property
    def _needed(self) -> int:
        return self.fastk + self.slowk + self.slowd - 2

    @property
    def ready(self) -> bool:
        return self._bars >= self._needed

    def update(self, high: int, low: int, close: int) -> float:
        highest = self._high.update(high)
        lowest = self._low.update(low)
        if self._bars < self._needed:
            self._bars += 1
        if not self._high.ready:
            return self.k
        span = highest - lowest
        self._fast.append(float((close - lowest) * 100) / span if span else _NEUTRAL)
        if len(self._fast) < self.slowk:
            return self.k
        self._slow.append(mean_of(self._fast))
        if len(self._slow) == self.slowd:
            self.k = self._slow[-1]
            self.d = mean_of(self._slow)
        return self.k

    def update_many(self, high: ArrayLike, low: ArrayLike, close: ArrayLike) -> tuple[
            dict[str, np.ndarray], np.ndarray]:
        """``update`` for each bar in turn: ({"k", "d"}, ready), vectorised."""
        highs = int_input(high, "high")
        lows = int_input(low, "low")
        closes = int_input(close, "close")
        m = closes.size
        if not (highs.size == lows.size == m):
            raise ValueError("high, low and close must have the same length")
        ready = ready_after(self._bars, m, self._needed)
        k_all = np.zeros(m, dtype=np.float64)
        d_all = np.zeros(m, dtype=np.float64)
        if not m:
            return {"k": k_all, "d": d_all}, ready
        if not (fits(highs, 1 << 55) and fits(lows, 1 << 55) and fits(closes, 1 << 55)):
            for i, (h, lo, c) in enumerate(zip(highs.tolist(), lows.tolist(), closes.tolist(),
                                               strict=True)):
                self.update(h, lo, c)
                k_all[i], d_all[i] = self.k, self.d
            return {"k": k_all, "d": d_all}, ready
        self._bars = min(self._bars + m, self._needed)
        highest, full = self._high.update_many(highs)
        lowest, _ = self._low.update_many(lows)
        start = int(np.argmax(full)) if full[-1] else m  # the first bar with a full window
        span = highest[start:] - lowest[start:]
        fast = np.full(span.size, _NEUTRAL)
        np.divide(((closes[start:] - lowest[start:]) * 100).astype(np.float64),
                  span.astype(np.float64), out=fast, where=span != 0)
        # Every mean below ends at a new bar: the earlier ones were made by earlier calls.
        fast_ext = np.concatenate((_tail(self._fast), fast))
        self._fast.extend(fast.tolist())
        if fast_ext.size < self.slowk:
            return {"k": k_all, "d": d_all}, ready
        slow = running_means(fast_ext, self.slowk)
        slow_ext = np.concatenate((_tail(self._slow), slow))
        self._slow.extend(slow.tolist())
        if slow_ext.size < self.slowd:
            return {"k": k_all, "d": d_all}, ready
        d = running_means(slow_ext, self.slowd)
        k_all[m - d.size:] = slow[slow.size - d.size:]
        d_all[m - d.size:] = d
        self.k = float(k_all[-1])
        self.d = float(d_all[-1])
        return {"k": k_all, "d": d_all}, ready

    def state(self) -> dict[str, Any]:
        """Plain data to continue exactly where this left off (a strategy's ``save``)."""
        return {"kind": "stochastic", "fastk": self.fastk, "slowk": self.slowk,
                "slowd": self.slowd, "bars": self._bars, "high": self._high.state(),
                "low": self._low.state(), "fast": list(self._fast), "slow": list(self._slow),
                "k": self.k, "d": self.d}

    def load_state(self, state: dict[str, Any]) -> None:
        check_saved(state, "stochastic", {"fastk": self.fastk, "slowk": self.slowk,
                                          "slowd": self.slowd})
        self._bars = int(state["bars"])
        self._high.load_state(state["high"])
        self._low.load_state(state["low"])
        self._fast = deque((float(v) for v in state["fast"]), maxlen=self.slowk)
        self._slow = deque((float(v) for v in state["slow"]), maxlen=self.slowd)
        self.k = float(state["k"])
        self.d = float(state["d"])


def _tail(values: deque[float]) -> np.ndarray:
    """The values a new window can still reach: all but the oldest of a full deque."""
    items = list(values)
    if len(items) == values.maxlen:
        items = items[1:]
    return np.array(items, dtype=np.float64)


class MACD:
    """Moving average convergence/divergence: ``macd`` = EMA(fast) - EMA(slow) of the input,
    ``signal`` = EMA(signal) of ``macd``, ``histogram`` = ``macd - signal``; ``value`` is
    ``macd``.

    As TA-Lib computes it, both averages start on the same bar: at bar ``slow - 1`` the slow
    one is the mean of the first ``slow`` values and the fast one the mean of the last ``fast``
    of them; the signal line is seeded with the mean of its first ``signal`` MACD values. Ready
    after ``slow + signal - 1`` values; every output is 0.0 until then.
    """

    __slots__ = ("_count", "_fast", "_recent", "_sig_sum", "_signal", "_slow", "_slow_sum",
                 "fast", "histogram", "macd", "signal", "signal_window", "slow")

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        fast = check_period("fast", fast)
        slow = check_period("slow", slow)
        if fast >= slow:
            raise ValueError(f"fast ({fast}) must be shorter than slow ({slow})")
        self.fast = fast
        self.slow = slow
        self.signal_window = check_period("signal", signal)
        self._count = 0
        self._recent: deque[float] = deque(maxlen=fast)
        self._slow_sum: float = 0
        self._fast = 0.0
        self._slow = 0.0
        self._sig_sum = 0.0
        self._signal = 0.0
        self.macd = 0.0
        self.signal = 0.0
        self.histogram = 0.0

    @property
    def value(self) -> float:
        return self.macd

    @property
    def ready(self) -> bool:
        return self._count >= self.slow + self.signal_window - 1

    def update(self, value: float) -> float:
        count = self._count + 1
        self._count = count
        slow_n = self.slow
        if count < slow_n:
            self._recent.append(value)
            self._slow_sum += value
            return self.macd
        if count == slow_n:
            self._recent.append(value)
            self._slow_sum += value
            total: float = 0
            for v in self._recent:
                total += v
            self._fast = float(total) / self.fast
            self._slow = float(self._slow_sum) / slow_n
        else:
            self._fast = (value - self._fast) * (2.0 / (self.fast + 1)) + self._fast
            self._slow = (value - self._slow) * (2.0 / (slow_n + 1)) + self._slow
        line = self._fast - self._slow
        filled = count - slow_n + 1  # MACD values so far
        n = self.signal_window
        if filled < n:
            self._sig_sum += line
            return self.macd
        if filled == n:
            self._sig_sum += line
            self._signal = self._sig_sum / n
        else:
            self._signal = (line - self._signal) * (2.0 / (n + 1)) + self._signal
        self.macd = line
        self.signal = self._signal
        self.histogram = line - self._signal
        return self.macd

    def update_many(self, values: ArrayLike) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """``update`` for each value in turn: ({"macd", "signal", "histogram"}, ready). A
        recursion: the same loop as ``update`` (vectorising it would change its rounding)."""
        items = number_input(values)
        before = self._count
        m = len(items)
        macd, signal = [0.0] * m, [0.0] * m
        k = 0
        while k < m and not self.ready:
            self.update(items[k])
            macd[k], signal[k] = self.macd, self.signal
            k += 1
        if k < m:
            fast, slow, sig = self._fast, self._slow, self._signal
            kf = 2.0 / (self.fast + 1)
            ks = 2.0 / (self.slow + 1)
            kg = 2.0 / (self.signal_window + 1)
            for j in range(k, m):
                x = items[j]
                fast = (x - fast) * kf + fast
                slow = (x - slow) * ks + slow
                line = fast - slow
                sig = (line - sig) * kg + sig
                macd[j] = line
                signal[j] = sig
            self._fast, self._slow, self._signal = fast, slow, sig
            self.macd, self.signal = macd[-1], sig
            self.histogram = self.macd - sig
            self._count = before + m
        macd_a = np.array(macd, dtype=np.float64)
        signal_a = np.array(signal, dtype=np.float64)
        ready = ready_after(before, m, self.slow + self.signal_window - 1)
        histogram = np.where(ready, macd_a - signal_a, 0.0)
        return {"macd": macd_a, "signal": signal_a, "histogram": histogram}, ready

    def state(self) -> dict[str, Any]:
        """Plain data to continue exactly where this left off (a strategy's ``save``)."""
        return {"kind": "macd", "fast": self.fast, "slow": self.slow,
                "signal": self.signal_window, "count": self._count,
                "recent": list(self._recent), "slow_sum": self._slow_sum,
                "fast_ema": self._fast, "slow_ema": self._slow, "signal_sum": self._sig_sum,
                "signal_ema": self._signal}

    def load_state(self, state: dict[str, Any]) -> None:
        check_saved(state, "macd", {"fast": self.fast, "slow": self.slow,
                                    "signal": self.signal_window})
        self._count = int(state["count"])
        self._recent = deque(state["recent"], maxlen=self.fast)
        self._slow_sum = state["slow_sum"]
        self._fast = float(state["fast_ema"])
        self._slow = float(state["slow_ema"])
        self._sig_sum = float(state["signal_sum"])
        self._signal = float(state["signal_ema"])
        if self.ready:
            self.macd = self._fast - self._slow
            self.signal = self._signal
            self.histogram = self.macd - self._signal
        else:
            self.macd = self.signal = self.histogram = 0.0
