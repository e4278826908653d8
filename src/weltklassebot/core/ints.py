"""Exact integers in NumPy arrays.

int64 arithmetic wraps silently, so an array of integers (money units, sums, ticks) is int64
only while every value stays below ``INT64_SAFE`` in magnitude, with room for the few additions
a vectorised kernel does; otherwise it holds Python ints (``dtype=object``), exact at any size.
"""

from __future__ import annotations

import numpy as np

INT64_SAFE = 1 << 62


def int_array(values: list[int]) -> np.ndarray:
    """Python ints as int64 when they fit, else as an object array (exact either way)."""
    if not values or max(max(values), -min(values)) < INT64_SAFE:
        return np.array(values, dtype=np.int64)
    return np.array(values, dtype=object)
