"""Engine-computed indicator series: declared by a strategy in ``on_start``, computed by the
engine chunk by chunk with causal, exact kernels, and read by the strategy one bar at a time.

A handle's ``value`` is its value at the bar whose close event is being handled; the strategy
never receives the arrays, so it cannot look ahead. Kernels carry their state across chunks, so
results do not depend on how the data was cut. Declaring ``wake_on(handle)`` tells the engine
that ``on_bar`` has nothing to do at bars where the handle is 0: the engine then skips those
bars' ``on_bar`` calls (fills, accounting and equity still happen on every bar), which is what
makes signal-driven strategies fast.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_FIELDS = ("open", "high", "low", "close")
_INT64_SAFE = 1 << 62


class Series:
    """A handle on one engine-computed column; ``value`` is the current bar's value."""

    __slots__ = ("ready", "value")

    def __init__(self) -> None:
        self.value = 0
        self.ready = False

    def compute(self, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Values and readiness for one chunk of this symbol's bars (engine use)."""
        raise NotImplementedError

    def kernel_state(self) -> dict[str, Any]:
        """The kernel's state between chunks, as plain data (the engine state record)."""
        return {}

    def load_kernel_state(self, state: dict[str, Any]) -> None:
        """Continue from ``kernel_state``'s data."""


class RollingSumSeries(Series):
    """Exact integer sum of the last ``window`` values of a price field (ticks)."""

    __slots__ = ("_seen", "_tail", "field", "window")

    def __init__(self, field: str, window: int) -> None:
        super().__init__()
        if field not in _FIELDS:
            raise ValueError(f"field must be one of {', '.join(_FIELDS)}, not {field!r}")
        if window < 1:
            raise ValueError("window must be >= 1")
        self.field = field
        self.window = window
        self._tail = np.zeros(0, dtype=np.int64)
        self._seen = 0

    def compute(self, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        values = columns[self.field]
        n = values.size
        if n == 1:
            return self._one(int(values[0]))
        ext = np.concatenate((self._tail, values))
        if ext.size and int(np.abs(ext).max()) * self.window >= _INT64_SAFE:
            sums = _rolling_sum_exact(ext.tolist(), self.window)
        else:
            # Prefix sums wrap modulo 2**64 on overflow, but every window sum fits in int64,
            # so the differences are still exact.
            prefix = np.concatenate(([0], np.cumsum(ext, dtype=np.int64)))
            start = np.maximum(np.arange(1, ext.size + 1) - self.window, 0)
            with np.errstate(over="ignore"):
                sums = prefix[1:] - prefix[start]
        sums = sums[self._tail.size:]
        seen = self._seen + np.arange(1, n + 1)
        ready = seen >= self.window
        keep = min(self.window - 1, ext.size)
        self._tail = ext[ext.size - keep:] if keep else np.zeros(0, dtype=np.int64)
        self._seen += n
        return sums, ready

    def _one(self, value: int) -> tuple[np.ndarray, np.ndarray]:
        # One bar (a live step): plain integers, no array set-up; the same sums as the
        # vector path (the tail holds the window's other values).
        tail = self._tail.tolist()
        total = sum(tail) + value
        self._seen += 1
        keep = self.window - 1
        tail.append(value)
        tail = tail[-keep:] if keep else []
        fits = all(abs(v) < _INT64_SAFE for v in tail)
        self._tail = np.array(tail, dtype=np.int64 if fits else object)
        big = abs(total) >= _INT64_SAFE
        return (np.array([total], dtype=object if big else np.int64),
                np.array([self._seen >= self.window]))

    def kernel_state(self) -> dict[str, Any]:
        return {"kind": "rolling_sum", "field": self.field, "window": self.window,
                "tail": [int(v) for v in self._tail.tolist()], "seen": self._seen}

    def load_kernel_state(self, state: dict[str, Any]) -> None:
        if (state.get("kind"), state.get("field"), state.get("window")) != (
                "rolling_sum", self.field, self.window):
            raise ValueError(f"saved series {state.get('kind')}({state.get('field')}, "
                             f"{state.get('window')}) is not rolling_sum({self.field}, "
                             f"{self.window}): the strategy declared other series")
        tail = [int(v) for v in state["tail"]]
        self._tail = (np.array(tail, dtype=np.int64) if all(abs(v) < _INT64_SAFE for v in tail)
                      else np.array(tail, dtype=object))
        self._seen = int(state["seen"])


class CrossSeries(Series):
    """+1 where the mean of ``a`` crosses above the mean of ``b`` at this bar, -1 below, else 0.

    A cross at bar i needs mean_a < mean_b at i-1 and mean_a > mean_b at i (or the reverse),
    both bars ready; the comparison is exact: ``sum_a * n_b`` vs ``sum_b * n_a``, so a tie is
    never a cross.
    """

    __slots__ = ("_prev_sign", "a", "b")

    def __init__(self, a: RollingSumSeries, b: RollingSumSeries) -> None:
        super().__init__()
        self.a = a
        self.b = b
        self._prev_sign = 0  # sign at the last bar of the previous chunk (0 = tie / not ready)

    def compute_from(self, sa: np.ndarray, ra: np.ndarray, sb: np.ndarray,
                     rb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        na, nb = self.a.window, self.b.window
        if sa.size == 1:  # one bar (a live step): plain integers
            ready_one = bool(ra[0]) and bool(rb[0])
            diff = int(sa[0]) * nb - int(sb[0]) * na
            sign_one = ((diff > 0) - (diff < 0)) if ready_one else 0
            prev_one = self._prev_sign
            crossed = sign_one if prev_one and sign_one and prev_one != sign_one else 0
            self._prev_sign = sign_one
            return np.array([crossed], dtype=np.int8), np.array([ready_one])
        big = sa.size and max(int(np.abs(sa).max()) * nb, int(np.abs(sb).max()) * na)
        if big and big >= _INT64_SAFE:
            diff = sa.astype(object) * nb - sb.astype(object) * na
            sign = np.array([(d > 0) - (d < 0) for d in diff], dtype=np.int8)
        else:
            sign = np.sign(sa * nb - sb * na).astype(np.int8)
        ready = ra & rb
        sign = np.where(ready, sign, 0).astype(np.int8)
        prev = np.concatenate(([self._prev_sign], sign[:-1])).astype(np.int8)
        cross = np.where((prev != 0) & (sign != 0) & (prev != sign), sign, 0).astype(np.int8)
        if sign.size:
            self._prev_sign = int(sign[-1])
        return cross, ready

    def kernel_state(self) -> dict[str, Any]:
        return {"kind": "cross", "prev_sign": self._prev_sign}

    def load_kernel_state(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "cross":
            raise ValueError(f"saved series {state.get('kind')} is not a cross: the strategy "
                             "declared other series")
        self._prev_sign = int(state["prev_sign"])


def _rolling_sum_exact(values: list[int], window: int) -> np.ndarray:
    out: list[int] = []
    total = 0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total)
    return np.array(out, dtype=object)


class SeriesSet:
    """The series one strategy instance declared, evaluated together per chunk (engine use)."""

    __slots__ = ("items", "wake")

    def __init__(self) -> None:
        self.items: list[Series] = []
        self.wake: Series | None = None

    def add(self, series: Series) -> None:
        self.items.append(series)

    def evaluate(self, columns: dict[str, np.ndarray]) -> list[tuple[Series, np.ndarray,
                                                                    np.ndarray]]:
        """Compute every series for a chunk: (handle, values, ready) in declaration order."""
        results: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        out = []
        for series in self.items:
            if isinstance(series, CrossSeries):
                sa, ra = results[id(series.a)]
                sb, rb = results[id(series.b)]
                values, ready = series.compute_from(sa, ra, sb, rb)
            else:
                values, ready = series.compute(columns)
            results[id(series)] = (values, ready)
            out.append((series, values, ready))
        return out

    def wake_indices(self, evaluated: list[tuple[Series, np.ndarray, np.ndarray]]) -> (
            list[int] | None):
        """Chunk positions where the wake series is non-zero; None means every bar."""
        if self.wake is None:
            return None
        for series, values, _ready in evaluated:
            if series is self.wake:
                return [int(i) for i in np.flatnonzero(values)]
        return None
