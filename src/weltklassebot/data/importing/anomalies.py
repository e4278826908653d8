"""Heuristics over the rows as read: time order, and runs of bars copied from another time.

Sorting is a fix that is reported (newest-first files, rows out of place); a block of bars whose
open/high/low/close/volume exactly repeats bars at another time is only warned about.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

COPIED_RUN_MIN = 2
"""Shortest run of consecutive bars repeated from another time that is warned about."""


def sort_rows(ts: np.ndarray, codes: np.ndarray, fixes: list[str],
              name_rows: Callable[[np.ndarray], str], what: str,
              tiebreak: np.ndarray | None = None) -> np.ndarray:
    """Return the permutation that sorts by (symbol, ts[, tiebreak]); report what it fixed."""
    n = ts.size
    position = np.arange(n)
    by_symbol = np.argsort(codes, kind="stable")
    same = codes[by_symbol][1:] == codes[by_symbol][:-1]
    step = np.diff(ts[by_symbol])
    back = same & (step < 0)
    forward = same & (step > 0)
    keys: list[np.ndarray] = [position]
    if tiebreak is not None:
        keys.append(tiebreak)
    keys += [ts, codes]
    order = np.lexsort(tuple(keys))
    n_back, n_fwd = int(back.sum()), int(forward.sum())
    if n_back == 0:
        if tiebreak is not None and not np.array_equal(order, position):
            fixes.append(f"{what} with equal times put in id order")
        return order
    if n_back > n_fwd:
        text = (f"rows were newest-first ({n_back:,} of {n_back + n_fwd:,} steps go back in "
                "time): sorted ascending")
        if n_fwd:
            rows = by_symbol[1:][forward]
            text += (f"; {n_fwd} step(s) go forward in time instead, at "
                     f"{name_rows(rows)} (rows out of place in the source)")
    else:
        rows = by_symbol[1:][back]
        text = (f"{n_back} row(s) were out of time order, first at {name_rows(rows)}: "
                "sorted ascending")
    fixes.append(text)
    return order


def copied_runs(ts: np.ndarray, codes: np.ndarray,
                ohlcv: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs of consecutive bars whose OHLCV exactly repeats consecutive bars at another time.

    Returns (first row of the copy, length, first row of the original) for runs of at least
    ``COPIED_RUN_MIN`` bars. Flat bars (high == low) are ignored: illiquid markets repeat them.
    """
    high, low = ohlcv[:, 1], ohlcv[:, 2]
    candidates = np.flatnonzero(np.isfinite(ohlcv).all(axis=1) & (high != low))
    if candidates.size < 2:
        return []
    cols = ohlcv[candidates]
    order = np.lexsort((candidates, cols[:, 4], cols[:, 3], cols[:, 2], cols[:, 1], cols[:, 0],
                        codes[candidates]))
    sorted_rows = candidates[order]
    keyed = np.column_stack((codes[sorted_rows].astype(np.float64), ohlcv[sorted_rows]))
    equal_next = (keyed[1:] == keyed[:-1]).all(axis=1)
    if not equal_next.any():
        return []
    pairs: dict[int, set[int]] = {}
    start = 0
    m = sorted_rows.size
    while start < m - 1:
        end = start + 1
        while end < m and equal_next[end - 1]:
            end += 1
        group = np.sort(sorted_rows[start:end])
        if 1 < group.size <= 20:
            for i in range(group.size):
                for j in range(i + 1, group.size):
                    pairs.setdefault(int(group[j] - group[i]), set()).add(int(group[j]))
        start = end
    runs: list[tuple[int, int, int]] = []
    for delta, copies in sorted(pairs.items()):
        ordered = sorted(copies)
        i = 0
        while i < len(ordered):
            j = i
            shift = int(ts[ordered[i]] - ts[ordered[i] - delta])
            while (j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1
                   and int(ts[ordered[j + 1]] - ts[ordered[j + 1] - delta]) == shift
                   and codes[ordered[j + 1]] == codes[ordered[i]]):
                j += 1
            length = j - i + 1
            if length >= COPIED_RUN_MIN:
                runs.append((ordered[i], length, ordered[i] - delta))
            i = j + 1
    return sorted(runs)
