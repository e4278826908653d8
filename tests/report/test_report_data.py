"""The report's data computed with fewer passes equals the plain formulas bit for bit:
downsampling, decimal texts of the trades table, monthly returns, drawdown, rolling Sharpe.

Each reference below is the straightforward version of the same figure; the report must give
exactly its values (the page is rebuilt byte for byte from a run's record).
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weltklassebot.runs.report import data
from weltklassebot.runs.report.downsample import minmax_indices


def reference_minmax(values: np.ndarray, buckets: int) -> np.ndarray:
    n = int(values.size)
    if n <= 2 * buckets:
        return np.arange(n)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    keep = [0, n - 1]
    for start, stop in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
        part = values[start:stop]
        low = np.where(np.isnan(part), np.inf, part)
        high = np.where(np.isnan(part), -np.inf, part)
        keep.append(start + int(np.flatnonzero(low == low.min())[0]))
        keep.append(start + int(np.flatnonzero(high == high.max())[0]))
    return np.unique(np.asarray(keep))


@pytest.mark.parametrize("kind", ["walk", "ties", "nan", "zeros", "all_nan"])
def test_downsampling_keeps_each_buckets_first_extremes(kind: str) -> None:
    rng = np.random.Generator(np.random.PCG64(11))
    for n, buckets in [(5, 2), (1001, 500), (4_321, 37), (20_000, 2000), (99_999, 700)]:
        values = np.cumsum(rng.normal(size=n))
        if kind == "ties":
            values = np.round(values / 3)
        elif kind == "nan":
            values[rng.random(n) < 0.3] = np.nan
        elif kind == "zeros":  # 0.0 and -0.0 tie; infinities win
            values = np.where(rng.random(n) < 0.5, 0.0, -0.0)
            values[rng.random(n) < 0.01] = np.inf
            values[rng.random(n) < 0.01] = -np.inf
        elif kind == "all_nan":
            values[:] = np.nan
        assert np.array_equal(minmax_indices(values, buckets), reference_minmax(values, buckets))


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 12), st.lists(st.one_of(st.none(), st.integers(-10**15, 10**15),
                                              st.integers(-999, 999)), max_size=30),
       st.booleans())
def test_decimal_texts_are_plain_decimals(scale: int, units: list[int | None],
                                          huge: bool) -> None:
    if huge:  # beyond int64: the exact route
        units = [None if u is None else u * 10**10 for u in units]
    column = pa.array([None if u is None else Decimal(u).scaleb(-scale) for u in units],
                      type=pa.decimal128(38, scale))
    expected = [None if v is None else _plain(v) for v in column.to_pylist()]
    assert data._plain_texts(column, "pnl") == expected
    sliced = column.slice(len(units) // 3)  # an offset into the buffers
    assert data._plain_texts(sliced, "pnl") == expected[len(units) // 3:]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 12), st.lists(st.integers(-(2**60), 2**60), max_size=30), st.booleans())
def test_decimal_floats_are_the_nearest_doubles(scale: int, units: list[int],
                                                huge: bool) -> None:
    if huge:  # beyond int64: the exact route
        units = [u * 10**6 for u in units]
    column = pa.array([Decimal(u).scaleb(-scale) for u in units], type=pa.decimal128(38, scale))
    assert data._floats(column) == [float(v) for v in column.to_pylist()]


def reference_monthly(ts: np.ndarray, values: np.ndarray, initial: float) -> dict[str, Any]:
    """Months by calendar conversion of every point (the last point of each), tabled as the
    report tables them."""
    months = ts.astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
    last = np.flatnonzero(np.concatenate((np.diff(months) != 0, [True])))
    return data.month_table(months[last], values[last], initial)


@pytest.mark.parametrize("order", ["sorted", "unsorted", "before_1970"])
def test_monthly_returns_end_where_the_calendar_month_does(order: str) -> None:
    rng = np.random.Generator(np.random.PCG64(3))
    n = 30_000
    ts = 1_500_000_000 * 10**9 + np.cumsum(rng.integers(1, 4, n)) * 3_600 * 10**9
    if order == "unsorted":
        ts = rng.permutation(ts)
    elif order == "before_1970":
        ts = ts - 2_000_000_000 * 10**9
    values = 1e6 * np.cumprod(1 + rng.normal(0, 0.01, n))
    expected = reference_monthly(ts, values, 1e6)
    assert len(expected["years"]) > 2
    assert data.monthly_returns(ts, values, 1e6) == expected


def test_the_month_table_by_hand() -> None:
    # 2020-01 and 2020-02 (months 600 and 601 since 1970-01), then 2021-03 (614).
    table = data.month_table(np.array([600, 601, 614]), np.array([110.0, 99.0, 198.0]), 100.0)
    assert table["years"] == [2020, 2021]
    assert table["z"][0][:2] == [0.1, -0.1]
    assert table["z"][0][12] == -0.01  # 99 / 100 - 1
    assert table["z"][1][2] == 1.0
    assert table["z"][1][12] == 1.0  # 198 / 99 - 1
    assert table["text"][0][1] == "-10.0%"


def reference_drawdown(values: np.ndarray, initial: float) -> np.ndarray:
    peaks = np.maximum.accumulate(np.concatenate(([initial], values)))[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peaks > 0, (peaks - values) / peaks, 0.0)


def reference_sharpe(values: np.ndarray, initial: float, window: int,
                     periods_per_year: float) -> np.ndarray:
    previous = np.concatenate(([initial], values[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.where(previous != 0, values / previous - 1.0, 0.0)
    centre = float(returns.mean())
    shifted = returns - centre
    c1 = np.concatenate(([0.0], np.cumsum(shifted)))
    c2 = np.concatenate(([0.0], np.cumsum(shifted * shifted)))
    s1 = c1[window:] - c1[:-window]
    s2 = c2[window:] - c2[:-window]
    var = np.maximum((s2 - s1 * s1 / window) / (window - 1), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(var > 1e-30, (s1 / window + centre) / np.sqrt(var), np.nan)
    sharpe *= math.sqrt(periods_per_year)
    return sharpe


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return (a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
            and np.array_equal(np.signbit(a), np.signbit(b)))


@pytest.mark.parametrize("initial", [1e6, 0.0, -5.0])
@pytest.mark.parametrize("shape", ["walk", "flat", "zeros", "nan"])
def test_drawdown_and_rolling_sharpe_are_the_plain_formulas(
        initial: float, shape: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.Generator(np.random.PCG64(5))
    n = 12_345
    values = 1e6 * np.cumprod(1 + rng.normal(0, 0.01, n))
    if shape == "flat":  # windows without variance: no Sharpe there
        values = np.round(values / 10_000) * 10_000
    elif shape == "zeros":
        values[rng.random(n) < 0.05] = 0.0
    elif shape == "nan":
        values[rng.random(n) < 0.01] = np.nan
    assert _same_bits(data.drawdown_of(values, initial), reference_drawdown(values, initial))
    raw: list[np.ndarray] = []

    def keep_raw(ts: np.ndarray, series: np.ndarray, digits: int = 10) -> dict[str, Any]:
        raw.append(series.copy())
        return {}

    monkeypatch.setattr(data, "series", keep_raw)
    ts = np.arange(n, dtype=np.int64) * 60 * 10**9
    out = data.rolling_sharpe(ts, values, initial, 8766.0)
    assert out is not None
    assert _same_bits(raw[0], reference_sharpe(values, initial, out["window"], 8766.0))


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=60),
       st.sampled_from([6, 10]))
def test_display_rounding_is_the_format_round_trip(values: list[float], digits: int) -> None:
    """``_round``: each finite value through ``f"{v:.{digits}g}"`` and back; NaN and the
    infinities -> None (JSON has neither)."""
    expected = [float(f"{v:.{digits}g}") if math.isfinite(v) else None for v in values]
    got = data._round(np.asarray(values, dtype=np.float64), digits)
    assert [None if v is None else v.hex() for v in got] == \
        [None if v is None else v.hex() for v in expected]


def _trades(returns: list[float | None], symbols: list[str]) -> pa.Table:
    n = len(returns)
    ts = pa.timestamp("ns", tz="UTC")
    money = pa.decimal128(38, 2)
    return pa.table({
        "trade": list(range(1, n + 1)), "symbol": symbols, "side": ["long", "short"] * (n // 2)
        + ["long"] * (n % 2),
        "entry_ts": pa.array([-1_500_000 + i for i in range(n)], ts),
        "exit_ts": pa.array([None if i % 3 == 0 else 10**18 + i for i in range(n)], ts),
        "entry_price": pa.array([Decimal("1.50")] * n, pa.decimal128(38, 8)),
        "exit_price": pa.array([None if i % 3 == 0 else Decimal("0.00000010") * i
                                for i in range(n)], pa.decimal128(38, 8)),
        "qty": pa.array([Decimal(i) for i in range(n)], pa.decimal128(38, 0)),
        "pnl": pa.array([Decimal(-i) / 4 for i in range(n)], money),
        "return": pa.array(returns, pa.float64()),
        "fees": pa.array([Decimal("0.01")] * n, money),
        "bars_held": list(range(n)), "open": [i % 3 == 0 for i in range(n)]})


_COLUMNS = ["trade", "symbol", "side", "entry_ts", "entry_price", "exit_ts", "exit_price",
            "qty", "pnl", "return", "fees", "bars_held", "open"]
_ODD_RETURNS = [1 / 3, None, -0.0, 1e-7, 1.5e16, 123456.7, -2.5, 0.1]
_ODD_SYMBOLS = ['a"b', "c\\d", "<x>", "é€", "tab\tnew\nline", "\u2028", "X", "X"]


def test_trade_rows_rendered_column_wise_are_the_json_of_the_plain_rows() -> None:
    """Quotes, backslashes, "<", non-ASCII and control characters in names; null exits;
    negative times; -0.0, tiny and huge returns: the Arrow rendering is json.dumps' text."""
    table = _trades(_ODD_RETURNS, _ODD_SYMBOLS)
    plain = data.plain_rows(table, _COLUMNS)
    text = data.rows_json(table, _COLUMNS)
    assert text == json.dumps(plain, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False)
    returns = [row[_COLUMNS.index("return")] for row in plain]
    assert [None if r is None else r.hex() for r in returns] == [
        None if r is None else float(f"{r:.6g}").hex() for r in _ODD_RETURNS]
    assert plain[0][_COLUMNS.index("exit_ts")] is None
    assert plain[0][_COLUMNS.index("entry_ts")] == -2  # floored milliseconds


def test_a_return_that_is_not_finite_takes_the_plain_route() -> None:
    table = _trades([float("nan"), 1.0], ["X", "X"])
    assert data.rows_json(table, _COLUMNS) is None


def test_the_page_json_splices_raw_rows_and_falls_back_on_a_marker_in_the_data() -> None:
    from weltklassebot.runs.report import payload_json

    table = _trades(_ODD_RETURNS, _ODD_SYMBOLS)
    plain = data.plain_rows(table, _COLUMNS)
    text = data.rows_json(table, _COLUMNS)
    assert text is not None
    options: dict[str, Any] = {"separators": (",", ":"), "ensure_ascii": False,
                               "allow_nan": False}
    for title in ("plain title", "\ue0000\ue000"):  # the second is the splice marker itself
        raw = {"title": title, "rows": data.RawJSON(text, lambda: plain), "n": 1.5}
        assert payload_json(raw) == json.dumps({**raw, "rows": plain}, **options)
    with pytest.raises(TypeError, match="not JSON serializable"):
        payload_json({"x": object()})


def test_trades_table_returns_keep_six_digits_and_nulls(tmp_path: Any) -> None:
    import pyarrow.parquet as pq

    from weltklassebot.runs.trades import TRADES

    pq.write_table(_trades([1 / 3, None, -0.0], ["X"] * 3), tmp_path / TRADES)
    trades, _markers = data.trades_payload(tmp_path, None)
    rows = trades["rows"]
    assert isinstance(rows, data.RawJSON)
    returns = [row[_COLUMNS.index("return")] for row in json.loads(rows.text)]
    assert returns == [0.333333, None, -0.0]
    assert rows.plain()[1][:3] == (2, "X", "short")
