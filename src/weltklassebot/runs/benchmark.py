"""The bars' closes per symbol (the market tape), and the buy-and-hold benchmark built on them.

Buy and hold (docs/statistics.md): the initial equity is split equally between the run's
symbols; each share buys its symbol at the close of that symbol's first bar (until then it is
cash) and holds it to the end, frictionless and fractional. Its value at an equity point is the
share times the symbol's last close at or before the point over its first close. The benchmark
has an equity point wherever the strategy has one, so both get the same statistics.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import Any

import numpy as np

from weltklassebot.data.feed import ParquetFeed
from weltklassebot.data.reader import SnapshotFile
from weltklassebot.model.bars import BarChunk
from weltklassebot.model.instrument import Instrument


@dataclass(frozen=True)
class SymbolTape:
    """One symbol's bars: start times (int64 ns) and closes in price ticks (int64)."""

    ts: np.ndarray
    close: np.ndarray
    increment: Decimal

    def prices(self) -> np.ndarray:
        """Closes in the quote currency (float64; computed once, read-only)."""
        return self._prices

    @cached_property
    def _prices(self) -> np.ndarray:
        prices = self.close.astype(np.float64) * float(self.increment)
        prices.setflags(write=False)
        return prices

    @cached_property
    def _increasing(self) -> bool:
        return bool((np.diff(self.ts) > 0).all())

    def close_at(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index of the last bar at or before each point (-1: none yet), and its close price."""
        if (points.size == self.ts.size and self._increasing
                and np.array_equal(points, self.ts)):
            # One point per bar, at the bar's time (a single-symbol run): bar i itself.
            return np.arange(points.size), self._prices
        index = np.searchsorted(self.ts, points, side="right") - 1
        return index, np.where(index >= 0, self._prices[np.maximum(index, 0)], np.nan)


class MarketTape:
    """Collects each symbol's closes from the bar chunks a run steps through."""

    def __init__(self, instruments: dict[str, Instrument]) -> None:
        self.instruments = instruments
        self.names = sorted(instruments)
        self._parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {n: [] for n in self.names}
        self._symbols: dict[str, SymbolTape] | None = None

    def add(self, chunk: BarChunk) -> None:
        if not len(chunk):
            return
        if chunk.codes is None:
            self._parts[self.names[0]].append((chunk.ts.copy(), chunk.close.copy()))
            return
        for code, name in enumerate(self.names):
            mask = chunk.codes == code
            if mask.any():
                self._parts[name].append((chunk.ts[mask], chunk.close[mask]))

    def tap(self, chunks: Iterable[BarChunk]) -> Iterator[BarChunk]:
        """Pass chunks through, keeping their closes."""
        for chunk in chunks:
            self.add(chunk)
            yield chunk

    @property
    def symbols(self) -> dict[str, SymbolTape]:
        if self._symbols is None:
            self._symbols = {}
            for name, parts in self._parts.items():
                ts = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
                close = (np.concatenate([p[1] for p in parts]) if parts
                         else np.zeros(0, np.int64))
                self._symbols[name] = SymbolTape(ts.astype(np.int64), close.astype(np.int64),
                                                 self.instruments[name].price_increment)
            self._parts = {}
        return self._symbols

    @classmethod
    def from_snapshot(cls, snapshot: SnapshotFile, instruments: dict[str, Instrument],
                      *, time_ordered: bool) -> MarketTape:
        """Read the closes again, through the same feed (and tick conversion) as the engine."""
        tape = cls(instruments)
        symbol_of_file = None if snapshot.has_symbol else next(iter(instruments))
        feed = ParquetFeed(snapshot, instruments, symbol_of_file, time_ordered=time_ordered)
        for chunk in feed.chunks():
            tape.add(chunk)
        return tape


def buy_and_hold(tape: MarketTape, points: np.ndarray, initial: float) -> np.ndarray:
    """The benchmark's equity at each equity point (float64, money)."""
    symbols = [s for s in tape.symbols.values() if s.ts.size and s.close[0] > 0]
    if not symbols:
        return np.full(points.size, float(initial))
    share = float(initial) / len(symbols)
    value = np.zeros(points.size, dtype=np.float64)
    for symbol in symbols:
        index, price = symbol.close_at(points)
        first = float(symbol.prices()[0])
        value += np.where(index >= 0, share * price / first, share)
    return value


def benchmark_trades(tape: MarketTape, initial: float) -> list[float]:
    """Each symbol's buy-and-hold PnL, as one trade closed at its last close."""
    symbols = [s for s in tape.symbols.values() if s.ts.size and s.close[0] > 0]
    if not symbols:
        return []
    share = float(initial) / len(symbols)
    return [share * (float(s.close[-1]) / float(s.close[0]) - 1.0) for s in symbols]


def benchmark_exposure(tape: MarketTape, points: np.ndarray, equity: np.ndarray,
                       initial: float) -> float:
    """Mean invested share of the benchmark's equity (1.0 once every symbol is bought)."""
    symbols = [s for s in tape.symbols.values() if s.ts.size and s.close[0] > 0]
    if not symbols or not points.size:
        return 0.0
    share = float(initial) / len(symbols)
    invested = np.zeros(points.size, dtype=np.float64)
    for symbol in symbols:
        index, price = symbol.close_at(points)
        invested += np.where(index >= 0, share * price / float(symbol.prices()[0]), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(equity > 0, invested / equity, 0.0)
    return float(ratio.mean())


def describe() -> dict[str, Any]:
    return {"kind": "buy_and_hold", "weights": "equal, at each symbol's first close",
            "costs": "none"}
