"""How often Python's cyclic garbage collector runs while a run allocates its records.

A run allocates millions of short-lived immutable records (orders, fills) and keeps the ones
not yet written in buffers. With the interpreter's default thresholds (a young collection every
700 net allocations) the collector scans those buffers again and again, and each full
collection walks every live object: on a 1,000,000-bar order-heavy backtest that was about
0.8 s of collector time, against 0.1 s with the spacing below. The records hold no reference
cycles, so spacing collections out frees nothing later that matters; the collector still runs
(every ``YOUNG`` net allocations) and anything cyclic is still collected.

This is process-wide state, set at the edge (the runs layer), never in the engine, and put
back on exit. See docs/performance.md.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG = 50_000
"""Net allocations of tracked objects between young collections (default 700)."""
MIDDLE = 20
"""Young collections between middle ones (default 10)."""
OLD = 100
"""Middle collections between full ones (default 10)."""


@contextmanager
def spaced_collections() -> Iterator[None]:
    """Collect less often inside the block; the thresholds before it are restored after it
    (nested blocks restore what they found)."""
    before = gc.get_threshold()
    gc.set_threshold(YOUNG, MIDDLE, OLD)
    try:
        yield
    finally:
        gc.set_threshold(*before)
