"""A snapshot read once for many fast-path runs: one symbol's bars as int64 tick columns.

``prepare`` reads, validates and converts a snapshot exactly as a backtest does (the same
validation, instrument resolution and ingest), so a cell's bars are the engine's bars.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from weltklassebot.config.model import BacktestConfig, DataConfig
from weltklassebot.model.bars import BarChunk
from weltklassebot.model.instrument import Instrument
from weltklassebot.runs.backtest import STEP_BARS, prepare_data

CAP_MAX = 1 << 61
"""A volume cap at or above this fills as much as any order wants (the fast path runs only
quantities far below it); larger caps are stored as this."""


class FallBack(Exception):
    """The fast path cannot give the engine's exact result for this run: run the engine.

    Raised by ``prepare`` (a snapshot of several symbols) and ``run`` (a strategy or setting the
    fast path does not implement, or figures that could overflow int64). Not an error for a
    user: the message says why, for logs and reports.
    """


@dataclass(frozen=True, eq=False)
class Bars:
    """One symbol's bars in event order, in the config's instrument ticks.

    ``data`` is the ``[data]`` section the ticks were made with (without the snapshot's path):
    a run whose config has other settings would read other ticks, so ``run`` refuses it. The
    arrays are read-only; a worker shares one ``Bars`` between all its cells.
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
    steps: tuple[int, ...] = ()
    """The bars a backtest of this file hands the engine at each step (the feed's chunks cut
    into ``STEP_BARS``): the running statistics are merged per step, so the fast path merges
    them at the same places. Empty: steps of ``STEP_BARS`` from the first bar."""

    def __len__(self) -> int:
        return int(self.ts.size)

    # The shape of a sweep's snapshot arrays (``weltklassebot.sweep.data.SnapshotArrays``),
    # so that either can be handed to ``run``.
    @property
    def codes(self) -> None:
        return None

    @property
    def instruments(self) -> dict[str, Instrument]:
        return {self.symbol: self.instrument}

    @property
    def intervals(self) -> dict[str, int]:
        return {self.symbol: self.interval}

    def chunk(self) -> BarChunk:
        """All bars as one engine chunk (views, no copy)."""
        return BarChunk(self.ts, None, self.open, self.high, self.low, self.close, self.volume)



_DERIVED: dict[int, tuple[weakref.ref[np.ndarray], dict[Any, Any]]] = {}


def derived(array: np.ndarray, key: Any, make: Callable[[], Any]) -> Any:
    """What ``make`` computes from ``array``, kept under ``key`` while the array lives: a
    worker's cells share their bars, and what every cell needs from them is made once."""
    ident = id(array)
    entry = _DERIVED.get(ident)
    if entry is None or entry[0]() is not array:

        def forget(_ref: weakref.ref[np.ndarray]) -> None:
            _DERIVED.pop(ident, None)

        entry = (weakref.ref(array, forget), {})
        _DERIVED[ident] = entry
    if key not in entry[1]:
        entry[1][key] = make()
    return entry[1][key]


def volume_caps(volume: np.ndarray, participation: Fraction,
                quantity_increment: Decimal) -> np.ndarray:
    """Per bar, the quantity ticks it can fill in all, exactly as the engine's
    ``_volume_cap``: ``int(Fraction(v) * participation / Fraction(quantity_increment))``.
    Negative caps (which fill nothing) become 0, huge ones ``CAP_MAX``."""
    ratio = participation / Fraction(quantity_increment)
    caps: np.ndarray = derived(volume, ("caps", ratio), lambda: _caps(volume, ratio))
    return caps


def _caps(volume: np.ndarray, ratio: Fraction) -> np.ndarray:
    num, den = ratio.numerator, ratio.denominator
    out = np.empty(volume.size, dtype=np.int64)
    for i, value in enumerate(volume.tolist()):
        top, bottom = float(value).as_integer_ratio()
        scaled = top * num
        cap = scaled // (bottom * den) if scaled >= 0 else 0
        out[i] = cap if cap < CAP_MAX else CAP_MAX
    return out


def prepare(config: BacktestConfig, path: Path | str | None = None) -> Bars:
    """Read the snapshot at ``path`` (default: the config's, else the bundled sample) once,
    through a backtest's own preparation: validated, its instrument and bar interval resolved
    from the config, prices in ticks.

    Raises what a backtest raises for an invalid or unreadable snapshot, and ``FallBack`` for
    a snapshot of several symbols (the fast path runs one).
    """
    if path is not None:
        config = config.model_copy(update={
            "data": config.data.model_copy(update={"snapshot": str(path)})})
    data = prepare_data(config)
    if len(data.instruments) != 1:
        raise FallBack(f"snapshot {data.path} holds {len(data.instruments)} symbols; the fast "
                       "path runs one symbol")
    symbol, instrument = next(iter(data.instruments.items()))
    chunks = list(data.feed().chunks())
    steps = tuple(min(STEP_BARS, len(c) - start) for c in chunks
                  for start in range(0, len(c), STEP_BARS))
    columns = []
    for name in ("ts", "open", "high", "low", "close"):
        parts = [getattr(c, name) for c in chunks]
        columns.append(_frozen(np.concatenate(parts).astype(np.int64, copy=False) if parts
                               else np.zeros(0, dtype=np.int64)))
    volume = _frozen(np.concatenate([c.volume for c in chunks]).astype(np.float64, copy=False)
                     if chunks else np.zeros(0, dtype=np.float64))
    ts, o, h, lo, c = columns
    return Bars(data.path, data.sha256, instrument_settings(config.data), symbol, instrument,
                data.intervals[symbol], ts, o, h, lo, c, volume, steps)


def instrument_settings(data: DataConfig) -> DataConfig:
    """The ``[data]`` settings that make the ticks: all but the snapshot's path."""
    return data.model_copy(update={"snapshot": None})


def _frozen(values: np.ndarray) -> np.ndarray:
    values = np.ascontiguousarray(values)
    values.flags.writeable = False
    return values
