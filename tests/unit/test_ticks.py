"""data/ticks.py: the price conversion every feed applies, without any file."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from weltklassebot.data.ticks import BadPrice, bars_to_chunk

TS = np.arange(4, dtype=np.int64) * 60_000_000_000


def _prices(*columns: list[float]) -> list[np.ndarray]:
    return [np.array(c, dtype=np.float64) for c in columns]


def test_floats_become_exact_ticks_per_symbol_increment() -> None:
    opens = [1.25, 100.5, 1.5, 101.0]
    chunk = bars_to_chunk(TS, _prices(opens, opens, opens, opens), np.ones(4),
                          [Decimal("0.25"), Decimal("0.5")],
                          codes=np.array([0, 1, 0, 1], dtype=np.int32))
    assert chunk.open.tolist() == [5, 201, 6, 202]
    assert chunk.codes is not None
    assert chunk.volume.tolist() == [1.0] * 4


def test_the_first_bad_price_is_named_by_field_then_symbol_then_row() -> None:
    good = [1.0, 1.0, 1.0, 1.0]
    off_grid_low = [1.0, 1.0, 1.0, 1.001]
    off_grid_high = [1.0, 1.003, 1.0, 1.0]
    with pytest.raises(BadPrice) as caught:
        bars_to_chunk(TS, _prices(good, off_grid_high, off_grid_low, good), np.ones(4),
                      [Decimal("0.01"), Decimal("0.01")],
                      codes=np.array([0, 1, 0, 1], dtype=np.int32))
    error = caught.value
    assert (error.field, error.row, error.value) == ("high", 1, 1.003)
    assert "not a multiple of the price_increment 0.01" in error.problem


def test_a_price_below_one_increment_is_refused_not_zero() -> None:
    tiny = [0.001, 1.0, 1.0, 1.0]
    with pytest.raises(BadPrice, match="below one price_increment"):
        bars_to_chunk(TS, _prices(tiny, tiny, tiny, tiny), np.ones(4), [Decimal("0.01")])
