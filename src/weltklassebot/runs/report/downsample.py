"""Downsampling for display (never for statistics): the lowest and highest point per bucket.

A series longer than ``2 * buckets`` points is cut into ``buckets`` runs of consecutive points;
from each run the lowest and the highest point are kept, in time order, with the first and the
last point of the series. Every peak and every trough stays on the chart, so a drawdown drawn
from the kept points is as deep as the true one; what is lost is only detail a screen cannot show
(2,000 buckets are about two points per pixel of a wide chart).
"""

from __future__ import annotations

import numpy as np

DISPLAY_BUCKETS = 2000


def minmax_indices(values: np.ndarray, buckets: int = DISPLAY_BUCKETS) -> np.ndarray:
    """Sorted indices of the points kept (all of them for a short series). NaN is skipped.

    In each bucket the first lowest and the first highest point: each bucket's extreme by one
    ``reduceat``, then the first point equal to it at or after the bucket's start."""
    n = int(values.size)
    if n <= 2 * buckets:
        return np.arange(n)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    starts = edges[:-1]
    sizes = np.diff(edges)
    nan = np.isnan(values)
    has_nan = bool(nan.any())
    kept = [np.asarray([0, n - 1])]
    for fill, reduce in ((np.inf, np.minimum), (-np.inf, np.maximum)):
        source = np.where(nan, fill, values) if has_nan else values
        extreme = reduce.reduceat(source, starts)
        at = np.flatnonzero(source == np.repeat(extreme, sizes))
        kept.append(at[np.searchsorted(at, starts)])  # every bucket has one: its extreme
    return np.unique(np.concatenate(kept))


def bucket_first(ts: np.ndarray, start: int, stop: int, buckets: int) -> np.ndarray:
    """Indices of the first of ``ts`` in each of ``buckets`` equal time spans of
    [start, stop]: a cap on markers (entries, exits) that keeps one per span."""
    if ts.size <= buckets or stop <= start:
        return np.arange(ts.size)
    span = (stop - start) / buckets
    slot = np.floor((ts - start) / span).astype(np.int64)
    _, first = np.unique(slot, return_index=True)
    return np.sort(first)
