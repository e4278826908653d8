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

from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from weltklassebot.indicators.rolling import RollingMax, RollingMin

_FIELDS = ("open", "high", "low", "close")
_ROW = (*_FIELDS, "volume", "ts")  # a one-bar step's values, in this order
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

    def one(self, row: dict[str, Any]) -> tuple[Any, bool]:
        """Value and readiness for a single bar (a live step), as plain Python values; the
        same as ``compute`` on a one-bar chunk (which this falls back to; volume stays a
        float)."""
        values, ready = self.compute({
            k: np.array([v], dtype=np.float64 if isinstance(v, float)
                        else np.int64 if abs(v) < _INT64_SAFE else object)
            for k, v in row.items()})
        value = values[0]
        return (value.item() if hasattr(value, "item") else value), bool(ready[0])

    def kernel_state(self) -> dict[str, Any]:
        """The kernel's state between chunks, as plain data (the engine state record)."""
        return {}

    def load_kernel_state(self, state: dict[str, Any]) -> None:
        """Continue from ``kernel_state``'s data."""


class _WindowSeries(Series):
    """A series over the last ``window`` values of one price field, and the bars seen."""

    __slots__ = ("_seen", "field", "window")

    def __init__(self, field: str, window: int) -> None:
        super().__init__()
        if field not in _FIELDS:
            raise ValueError(f"field must be one of {', '.join(_FIELDS)}, not {field!r}")
        if window < 1:
            raise ValueError("window must be >= 1")
        self.field = field
        self.window = window
        self._seen = 0


def _checked_seen(series: _WindowSeries, state: dict[str, Any], tail: int) -> int:
    """The saved count of bars seen, which must agree with the saved tail: the last
    min(seen, window - 1) values (the one-bar steps rely on it)."""
    seen = int(state["seen"])
    if seen < 0 or tail != min(seen, series.window - 1):
        raise ValueError(f"saved series {state.get('kind')}({series.field}, {series.window}) "
                         f"holds {tail} past values after {seen} bars, not "
                         f"{min(max(seen, 0), series.window - 1)}: the saved state is damaged")
    return seen


class RollingSumSeries(_WindowSeries):
    """Exact integer sum of the last ``window`` values of a price field (ticks).

    Two forms of the same window: over chunks, the tail as an array (vector sums); one bar at
    a time (a live step), the tail as a deque with its running total (O(1) per bar, plain
    integers). Each switches to the other when the engine changes how it steps.
    """

    __slots__ = ("_queue", "_tail", "_total")

    def __init__(self, field: str, window: int) -> None:
        super().__init__(field, window)
        self._tail = np.zeros(0, dtype=np.int64)
        self._queue: deque[int] | None = None  # the tail while stepping one bar at a time
        self._total = 0  # the queue's sum

    def _tail_array(self) -> np.ndarray:
        """The tail as an array (from the queue when the last bars came one at a time)."""
        queue = self._queue
        if queue is not None:
            tail = list(queue)
            self._tail = np.array(tail, dtype=np.int64 if all(
                abs(v) < _INT64_SAFE for v in tail) else object)
            self._queue = None
        return self._tail

    def compute(self, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        values = columns[self.field]
        n = values.size
        if n == 1:
            total, full = self.one_value(int(values[0]))
            return (np.array([total], dtype=object if abs(total) >= _INT64_SAFE else np.int64),
                    np.array([full]))
        tail = self._tail_array()
        ext = np.concatenate((tail, values))
        if ext.size and int(np.abs(ext).max()) * self.window >= _INT64_SAFE:
            sums = _rolling_sum_exact(ext.tolist(), self.window)
        else:
            # Prefix sums wrap modulo 2**64 on overflow, but every window sum fits in int64,
            # so the differences are still exact.
            prefix = np.concatenate(([0], np.cumsum(ext, dtype=np.int64)))
            start = np.maximum(np.arange(1, ext.size + 1) - self.window, 0)
            with np.errstate(over="ignore"):
                sums = prefix[1:] - prefix[start]
        sums = sums[tail.size:]
        seen = self._seen + np.arange(1, n + 1)
        ready = seen >= self.window
        keep = min(self.window - 1, ext.size)
        self._tail = ext[ext.size - keep:] if keep else np.zeros(0, dtype=np.int64)
        self._seen += n
        return sums, ready

    def one(self, row: dict[str, Any]) -> tuple[Any, bool]:
        return self.one_value(row[self.field])

    def one_value(self, value: int) -> tuple[int, bool]:
        """The sum with one more bar's ``value``, and whether the window is full."""
        queue = self._queue
        if queue is None:
            queue = self._queue = deque(int(v) for v in self._tail.tolist())
            self._total = sum(queue)
        # The queue holds the last min(seen, window - 1) values: with this one it holds a
        # whole window exactly when the window is full (a window of 1 included).
        total = self._total + value
        self._seen += 1
        queue.append(value)
        if len(queue) < self.window:
            self._total = total
            return total, False
        self._total = total - queue.popleft()
        return total, True

    def kernel_state(self) -> dict[str, Any]:
        tail = list(self._queue) if self._queue is not None else self._tail.tolist()
        return {"kind": "rolling_sum", "field": self.field, "window": self.window,
                "tail": [int(v) for v in tail], "seen": self._seen}

    def load_kernel_state(self, state: dict[str, Any]) -> None:
        if (state.get("kind"), state.get("field"), state.get("window")) != (
                "rolling_sum", self.field, self.window):
            raise ValueError(f"saved series {state.get('kind')}({state.get('field')}, "
                             f"{state.get('window')}) is not rolling_sum({self.field}, "
                             f"{self.window}): the strategy declared other series")
        tail = [int(v) for v in state["tail"]]
        self._seen = _checked_seen(self, state, len(tail))
        self._tail = (np.array(tail, dtype=np.int64) if all(abs(v) < _INT64_SAFE for v in tail)
                      else np.array(tail, dtype=object))
        self._queue = None


class RollingMaxSeries(_WindowSeries):
    """Exact highest value of a price field over the last ``window`` bars (ticks); before
    ``window`` bars are seen, the highest so far (``ready`` says when the window is full).
    ``RollingMinSeries`` is the same for the lowest.

    Over chunks the extremes are vector passes over the tail and the chunk. One bar at a time
    (a live step) the series steps, beside the tail, the ``RollingMax`` indicator (its
    monotonic queue of the bars that can still be the window's extreme): O(1) per bar,
    amortised, whatever the window."""

    __slots__ = ("_queue", "_tail")
    _kind = "rolling_max"
    _reduce: np.ufunc = np.maximum
    _indicator: type[RollingMax] | type[RollingMin] = RollingMax

    def __init__(self, field: str, window: int) -> None:
        super().__init__(field, window)
        self._tail: deque[int] = deque()  # the last window - 1 values, oldest first
        # The one-bar path's indicator; None: to be built from the tail (after a chunk or a
        # restore).
        self._queue: RollingMax | RollingMin | None = None

    def compute(self, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        values = columns[self.field]
        n = values.size
        window = self.window
        tail = self._tail
        if n == 1:
            extreme, full = self._step(int(values[0]))
            big = abs(extreme) >= _INT64_SAFE
            return np.array([extreme], dtype=object if big else np.int64), np.array([full])
        if not n:
            return values[:0], np.zeros(0, dtype=bool)
        fits = all(abs(v) < _INT64_SAFE for v in tail)
        head = np.array(tail, dtype=np.int64 if fits else object)
        if values.dtype == object and head.dtype != object:
            head = head.astype(object)
        elif values.dtype != object and head.dtype == object:
            values = values.astype(object)
        ext = np.concatenate((head, values))
        out = _window_extreme(ext, window, self._reduce)[head.size:]
        self._seen += n
        self._tail = deque(int(v) for v in ext[max(ext.size - window + 1, 0):].tolist()) if (
            window > 1) else deque()
        self._queue = None
        ready = (self._seen - n + np.arange(1, n + 1)) >= window
        return out, ready

    def one(self, row: dict[str, int]) -> tuple[Any, bool]:
        return self._step(row[self.field])

    def _step(self, value: int) -> tuple[int, bool]:
        # One bar (a live step): plain integers, no array set-up.
        queue = self._queue
        if queue is None:
            queue = self._queue = self._indicator(self.window)
            for past in self._tail:  # the last bars seen, none yet out of the window
                queue.update(past)
        extreme = queue.update(value)
        seen = self._seen = self._seen + 1
        window = self.window
        tail = self._tail
        tail.append(value)
        if len(tail) >= window:
            tail.popleft()
        return extreme, seen >= window

    def kernel_state(self) -> dict[str, Any]:
        return {"kind": self._kind, "field": self.field, "window": self.window,
                "tail": list(self._tail), "seen": self._seen}

    def load_kernel_state(self, state: dict[str, Any]) -> None:
        if (state.get("kind"), state.get("field"), state.get("window")) != (
                self._kind, self.field, self.window):
            raise ValueError(f"saved series {state.get('kind')}({state.get('field')}, "
                             f"{state.get('window')}) is not {self._kind}({self.field}, "
                             f"{self.window}): the strategy declared other series")
        self._tail = deque(int(v) for v in state["tail"])
        self._seen = _checked_seen(self, state, len(self._tail))
        self._queue = None


class RollingMinSeries(RollingMaxSeries):
    """Exact lowest value of a price field over the last ``window`` bars (ticks)."""

    __slots__ = ()
    _kind = "rolling_min"
    _reduce: np.ufunc = np.minimum
    _indicator = RollingMin


def _window_extreme(ext: np.ndarray, window: int, reduce: np.ufunc) -> np.ndarray:
    """out[k] = reduce over ext[max(0, k - window + 1) .. k], exact, in O(n) (van Herk /
    Gil-Werman: prefix and suffix extremes within blocks of ``window`` values)."""
    m = ext.size
    if window == 1 or m == 0:
        return ext.copy()
    # Pad the front with the first value (it is in every partial window, so it changes no
    # extreme) and the back up to whole blocks.
    blocks = -(-(m + window - 1) // window)
    padded = np.empty(blocks * window, dtype=ext.dtype)
    padded[:window - 1] = ext[0]
    padded[window - 1:window - 1 + m] = ext
    padded[window - 1 + m:] = ext[-1]
    grid = padded.reshape(blocks, window)
    prefix = reduce.accumulate(grid, axis=1).reshape(-1)
    suffix = reduce.accumulate(grid[:, ::-1], axis=1)[:, ::-1].reshape(-1)
    # The window ending at padded index e = s + window - 1 starts at s: reduce(suffix[s],
    # prefix[e]); the windows wanted start at s = 0 .. m - 1.
    result: np.ndarray = reduce(suffix[:m], prefix[window - 1:window - 1 + m])
    return result


class ChangedSeries(Series):
    """1 at bars where any of the given series' value or readiness differs from the bar
    before (and at the very first bar), else 0: a wake hint for strategies whose decision
    depends only on those values."""

    __slots__ = ("_prev", "inputs")

    def __init__(self, inputs: tuple[Series, ...]) -> None:
        super().__init__()
        if not inputs:
            raise ValueError("changed() needs at least one series")
        self.inputs = inputs
        self._prev: list[tuple[Any, bool]] | None = None  # each input at the last bar seen

    def compute_from(self, results: list[tuple[np.ndarray, np.ndarray]]) -> tuple[
            np.ndarray, np.ndarray]:
        n = results[0][0].size
        prev = self._prev
        if n == 1:  # one bar (a live step): plain values
            flag, _ready = self.one_from([
                (values[0].item() if hasattr(values[0], "item") else values[0], bool(ready[0]))
                for values, ready in results])
            return np.array([flag], dtype=np.int8), np.ones(1, dtype=bool)
        changed = np.zeros(n, dtype=bool)
        if not n:
            return changed.astype(np.int8), changed
        for k, (values, ready) in enumerate(results):
            changed[1:] |= values[1:] != values[:-1]
            changed[1:] |= ready[1:] != ready[:-1]
            if prev is not None:
                value, was_ready = prev[k]
                changed[0] |= bool(values[0] != value) or bool(ready[0]) != was_ready
        if prev is None:
            changed[0] = True
        self._prev = [(values[-1].item() if hasattr(values[-1], "item") else values[-1],
                       bool(ready[-1])) for values, ready in results]
        return changed.astype(np.int8), np.ones(n, dtype=bool)

    def one_from(self, now: list[tuple[Any, bool]]) -> tuple[int, bool]:
        """One bar from its inputs' plain (value, ready) pairs."""
        changed = int(self._prev != now)
        self._prev = now
        return changed, True

    def kernel_state(self) -> dict[str, Any]:
        return {"kind": "changed", "prev": None if self._prev is None else [
            [int(v), r] for v, r in self._prev]}

    def load_kernel_state(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "changed":
            raise ValueError(f"saved series {state.get('kind')} is not changed(): the strategy "
                             "declared other series")
        prev = state["prev"]
        self._prev = None if prev is None else [(int(v), bool(r)) for v, r in prev]


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
            crossed, ready_one = self.one_from(int(sa[0]), bool(ra[0]), int(sb[0]), bool(rb[0]))
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

    def one_from(self, sa: int, ra: bool, sb: int, rb: bool) -> tuple[int, bool]:
        """One bar from the two sums and their readiness, plain integers."""
        ready = ra and rb
        diff = sa * self.b.window - sb * self.a.window
        sign = ((diff > 0) - (diff < 0)) if ready else 0
        prev = self._prev_sign
        self._prev_sign = sign
        return (sign if prev and sign and prev != sign else 0), ready

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


_OneBarStep = Callable[..., tuple[Any, bool]]
_Cells = tuple[list[Any], list[bool]]  # a series' one-bar value and readiness cells


class SeriesSet:
    """The series one strategy instance declared, evaluated together per chunk (engine use).

    One bar at a time (a live step), ``step_one`` writes each series' value and readiness
    into one-element cells (``one_values``, ``one_ready``), reused from bar to bar: the engine
    reads them as it reads a chunk's lists at row 0, without building lists per bar.
    """

    __slots__ = ("items", "one_cells", "one_ready", "one_values", "step_one", "wake")

    def __init__(self) -> None:
        self.items: list[Series] = []
        self.wake: Series | None = None
        self.one_values: list[tuple[Series, list[Any]]] = []
        self.one_ready: list[tuple[Series, list[bool]]] = []
        self.one_cells: dict[int, list[Any]] = {}  # id(series) -> its value cell
        # One bar (open, high, low, close, volume, ts): every series' plain value and
        # readiness into its cells. Until the first such bar after a declaration, the call
        # that plans how to step the series declared so far.
        self.step_one: Callable[[tuple[Any, ...]], None] = self._plan_and_step

    def add(self, series: Series) -> None:
        self.items.append(series)
        self.step_one = self._plan_and_step  # plan the one-bar step again, with this one

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
            elif isinstance(series, ChangedSeries):
                values, ready = series.compute_from([results[id(s)] for s in series.inputs])
            else:
                values, ready = series.compute(columns)
            results[id(series)] = (values, ready)
            out.append((series, values, ready))
        return out

    def evaluate_one(self, row: dict[str, Any]) -> list[tuple[Series, Any, bool]]:
        """One bar (a live step) given as open, high, low, close, volume and ts: (handle,
        value, ready) in declaration order, plain values, the same as ``evaluate`` on a
        one-bar chunk."""
        self.step_one(tuple(row[name] for name in _ROW))
        return [(series, value[0], ready[0]) for (series, value), (_s, ready) in
                zip(self.one_values, self.one_ready, strict=True)]

    def _plan_and_step(self, bar: tuple[Any, ...]) -> None:
        self.step_one = self._one_bar_step()
        self.step_one(bar)

    def _one_bar_step(self) -> Callable[[tuple[Any, ...]], None]:
        """The one-bar step of the series declared so far, as one function of straight-line
        code: a live service runs it at every bar, and a loop over the series dispatching on
        their kind, unpacking their plans, costs more than the series' own arithmetic. Each
        series is stepped by its bound one-bar call (a rolling sum's or extreme's with the
        price field it reads, a cross's or ``changed``'s with its inputs' cells, else its
        ``one``, by default its kernel on a one-bar chunk) and its value and readiness stored in its
        cells. The generated text holds only names and indices made here, never user text."""
        cells: dict[int, _Cells] = {id(series): ([None], [False]) for series in self.items}
        index = {id(series): k for k, series in enumerate(self.items)}
        names: dict[str, Any] = {"_int": int, "_row_of": _row_of}
        body: list[str] = []
        needs_row = False
        for k, series in enumerate(self.items):
            own = type(series)
            names[f"v{k}"], names[f"r{k}"] = cells[id(series)]
            step: _OneBarStep

            def cell(of: Series) -> tuple[str, str]:
                j = index[id(of)]  # a cross's or changed()'s inputs are declared series
                return f"v{j}[0]", f"r{j}[0]"

            if isinstance(series, RollingMaxSeries) and own.compute is RollingMaxSeries.compute:
                step, call = series._step, f"f{k}(bar[{_ROW.index(series.field)}])"
            elif isinstance(series, RollingSumSeries) and own.one is RollingSumSeries.one:
                step, call = series.one_value, f"f{k}(bar[{_ROW.index(series.field)}])"
            elif isinstance(series, CrossSeries):
                (va, ra), (vb, rb) = cell(series.a), cell(series.b)
                step, call = series.one_from, f"f{k}(_int({va}), {ra}, _int({vb}), {rb})"
            elif isinstance(series, ChangedSeries):
                pairs = ", ".join(f"({v}, {r})" for v, r in map(cell, series.inputs))
                step, call = series.one_from, f"f{k}([{pairs}])"
            else:  # its own plain one-bar step, or its kernel on a one-bar chunk
                needs_row = True
                step, call = series.one, f"f{k}(row)"
            names[f"f{k}"] = step
            body.append(f"    v{k}[0], r{k}[0] = {call}")
        head = ["def step_one(bar):"]
        if needs_row:
            head.append("    row = _row_of(bar)")
        source = "\n".join((*head, *body, "    return None", ""))
        exec(compile(source, "<series one-bar step>", "exec"), names)
        self.one_values = [(series, cells[id(series)][0]) for series in self.items]
        self.one_ready = [(series, cells[id(series)][1]) for series in self.items]
        self.one_cells = {key: value for key, (value, _ready) in cells.items()}
        stepper: Callable[[tuple[Any, ...]], None] = names["step_one"]
        return stepper

    def wake_indices(self, evaluated: list[tuple[Series, np.ndarray, np.ndarray]]) -> (
            list[int] | None):
        """Chunk positions where the wake series is non-zero; None means every bar."""
        if self.wake is None:
            return None
        for series, values, _ready in evaluated:
            if series is self.wake:
                return [int(i) for i in np.flatnonzero(values)]
        return None


def _row_of(bar: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(_ROW, bar, strict=True))

