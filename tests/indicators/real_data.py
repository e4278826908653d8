"""The real bars of tests/data in integer ticks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class Bars:
    """One file's bars: prices in integer ticks of ``10**-decimals``, volume as given."""

    name: str
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def column(self, name: str) -> np.ndarray:
        column: np.ndarray = getattr(self, name)
        return column


def read_bars(name: str, path: Path, decimals: int) -> Bars:
    """Read a snapshot and turn its prices into ticks, checking that nothing but float noise
    is lost."""
    table = pq.read_table(path)
    scale = 10 ** decimals
    prices = {}
    for field in ("open", "high", "low", "close"):
        values = table.column(field).to_numpy()
        ticks = np.rint(values * scale).astype(np.int64)
        # on the grid up to float noise (MSFT's adjusted prices carry some in the last bits)
        assert np.allclose(ticks / scale, values, rtol=1e-12, atol=0), f"{name} {field}"
        prices[field] = ticks
    return Bars(name, table.column("ts").cast(pa.int64()).to_numpy(), prices["open"],
                prices["high"], prices["low"], prices["close"],
                table.column("volume").to_numpy().astype(np.float64))
