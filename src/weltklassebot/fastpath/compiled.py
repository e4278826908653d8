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
    """The compiled ``kernels.run_kernel`` (compiled, or loaded from the cache, on first use)."""
    return _get("run_kernel")


def renderer() -> Any:
    """The compiled ``kernels.render_equity``."""
    return _get("render_equity")


def warm() -> None:
    """Compile (or load) the kernels now, e.g. before timing runs or in a worker's set-up."""
    kernel()
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
    columns, as ``runner.run`` passes them): numba compiles that one signature."""
    prm = np.zeros(k.P_SIZE, dtype=np.int64)
    prm[k.P_STRATEGY] = k.SMA_CROSS
    prm[k.P_A] = 1
    prm[k.P_B] = 2
    prm[k.P_QTY] = 1
    prm[k.P_VNUM] = 1
    prm[k.P_VDEN] = 1
    prm[k.P_STEP] = 1
    prm[k.P_TAKER_DEN] = 1
    prm[k.P_MAKER_DEN] = 1
    prm[k.P_SLIP_DEN] = 1
    prm[k.P_SLIP_BOUND] = 1
    prm[k.P_LEV_NUM] = 1
    prm[k.P_LEV_DEN] = 1
    prm[k.P_QTY_LIMIT] = 1
    prm[k.P_CASH_LIMIT] = 1
    column = np.ones(2, dtype=np.int64)
    column.flags.writeable = False
    state = np.zeros(4, dtype=np.uint64)
    dispatcher(prm, column, column, column, column, column, column, state, state.copy())


def _warm_renderer(dispatcher: Any) -> None:
    """The renderer's one signature: int64 times and values, an int scale, a uint8 buffer."""
    ts = np.ones(1, dtype=np.int64)
    ts.flags.writeable = False
    dispatcher(ts, np.ones(1, dtype=np.int64), 2, np.empty(64, dtype=np.uint8))


_WARM = {"run_kernel": _warm_kernel, "render_equity": _warm_renderer}
