"""Trend strength: Wilder's average directional index with its two directional indicators."""

from __future__ import annotations

from typing import Any

import numpy as np

from weltklassebot.indicators._base import (
    INT64_SAFE,
    ArrayLike,
    check_period,
    check_saved,
    fits,
    int_input,
)


class ADX:
    """Wilder's ADX over ``window`` bars (default 14), computed as TA-Lib computes it.

    Directional movements and true ranges are summed over bars 1..window-1 and then smoothed
    as ``s = s - s / window + new``; ``plus_di`` / ``minus_di`` = 100 * smoothed DM / smoothed
    TR; DX = 100 * |+DI - -DI| / (+DI + -DI); ``adx`` starts as the mean of the first
    ``window`` DX values and is then smoothed as ``(adx * (window - 1) + dx) / window``. A bar
    with no range or no directional movement at all adds no DX and leaves ``adx`` as it is.
    Ready after ``2 * window`` bars; every output is 0.0 until then. ``value`` is ``adx``.
    """

    __slots__ = ("_count", "_dx_sum", "_mdi", "_mdm", "_pdi", "_pdm", "_prev", "_tr", "adx",
                 "window")

    def __init__(self, window: int = 14) -> None:
        self.window = check_period("window", window, minimum=2)
        self._count = 0  # bars seen, counted up to 2 * window
        self._prev: tuple[int, int, int] | None = None
        self._pdm: float = 0
        self._mdm: float = 0
        self._tr: float = 0
        self._dx_sum = 0.0
        self._pdi = 0.0
        self._mdi = 0.0
        self.adx = 0.0

    @property
    def value(self) -> float:
        return self.adx

    @property
    def ready(self) -> bool:
        return self._count >= 2 * self.window

    @property
    def plus_di(self) -> float:
        return self._pdi if self.ready else 0.0

    @property
    def minus_di(self) -> float:
        return self._mdi if self.ready else 0.0

    def update(self, high: int, low: int, close: int) -> float:
        previous = self._prev
        self._prev = (high, low, close)
        if previous is None:
            self._count = 1
            return self.adx
        prev_high, prev_low, prev_close = previous
        up = high - prev_high
        down = prev_low - low
        plus = up if up > 0 and up > down else 0
        minus = down if down > 0 and down > up else 0
        tr = max(high - low, abs(high - prev_close), abs(low - prev_close))
        self._step(plus, minus, tr)
        return self.adx

    def _step(self, plus: int, minus: int, tr: int) -> None:
        n = self.window
        count = self._count
        if count < n:  # bars 1 .. n-1: plain sums
            self._pdm += plus
            self._mdm += minus
            self._tr += tr
            self._count = count + 1
            return
        pdm = self._pdm - self._pdm / n
        if plus:
            pdm += plus
        mdm = self._mdm - self._mdm / n
        if minus:
            mdm += minus
        trs = self._tr - self._tr / n + tr
        self._pdm, self._mdm, self._tr = pdm, mdm, trs
        dx = None
        if trs != 0.0:
            pdi = 100.0 * (pdm / trs)
            mdi = 100.0 * (mdm / trs)
            self._pdi, self._mdi = pdi, mdi
            total = mdi + pdi
            if total != 0.0:
                dx = 100.0 * (abs(mdi - pdi) / total)
        else:
            self._pdi = self._mdi = 0.0
        if count < 2 * n:  # bars n .. 2n-1: the first n DX values
            if dx is not None:
                self._dx_sum += dx
            self._count = count + 1
            if count + 1 == 2 * n:
                self.adx = self._dx_sum / n
        elif dx is not None:
            self.adx = (self.adx * (n - 1) + dx) / n

    def update_many(self, high: ArrayLike, low: ArrayLike, close: ArrayLike) -> tuple[
            dict[str, np.ndarray], np.ndarray]:
        """``update`` for each bar in turn: ({"adx", "plus_di", "minus_di"}, ready). The
        movements and true ranges are vectorised; Wilder's recursions are ``update``'s."""
        highs = int_input(high, "high")
        lows = int_input(low, "low")
        closes = int_input(close, "close")
        m = closes.size
        if not (highs.size == lows.size == m):
            raise ValueError("high, low and close must have the same length")
        out = {name: np.zeros(m, dtype=np.float64) for name in ("adx", "plus_di", "minus_di")}
        ready = np.zeros(m, dtype=bool)
        if not m:
            return out, ready
        limit = INT64_SAFE // 2
        start = 0
        if self._prev is None:
            self.update(int(highs[0]), int(lows[0]), int(closes[0]))
            start = 1
        prev_h, prev_l, prev_c = self._prev or (0, 0, 0)
        if not (fits(highs, limit) and fits(lows, limit) and fits(closes, limit)) or max(
                abs(prev_h), abs(prev_l), abs(prev_c)) >= limit:
            steps = [(int(h), int(lo), int(c)) for h, lo, c in zip(
                highs.tolist()[start:], lows.tolist()[start:], closes.tolist()[start:],
                strict=True)]
            for k, (h, lo, c) in enumerate(steps, start):
                self.update(h, lo, c)
                ready[k] = self.ready
                out["adx"][k], out["plus_di"][k], out["minus_di"][k] = (
                    self.adx, self.plus_di, self.minus_di)
            return out, ready
        hs = np.concatenate((np.array([prev_h], dtype=np.int64), highs[start:]))
        ls = np.concatenate((np.array([prev_l], dtype=np.int64), lows[start:]))
        cs = np.concatenate((np.array([prev_c], dtype=np.int64), closes[start:]))
        up = hs[1:] - hs[:-1]
        down = ls[:-1] - ls[1:]
        plus = np.where((up > 0) & (up > down), up, 0).tolist()
        minus = np.where((down > 0) & (down > up), down, 0).tolist()
        tr = np.maximum(np.maximum(hs[1:] - ls[1:], np.abs(hs[1:] - cs[:-1])),
                        np.abs(ls[1:] - cs[:-1])).tolist()
        adx, pdi, mdi = out["adx"], out["plus_di"], out["minus_di"]
        step = self._step
        need = 2 * self.window
        for k in range(len(tr)):
            step(plus[k], minus[k], tr[k])
            if self._count >= need:
                at = start + k
                ready[at] = True
                adx[at], pdi[at], mdi[at] = self.adx, self._pdi, self._mdi
        self._prev = (int(hs[-1]), int(ls[-1]), int(cs[-1]))
        return out, ready

    def state(self) -> dict[str, Any]:
        """Plain data to continue exactly where this left off (a strategy's ``save``)."""
        return {"kind": "adx", "window": self.window, "count": self._count,
                "prev": None if self._prev is None else list(self._prev), "pdm": self._pdm,
                "mdm": self._mdm, "tr": self._tr, "dx_sum": self._dx_sum, "pdi": self._pdi,
                "mdi": self._mdi, "adx": self.adx}

    def load_state(self, state: dict[str, Any]) -> None:
        check_saved(state, "adx", {"window": self.window})
        self._count = int(state["count"])
        prev = state["prev"]
        self._prev = None if prev is None else (int(prev[0]), int(prev[1]), int(prev[2]))
        self._pdm = state["pdm"]
        self._mdm = state["mdm"]
        self._tr = state["tr"]
        self._dx_sum = float(state["dx_sum"])
        self._pdi = float(state["pdi"])
        self._mdi = float(state["mdi"])
        self.adx = float(state["adx"])
