"""The kernel, compiled once per process, with numba's on-disk cache when it can be had.

Numba looks for a cache directory in this order: ``NUMBA_CACHE_DIR`` (a user's choice), the
``__pycache__`` beside ``kernels.py``, then the user's cache directory (``~/.cache/numba``); it
uses the first writable one. A cache never changes a result: its entries are keyed by the
content of ``kernels.py`` (where every jitted function lives), numba's version, the Python
version and the CPU, and compiled integer code is the same code either way. A cache can still
fail: no writable directory (numba refuses to set up caching), or an entry damaged on disk.
Neither may fail a run, so the first compilation happens here, up front, on a tiny input; if it
fails with the cache, the kernel is compiled again in memory only, for the life of the process.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from weltklassebot.fastpath import kernels as k

_compiled: dict[str, Any] = {}
cached: bool | None = None
"""Whether this process's kernels use the on-disk cache (None before the first compilation)."""


def kernel() -> Any:
    """The compiled ``kernels.run_bars`` (compiled, or loaded from the cache, on first use)."""
    return _get("run_bars")


def rolling() -> Any:
    """The compiled ``kernels.rolling_extreme``."""
    return _get("rolling_extreme")


def renderer() -> Any:
    """The compiled ``kernels.render_equity``."""
    return _get("render_equity")


def warm() -> None:
    """Compile (or load) the kernels now, e.g. before timing runs or in a worker's set-up."""
    kernel()
    rolling()
    renderer()


def _get(name: str) -> Any:
    found = _compiled.get(name)
    if found is None:
        found = _compiled[name] = _compile(name)
    return found


def _compile(name: str) -> Any:
    global cached
    function = getattr(k, name).py_func
    try:
        dispatcher = njit(cache=True, nogil=True)(function)
        _WARM[name](dispatcher)
        if cached is None:
            cached = True
    except Exception:  # no cache directory, or a damaged entry: compile without it
        dispatcher = njit(cache=False, nogil=True)(function)
        _WARM[name](dispatcher)
        cached = False
    return dispatcher


def _warm_kernel(dispatcher: Any) -> None:
    """One call on a tiny input with the argument types of every real run (read-only int64
    columns, as ``runner.run_tables`` passes them): numba compiles that one signature."""
    prm = np.zeros(k.P_SIZE, dtype=np.int64)
    prm[k.P_STRATEGY] = k.SMA_CROSS
    for index in (k.P_A, k.P_QTY, k.P_VNUM, k.P_VDEN, k.P_STEP, k.P_TAKER_DEN, k.P_MAKER_DEN,
                  k.P_SLIP_DEN, k.P_SLIP_BOUND, k.P_LEV_NUM, k.P_LEV_DEN, k.P_QTY_LIMIT,
                  k.P_CASH_LIMIT):
        prm[index] = 1
    prm[k.P_B] = 2
    column = np.ones(2, dtype=np.int64)
    column.flags.writeable = False
    state = np.zeros(4, dtype=np.uint64)
    channel = np.zeros(0, dtype=np.int64)
    st = np.zeros(k.S_SIZE, dtype=np.int64)
    st[k.S_MARK_DEN] = 1
    dispatcher(prm, st, column, column, column, column, column, column, state, state.copy(),
               channel, channel, channel, channel, np.empty(2, dtype=np.int64),
               np.empty(2, dtype=np.int64), np.empty((4, k.B_COLS), dtype=np.int64),
               np.empty((4, k.F_COLS), dtype=np.int64), np.empty((4, k.C_COLS), dtype=np.int64),
               np.empty(4, dtype=np.int64), np.zeros((2, 4), dtype=np.int64), 0)


def _warm_rolling(dispatcher: Any) -> None:
    column = np.ones(2, dtype=np.int64)
    column.flags.writeable = False
    dispatcher(column, 1, 1)


def _warm_renderer(dispatcher: Any) -> None:
    """The renderer's one signature: int64 times and values, an int scale, a uint8 buffer."""
    ts = np.ones(1, dtype=np.int64)
    ts.flags.writeable = False
    dispatcher(ts, np.ones(1, dtype=np.int64), 2, np.empty(64, dtype=np.uint8))


_WARM = {"run_bars": _warm_kernel, "rolling_extreme": _warm_rolling,
         "render_equity": _warm_renderer}
