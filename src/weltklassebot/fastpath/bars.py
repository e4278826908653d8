"""A snapshot read once for many fast-path runs: one symbol's bars as int64 tick columns.

``prepare`` reads, validates and converts a snapshot exactly as a backtest does (the same
validation, instrument resolution and ingest), so a cell's bars are the engine's bars.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np

from weltklassebot.config.model import BacktestConfig, DataConfig
from weltklassebot.data.catalog.integrity import check_catalog_file
from weltklassebot.data.feed import ParquetFeed
from weltklassebot.data.reader import open_snapshot
from weltklassebot.data.validate import require_valid
from weltklassebot.fsutil import sha256_file
from weltklassebot.model.bars import BarChunk
from weltklassebot.model.instrument import Instrument
from weltklassebot.runs.backtest import resolve_instruments, snapshot_path
from weltklassebot.runs.benchmark import MarketTape

CAP_MAX = 1 << 62
"""A volume cap at or above this fills as much as any order wants (the orders of a bar never
ask for as much); larger caps are stored as this."""


class FallBack(Exception):
    """The fast path cannot give the engine's exact result for this run: run the engine.

    Raised by ``prepare`` (a snapshot of several symbols) and ``run`` (a strategy or setting the
    fast path does not implement, or figures that could overflow int64). Not an error for a
    user: the message says why, for logs and reports.
    """


@dataclass(frozen=True, eq=False)
class Bars:
    """One symbol's bars in event order, in the config's instrument ticks.

    ``data`` is the ``[data]`` section the ticks were made with: a run whose config has another
    one would read other ticks, so ``run`` refuses it. The arrays are read-only views; a
    worker can share one ``Bars`` between all its cells.
    """

    path: Path
    sha256: str
    data: DataConfig
    symbol: str
    instrument: Instrument
    interval: int
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    _caps: dict[tuple[Fraction, Decimal], np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return int(self.ts.size)

    def chunk(self) -> BarChunk:
        """All bars as one engine chunk (views, no copy)."""
        return BarChunk(self.ts, None, self.open, self.high, self.low, self.close, self.volume)

    def tape(self) -> MarketTape:
        """The market tape a backtest collects (closes per symbol), for the statistics and
        the buy-and-hold benchmark."""
        tape = MarketTape({self.symbol: self.instrument})
        tape.add(self.chunk())
        return tape

    def volume_caps(self, participation: Fraction, quantity_increment: Decimal) -> np.ndarray:
        """Per bar, the quantity ticks it can fill in all: ``floor(volume * participation)`` in
        quantity ticks, exactly as the engine's ``_volume_cap`` (kept per participation)."""
        key = (participation, quantity_increment)
        found = self._caps.get(key)
        if found is None:
            found = self._caps[key] = volume_caps(self.volume, participation,
                                                  quantity_increment)
        return found


def volume_caps(volume: np.ndarray, participation: Fraction,
                quantity_increment: Decimal) -> np.ndarray:
    """``int(Fraction(v) * participation / Fraction(quantity_increment))`` for every volume
    ``v``, in exact integers; negative caps (which fill nothing) become 0, huge ones
    ``CAP_MAX``."""
    ratio = participation / Fraction(quantity_increment)
    num, den = ratio.numerator, ratio.denominator
    out = np.empty(volume.size, dtype=np.int64)
    for i, value in enumerate(volume.tolist()):
        top, bottom = float(value).as_integer_ratio()
        scaled = top * num
        cap = scaled // (bottom * den) if scaled >= 0 else 0
        out[i] = cap if cap < CAP_MAX else CAP_MAX
    return out


def prepare(config: BacktestConfig, path: Path | str | None = None) -> Bars:
    """Read the snapshot at ``path`` (default: the config's, else the bundled sample) once:
    validated, its instrument and bar interval resolved from the config, prices in ticks.

    Raises what a backtest raises for an invalid or unreadable snapshot, and ``FallBack`` for
    a snapshot of several symbols (the fast path runs one).
    """
    source = Path(path) if path is not None else snapshot_path(config)
    catalog_sha = check_catalog_file(source)
    report = require_valid(source, data=config.data)
    resolved = source.resolve()
    sha = catalog_sha or sha256_file(resolved)
    snapshot = open_snapshot(resolved)
    instruments, intervals = resolve_instruments(config, snapshot, report)
    if len(instruments) != 1:
        raise FallBack(f"snapshot {source} holds {len(instruments)} symbols; the fast path "
                       "runs one symbol")
    symbol = next(iter(instruments))
    feed = ParquetFeed(snapshot, instruments, None if snapshot.has_symbol else symbol,
                       time_ordered=bool(report.facts.get("time_ordered")))
    chunks = list(feed.chunks())
    columns = []
    for name in ("ts", "open", "high", "low", "close"):
        parts = [getattr(c, name) for c in chunks]
        columns.append(_frozen(np.concatenate(parts).astype(np.int64, copy=False) if parts
                               else np.zeros(0, dtype=np.int64)))
    volume = _frozen(np.concatenate([c.volume for c in chunks]).astype(np.float64, copy=False)
                     if chunks else np.zeros(0, dtype=np.float64))
    ts, o, h, lo, c = columns
    return Bars(source, sha, config.data, symbol, instruments[symbol], intervals[symbol], ts, o,
                h, lo, c, volume)


def _frozen(values: np.ndarray) -> np.ndarray:
    values = np.ascontiguousarray(values)
    values.flags.writeable = False
    return values
