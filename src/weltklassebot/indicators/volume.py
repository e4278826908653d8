"""Volume-weighted average price."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from weltklassebot.indicators._base import INT64_SAFE, ArrayLike, check_saved, fits, int_input


class VWAP:
    """Volume-weighted average of the typical price ``(high + low + close) / 3`` since the
    start of the session: ``sum((h + l + c) * volume) / sum(volume) / 3``.

    ``period_ns`` sets the sessions: a new one starts whenever ``(ts_ns - offset_ns) //
    period_ns`` changes (``period_ns = 86_400 * 10**9``: each UTC day; ``offset_ns`` moves the
    boundary, e.g. to 22:00 UTC). ``None`` (the default) is one session from the first bar.
    Ready once the session has seen volume; 0.0 until then. The sums are floats added in bar
    order (volume is a float), so values equal a plain running sum's.
    """

    __slots__ = ("_pv", "_session", "_volume", "offset_ns", "period_ns", "value")

    def __init__(self, period_ns: int | None = None, offset_ns: int = 0) -> None:
        if period_ns is not None and (isinstance(period_ns, bool) or int(period_ns) != period_ns
                                      or period_ns <= 0):
            raise ValueError(f"period_ns must be a positive whole number of nanoseconds or "
                             f"None, got {period_ns!r}")
        self.period_ns = None if period_ns is None else int(period_ns)
        self.offset_ns = int(offset_ns)
        self._session: int | None = None
        self._pv = 0.0
        self._volume = 0.0
        self.value = 0.0

    @property
    def ready(self) -> bool:
        return self._volume > 0.0

    def _key(self, ts_ns: int) -> int:
        return 0 if self.period_ns is None else (ts_ns - self.offset_ns) // self.period_ns

    def update(self, high: int, low: int, close: int, volume: float, ts_ns: int = 0) -> float:
        session = self._key(ts_ns)
        if session != self._session:
            self._session = session
            self._pv = 0.0
            self._volume = 0.0
        self._pv += (high + low + close) * volume
        self._volume += volume
        self.value = self._pv / self._volume / 3.0 if self._volume > 0.0 else 0.0
        return self.value

    def update_many(self, high: ArrayLike, low: ArrayLike, close: ArrayLike,
                    volume: ArrayLike, ts_ns: ArrayLike | None = None) -> tuple[
                        np.ndarray, np.ndarray]:
        """``update`` for each bar in turn: (VWAP values, ready). Running sums per session
        with ``np.cumsum`` (sequential, so the same sums as ``update``)."""
        highs = int_input(high, "high")
        lows = int_input(low, "low")
        closes = int_input(close, "close")
        volumes = np.asarray(volume, dtype=np.float64)
        m = closes.size
        stamps = (np.zeros(m, dtype=np.int64) if ts_ns is None
                  else np.asarray(ts_ns, dtype=np.int64))
        if not (highs.size == lows.size == volumes.size == stamps.size == m):
            raise ValueError("high, low, close, volume and ts_ns must have the same length")
        if not m:
            return np.zeros(0, dtype=np.float64), np.zeros(0, dtype=bool)
        limit = INT64_SAFE // 2
        keys = (np.zeros(m, dtype=np.int64) if self.period_ns is None
                else (stamps - self.offset_ns) // self.period_ns)
        cuts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
        if not (fits(highs, limit) and fits(lows, limit) and fits(closes, limit)) or (
                cuts.size > m // 8):
            # Many short sessions (or huge prices): bar by bar is quicker, and exact.
            values = np.zeros(m, dtype=np.float64)
            ready = np.zeros(m, dtype=bool)
            for k, (h, lo, c, v, t) in enumerate(zip(highs.tolist(), lows.tolist(),
                                                     closes.tolist(), volumes.tolist(),
                                                     stamps.tolist(), strict=True)):
                values[k] = self.update(h, lo, c, v, t)
                ready[k] = self.ready
            return values, ready
        pv = (highs + lows + closes).astype(np.float64) * volumes
        sums = np.empty(m, dtype=np.float64)
        vols = np.empty(m, dtype=np.float64)
        bounds = [0, *cuts.tolist(), m]
        for a, b in itertools.pairwise(bounds):
            key = int(keys[a])
            if key != self._session:
                self._session, self._pv, self._volume = key, 0.0, 0.0
            # The carry joins the first value, then sequential sums: update's additions.
            part = pv[a:b].copy()
            part[0] = self._pv + part[0]
            np.cumsum(part, out=sums[a:b])
            part = volumes[a:b].copy()
            part[0] = self._volume + part[0]
            np.cumsum(part, out=vols[a:b])
            self._pv, self._volume = float(sums[b - 1]), float(vols[b - 1])
        ready = vols > 0.0
        out = np.zeros(m, dtype=np.float64)
        np.divide(np.divide(sums, vols, out=np.zeros(m), where=ready), 3.0, out=out,
                  where=ready)
        self.value = float(out[-1])
        return out, ready

    def state(self) -> dict[str, Any]:
        """Plain data to continue exactly where this left off (a strategy's ``save``)."""
        return {"kind": "vwap", "period_ns": self.period_ns, "offset_ns": self.offset_ns,
                "session": self._session, "pv": self._pv, "volume": self._volume,
                "value": self.value}

    def load_state(self, state: dict[str, Any]) -> None:
        check_saved(state, "vwap", {"period_ns": self.period_ns, "offset_ns": self.offset_ns})
        session = state["session"]
        self._session = None if session is None else int(session)
        self._pv = float(state["pv"])
        self._volume = float(state["volume"])
        self.value = float(state["value"])
