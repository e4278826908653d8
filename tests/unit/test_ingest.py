"""data/ingest.py: floats -> integer ticks once, event order, chunking, streaming."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from itertools import pairwise
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from support.bars import HOUR, T0, Row, bars_table, read_rows, timed, write_snapshot, write_table
from weltklassebot.data.ingest import iter_chunks
from weltklassebot.data.reader import open_snapshot
from weltklassebot.errors import InvalidSnapshot
from weltklassebot.model.instrument import DEFAULT_INCREMENT, Instrument, MoneySpec

USD = MoneySpec("USD", DEFAULT_INCREMENT)


def inst(symbol: str = "X", price: str = "0.00000001") -> Instrument:
    return Instrument(symbol, Decimal(price), DEFAULT_INCREMENT, USD)


def test_prices_become_exact_ticks(tmp_path: Path) -> None:
    rows = timed([(0.1, 0.30000000000000004, 0.07533, 2461.99, 5.5),
                  (1e-8, 2e-8, 1e-8, 2e-8, 0.0)])
    path = write_snapshot(tmp_path / "p.parquet", rows)
    (chunk,) = iter_chunks(open_snapshot(path), {"X": inst()}, "X")
    assert chunk.codes is None
    assert chunk.open.tolist() == [10_000_000, 1]
    assert chunk.high.tolist() == [30_000_000, 2]
    assert chunk.low.tolist() == [7_533_000, 1]
    assert chunk.close.tolist() == [246_199_000_000, 2]
    assert chunk.volume.tolist() == [5.5, 0.0]
    assert chunk.ts.tolist() == [T0, T0 + HOUR]
    assert chunk.open.dtype == np.int64


@pytest.mark.parametrize(("increment", "price", "ticks"),
                         [("0.01", 100.13, 10013), ("0.01", 0.01, 1), ("0.25", 100.25, 401),
                          ("5", 15.0, 3), ("1", 3.0, 3), ("0.03", 0.09, 3),
                          ("0.01", 100.12999999999998, 10013)])
def test_other_increments(tmp_path: Path, increment: str, price: float, ticks: int) -> None:
    path = write_snapshot(tmp_path / "p.parquet", timed([(price, price, price, price, 1)]))
    (chunk,) = iter_chunks(open_snapshot(path), {"X": inst(price=increment)}, "X")
    assert chunk.close.tolist() == [ticks]


@pytest.mark.parametrize(("increment", "price", "problem"),
                         [("0.01", 100.125, "not a multiple of the price_increment 0.01"),
                          ("0.25", 100.3, "not a multiple of the price_increment 0.25"),
                          ("5", 12.5, "not a multiple of the price_increment 5"),
                          ("0.01", 0.004, r"below one price_increment \(0.01\)"),
                          ("0.00000001", 1e-9, "would become 0 ticks")])
def test_prices_that_do_not_survive_conversion_are_refused(tmp_path: Path, increment: str,
                                                           price: float, problem: str) -> None:
    # Never rounded to a neighbouring tick or to 0: the run stops naming the row (exit 1).
    rows = timed([(10, 10, 10, 10, 1), (price, price, price, price, 1)])
    path = write_snapshot(tmp_path / "p.parquet", rows)
    with pytest.raises(InvalidSnapshot, match=rf"open at row 1 \(ts .*\) is .*{problem}"):
        list(iter_chunks(open_snapshot(path), {"X": inst(price=increment)}, "X"))


def test_too_large_for_exact_ticks_is_refused(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path / "big.parquet", timed([(1e9, 1e9, 1e9, 1e9, 1)] * 2))
    with pytest.raises(InvalidSnapshot, match=r"open at row 0 .* coarser price_increment"):
        list(iter_chunks(open_snapshot(path), {"X": inst()}, "X"))


def test_float32_prices_are_judged_at_float32_precision(tmp_path: Path) -> None:
    # 2461.99 as float32 is 2461.989990234375: on the cent grid within float32's rounding, but
    # float32 cannot tell ticks of 1e-8 apart at that price.
    rows = timed([(2461.99, 2461.99, 2461.99, 2461.99, 1)])
    path = write_table(tmp_path / "f32.parquet", bars_table(rows, prices_as=pa.float32()))
    (chunk,) = iter_chunks(open_snapshot(path), {"X": inst(price="0.01")}, "X")
    assert chunk.close.tolist() == [246199]
    with pytest.raises(InvalidSnapshot, match="coarser price_increment"):
        list(iter_chunks(open_snapshot(path), {"X": inst()}, "X"))


def test_single_symbol_streams_in_chunks_of_the_requested_size(tmp_path: Path,
                                                               msft_daily: Path) -> None:
    chunks = list(iter_chunks(open_snapshot(msft_daily), {"X": inst()}, "X", chunk_rows=1000))
    assert [len(c) for c in chunks][:2] == [1000, 1000]
    assert sum(len(c) for c in chunks) == 7983
    ts = np.concatenate([c.ts for c in chunks])
    rows = read_rows(msft_daily)
    assert ts.tolist() == [r[0] for r in rows]
    close = np.concatenate([c.close for c in chunks])
    assert close.tolist() == [
        int((Decimal(repr(r[4])) * 10**8).to_integral_value(ROUND_HALF_EVEN)) for r in rows]


def test_multi_symbol_is_ordered_by_time_then_symbol_name(tmp_path: Path) -> None:
    rows = [(T0 + HOUR, 2, 2, 2, 2, 1), (T0, 1, 1, 1, 1, 1), (T0, 3, 3, 3, 3, 1),
            (T0 + HOUR, 4, 4, 4, 4, 1)]
    table = bars_table(rows, symbols=["B", "B", "A", "A"])
    snapshot = open_snapshot(write_table(tmp_path / "m.parquet", table))
    insts = {"A": inst("A"), "B": inst("B", price="0.5")}
    (chunk,) = iter_chunks(snapshot, insts, None)
    assert chunk.ts.tolist() == [T0, T0, T0 + HOUR, T0 + HOUR]
    assert chunk.codes is not None
    assert chunk.codes.tolist() == [0, 1, 0, 1]  # A before B at each instant
    assert chunk.close.tolist() == [3 * 10**8, 2, 4 * 10**8, 4]


def test_multi_symbol_chunks_never_split_an_instant(tmp_path: Path) -> None:
    rows: list[Row] = []
    symbols: list[str] = []
    for i in range(10):
        for s in ("A", "B", "C"):
            rows.append((T0 + i * HOUR, 1, 1, 1, 1, 1))
            symbols.append(s)
    snapshot = open_snapshot(write_table(tmp_path / "m.parquet", bars_table(rows,
                                                                           symbols=symbols)))
    insts = {s: inst(s) for s in "ABC"}
    chunks = list(iter_chunks(snapshot, insts, None, chunk_rows=4))
    assert sum(len(c) for c in chunks) == 30
    for before, after in pairwise(chunks):
        assert before.ts[-1] < after.ts[0]
    assert all(len(c) % 3 == 0 for c in chunks)
