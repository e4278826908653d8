"""Shared pieces of the indicators: parameter and saved-state checks, input arrays.

Every indicator has two ways in: ``update(...)`` for one bar and ``update_many(...)`` for a
whole array of bars. ``update_many`` is vectorised where the maths allows and leaves the
indicator in exactly the state the same bars given one by one would, with the same values to
the bit: both paths do the same floating-point operations in the same order (elementwise NumPy
arithmetic and ``sqrt`` round exactly like Python's; sums of floats are never reordered).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# Integers below this stay exact in int64 through the few additions a vectorised kernel does;
# inputs beyond it take the exact Python-integer path instead.
INT64_SAFE = 1 << 62

ArrayLike = np.ndarray | Sequence[int] | Sequence[float]


def check_period(name: str, value: int, minimum: int = 1) -> int:
    """``value`` as an ``int`` of at least ``minimum``; a clear error otherwise."""
    if isinstance(value, bool) or int(value) != value:
        raise ValueError(f"{name} must be a whole number of bars, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_saved(state: dict[str, Any], kind: str, params: dict[str, Any]) -> None:
    """Refuse a saved state written by another indicator or with other parameters."""
    saved = {key: state.get(key) for key in params}
    if state.get("kind") != kind or saved != params:
        raise ValueError(f"saved state of {state.get('kind')} {saved} is not this indicator's "
                         f"state ({kind} {params}): load it into the indicator that saved it")


def int_input(values: ArrayLike, name: str = "values") -> np.ndarray:
    """An integer input column: int64 when it fits, else an object array of Python ints."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype == object:
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in arr.tolist()):
            raise TypeError(f"{name} must be integers (price ticks)")
        return arr
    if arr.dtype.kind not in "iu":
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64)
        raise TypeError(f"{name} must be integers (price ticks), got {arr.dtype} values")
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) >= 1 << 63:
        return np.array([int(v) for v in arr.tolist()], dtype=object)
    return arr.astype(np.int64, copy=False)


def number_input(values: ArrayLike, name: str = "values") -> list[Any]:
    """A numeric input column as Python numbers (ints stay ints, floats stay floats)."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype != object and arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be numbers, got {arr.dtype} values")
    out: list[Any] = arr.tolist()
    return out


def fits(arr: np.ndarray, limit: int) -> bool:
    """True when ``arr`` is int64 and every |value| is below ``limit``."""
    if arr.dtype == object:
        return False
    if not arr.size:
        return True
    return max(int(arr.max()), -int(arr.min())) < limit


def ready_after(seen_before: int, m: int, needed: int) -> np.ndarray:
    """Readiness of ``m`` new bars when ``seen_before`` came earlier and ``needed`` make it."""
    return (seen_before + np.arange(1, m + 1)) >= needed


def window_sums(ext: np.ndarray, window: int) -> np.ndarray:
    """Sum of the last ``window`` values at every position of ``ext`` (fewer at the start).

    Prefix sums may wrap modulo 2**64 on the way, but each window sum fits in int64 (callers
    check), so the differences are exact.
    """
    prefix = np.concatenate((np.zeros(1, dtype=np.int64), np.cumsum(ext, dtype=np.int64)))
    start = np.maximum(np.arange(1, ext.size + 1) - window, 0)
    with np.errstate(over="ignore"):
        out: np.ndarray = prefix[1:] - prefix[start]
    return out


def sliding_max(ext: np.ndarray, window: int) -> np.ndarray:
    """Maximum of every full window of ``ext`` (van Herk / Gil-Werman: O(len) whatever the
    window), ``len(ext) - window + 1`` values."""
    size = ext.size
    pad = (-size) % window
    blocks = np.concatenate((ext, np.full(pad, ext.min(), dtype=ext.dtype))).reshape(-1, window)
    ahead = np.maximum.accumulate(blocks, axis=1).ravel()
    behind = np.maximum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    starts = np.arange(size - window + 1)
    out: np.ndarray = np.maximum(behind[starts], ahead[starts + window - 1])
    return out


def floats(values: np.ndarray) -> np.ndarray:
    """Integers as float64, each rounded as Python's ``float(int)`` rounds it."""
    if values.dtype == object:
        return np.array([float(v) for v in values.tolist()], dtype=np.float64)
    return values.astype(np.float64)


def running_means(ext: np.ndarray, window: int) -> np.ndarray:
    """Mean of every full window of the floats ``ext``, summed oldest first like
    ``mean_of`` (``len(ext) - window + 1`` values)."""
    count = ext.size - window + 1
    total = ext[:count].copy()
    for j in range(1, window):
        total += ext[j:j + count]
    out: np.ndarray = total / window
    return out


def mean_of(values: Sequence[float]) -> float:
    """Mean of a few floats, summed oldest first (the order ``running_means`` uses)."""
    items = list(values)
    total = items[0]
    for v in items[1:]:
        total += v
    return total / len(items)
