"""The parts of the statistics on made-up inputs: round trips through a reversal, chunking,
the annualisation rule, drawdown duration, display downsampling."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from weltklassebot.core.timeutil import NS_PER_DAY, NS_PER_HOUR
from weltklassebot.model.instrument import Instrument, MoneySpec
from weltklassebot.runs.benchmark import MarketTape
from weltklassebot.runs.report.downsample import minmax_indices
from weltklassebot.runs.stats import EquityStats, infer_periods_per_year, return_stats
from weltklassebot.runs.trades import FillRows, round_trips, trade_stats

USD = MoneySpec("USD", Decimal("0.01"))
X = Instrument("X", Decimal("0.01"), Decimal("1"), USD)
MONDAY = 1_704_067_200 * 10**9  # 2024-01-01, a Monday


def _fills(rows: list[tuple[int, int, int, int, int]]) -> FillRows:
    """(ts, side, price ticks, qty, fee units) -> fills of X; notional = price x qty."""
    return FillRows([r[0] for r in rows], ["X"] * len(rows), [r[1] for r in rows],
                    [r[2] for r in rows], [r[3] for r in rows], [r[4] for r in rows],
                    [X.notional(r[3], r[2]) for r in rows])


def _tape(closes: list[int]) -> MarketTape:
    tape = MarketTape({"X": X})
    from weltklassebot.model.bars import BarChunk

    n = len(closes)
    ts = np.arange(n, dtype=np.int64) * NS_PER_HOUR
    c = np.asarray(closes, dtype=np.int64)
    tape.add(BarChunk(ts, None, c, c, c, c, np.ones(n)))
    return tape


def test_a_reversal_closes_one_trip_and_opens_the_next() -> None:
    hour = NS_PER_HOUR
    fills = _fills([
        (0, 1, 10_000, 2, 101),          # buy 2 at 100.00
        (2 * hour, -1, 11_000, 5, 333),  # sell 5 at 110.00: closes 2, opens a short of 3
        (5 * hour, 1, 10_500, 3, 99),    # buy 3 at 105.00: flat
        (6 * hour, 1, 10_000, 1, 10),    # buy 1: open at the end
    ])
    trips = round_trips(fills, {"X": X}, _tape([10_000] * 8 + [10_300]))
    assert [(t.side, t.open) for t in trips] == [(1, False), (-1, False), (1, True)]
    first, second, third = trips
    # The sale's notional 55,000 cents and fee 333 are shared 2:3, half-even; the rest opens.
    assert first.pnl == 22_000 - 20_000 - 101 - 133
    assert second.pnl == (33_000 - 31_500) - (333 - 133) - 99
    assert (first.bars_held, second.bars_held) == (2, 3)
    # Marked at the last close, 103.00: the trips add up to the cash and marks exactly.
    assert third.pnl == 10_300 - 10_000 - 10
    cash = sum(-s * n - f for s, n, f in zip(fills.side, fills.notional, fills.fee, strict=True))
    assert sum(t.pnl for t in trips) == cash + 10_300
    stats = trade_stats(trips, USD)
    assert stats["trades"] == 2
    assert stats["win_rate"] == 1.0
    assert stats["profit_factor"] is None  # no losing trade: no finite factor
    # (17.66 + 12.01) / 2 = 14.835, half-even to the cent
    assert stats["expectancy"] == "14.84"


def test_statistics_do_not_depend_on_chunking() -> None:
    rng = np.random.Generator(np.random.PCG64(5))
    equity = (1_000_000 * np.cumprod(1 + rng.normal(0, 0.01, 5000))).astype(np.int64)
    ts = MONDAY + np.arange(5000, dtype=np.int64) * NS_PER_HOUR
    whole = EquityStats(1_000_000)
    whole.update(ts, equity)
    parts = EquityStats(1_000_000)
    for cut in np.array_split(np.arange(5000), 37):
        parts.update(ts[cut], equity[cut])
    a, b = return_stats(whole, 8766), return_stats(parts, 8766)
    for key, value in a.items():
        assert b[key] == pytest.approx(value, rel=1e-11), key
    assert whole.max_dd_duration_ns == parts.max_dd_duration_ns


def test_drawdown_duration_runs_from_peak_to_recovery_or_end() -> None:
    ts = np.arange(8, dtype=np.int64) * NS_PER_DAY
    stats = EquityStats(100)
    stats.update(ts[:4], np.array([110, 100, 105, 110]))  # peak at day 0, back on day 3
    stats.update(ts[4:], np.array([120, 90, 95, 100]))    # peak at day 4, not regained
    assert stats.max_dd_duration_ns == 3 * NS_PER_DAY
    assert return_stats(stats, 252)["max_drawdown_duration_s"] == 3 * 86400
    assert stats.max_drawdown == pytest.approx(0.25)


def test_a_growth_beyond_the_float_range_in_a_year_is_an_undefined_cagr() -> None:
    # Five one-second returns that multiply equity by 17: compounded over a year of seconds,
    # far beyond 1e308. Undefined (None, as JSON has no infinity), not an OverflowError.
    ts = np.arange(6, dtype=np.int64) * 1_000_000_000
    stats = EquityStats(1.0)
    stats.update(ts, np.array([1.0, 1.0, 1.0, 1.0, 1.0, 17.0]))
    result = return_stats(stats, 365.25 * 86400)
    assert result["cagr"] is None
    assert result["calmar"] is None
    assert result["total_return"] == 16.0
    assert return_stats(stats, 1.0)["cagr"] == pytest.approx(17 ** (1 / 6) - 1)


@pytest.mark.parametrize(("step", "days", "expected"), [
    (NS_PER_HOUR, range(28), 24 * 365.25),            # 24/7 hourly
    (NS_PER_DAY, [d for d in range(70) if d % 7 < 5], 252.0),  # weekday daily
    (NS_PER_DAY, range(70), 365.25),                  # daily, every day
    (7 * NS_PER_DAY, range(0, 700, 7), 365.25 / 7),   # weekly
])
def test_periods_per_year_rule(step: int, days: range | list[int], expected: float) -> None:
    stats = EquityStats(100)
    if step < NS_PER_DAY:
        ts = np.array([MONDAY + d * NS_PER_DAY + h * step for d in days for h in range(24)],
                      dtype=np.int64)
    else:
        ts = np.array([MONDAY + d * NS_PER_DAY for d in days], dtype=np.int64)
    stats.update(ts, np.full(ts.size, 100))
    assert infer_periods_per_year(stats, step).periods_per_year == pytest.approx(expected)


def test_downsampling_keeps_every_extreme() -> None:
    rng = np.random.Generator(np.random.PCG64(1))
    values = np.cumsum(rng.normal(0, 1, 100_000))
    keep = minmax_indices(values, 500)
    assert keep.size <= 1002
    assert values[keep].max() == values.max()
    assert values[keep].min() == values.min()
    assert keep[0] == 0
    assert keep[-1] == values.size - 1
    assert np.all(np.diff(keep) > 0)
    assert minmax_indices(values[:800], 500).size == 800


@pytest.mark.parametrize("shape", ["ordered", "constant", "shuffled", "empty", "one"])
def test_distinct_values_and_counts_are_numpys_with_or_without_the_sort(shape: str) -> None:
    from weltklassebot.runs.stats import _distinct

    rng = np.random.Generator(np.random.PCG64(9))
    values = {"ordered": np.sort(rng.integers(-3, 40, 500)), "constant": np.full(300, 60),
              "shuffled": rng.integers(-3, 40, 500), "empty": np.zeros(0, np.int64),
              "one": np.asarray([5])}[shape]
    distinct, counts = _distinct(values)
    expected, expected_counts = np.unique(values, return_counts=True)
    assert distinct.tolist() == expected.tolist()
    assert counts.tolist() == expected_counts.tolist()


def test_equity_file_is_decoded_once_and_read_again_when_it_changes(tmp_path: Path) -> None:
    from weltklassebot.runs.outputs import EquityWriter
    from weltklassebot.runs.results import equity_points, equity_units

    def write(values: list[int]) -> Path:
        path = tmp_path / "equity.parquet"
        writer = EquityWriter(path, USD)
        n = len(values)
        units = np.asarray(values, dtype=np.int64)
        writer.write(np.arange(n, dtype=np.int64), units, units, np.zeros(n))
        writer.close()
        return path

    path = write([100, 105, 99])
    _ts, units, scale = equity_units(path)
    assert (units.tolist(), scale) == ([100, 105, 99], 2)
    assert equity_units(path)[1] is units  # the same file: not decoded again
    with pytest.raises(ValueError, match="read-only"):
        units[0] = 1  # no reader can change what the next one gets
    path = write([100, 101, 102, 103])  # another file at the same path
    assert equity_points(path)[1].tolist() == [100.0, 101.0, 102.0, 103.0]


@pytest.mark.parametrize("kept", [1 << 23, 4])
def test_the_curve_a_run_keeps_is_what_its_equity_file_reads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kept: int) -> None:
    """The equity sink keeps the points it wrote (up to EQUITY_KEPT) and the statistics and
    report take them as the file's: the same values, times and scale as a fresh read."""
    import weltklassebot.runs.results as results
    from weltklassebot.runs import backtest
    from weltklassebot.runs.outputs import EquityWriter

    monkeypatch.setattr(backtest, "EQUITY_ROW_GROUP", 3)  # several row groups
    monkeypatch.setattr(backtest, "EQUITY_KEPT", kept)
    path = tmp_path / "equity.parquet"
    writer = EquityWriter(path, USD)
    sink = backtest._EquitySink(writer, None, EquityStats(100), USD.scale)
    ts = MONDAY + np.arange(8, dtype=np.int64) * NS_PER_HOUR
    units = np.asarray([100, 99, -5, 2**62 - 1, 7, 0, 1, 3], dtype=np.int64)
    for start in range(0, 8, 2):
        sink(ts[start:start + 2].tolist(), units[start:start + 2].tolist(),
             units[start:start + 2].tolist())
    sink.flush()
    writer.close()
    curve = sink.curve()
    if kept < 8:
        assert curve is None  # a long curve is read back from the file
        return
    assert curve is not None
    results.remember_equity(path, *curve, USD.scale)
    remembered = results.equity_units(path)
    monkeypatch.setattr(results, "_last_equity", None)
    read = results.equity_units(path)
    assert remembered[0] is curve[0]  # taken, not read
    assert [a.tolist() for a in remembered[:2]] == [a.tolist() for a in read[:2]]
    assert remembered[2] == read[2] == 2
    assert [a.dtype for a in remembered[:2]] == [a.dtype for a in read[:2]]
    assert not remembered[1].flags.writeable


def test_units_beyond_int64_are_not_remembered(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import weltklassebot.runs.results as results

    monkeypatch.setattr(results, "_last_equity", None)
    path = tmp_path / "equity.parquet"
    path.write_bytes(b"x")
    results.remember_equity(path, np.arange(2, dtype=np.int64),
                            np.asarray([1, 2**70], dtype=object), 2)
    assert results._last_equity is None


@pytest.mark.parametrize("seed", range(5))
def test_positions_by_runs_equal_a_search_per_point(seed: int) -> None:
    from weltklassebot.runs.results import _position_at

    rng = np.random.Generator(np.random.PCG64(seed))
    ts = np.sort(rng.integers(0, 200, 1000))  # repeated instants, as several symbols give
    fill_ts = np.sort(rng.integers(-10, 210, 60))  # fills at, between, before and after points
    held = np.cumsum(rng.normal(size=60))
    at = np.searchsorted(fill_ts, ts, side="right") - 1
    expected = np.where(at >= 0, held[np.maximum(at, 0)], 0.0)
    assert np.array_equal(_position_at(fill_ts, held, ts, True), expected)
    assert np.array_equal(_position_at(fill_ts, held, ts, False), expected)


def test_equity_beyond_int64_is_read_as_the_nearest_doubles() -> None:
    big = [2**70 + 1, 2**70 - 3**30, 2**71 + 12_345, 2**69]  # Python ints (an object array)
    stats = EquityStats(2**70)
    drawdown = stats.update(np.arange(4, dtype=np.int64) * NS_PER_HOUR,
                            np.asarray(big, dtype=object))
    values = np.asarray([float(v) for v in big])
    peaks = np.maximum.accumulate(np.concatenate(([float(2**70)], values)))[1:]
    assert drawdown.tolist() == ((peaks - values) / peaks).tolist()
    assert stats.max_drawdown == float((peaks[-1] - values[-1]) / peaks[-1])
    assert stats.last == 2**69  # the exact last value, for the total return
