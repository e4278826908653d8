"""Importer heuristics on small synthetic CSVs: every layout, fix, warning and refusal."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weltklassebot.data.importer import import_csv
from weltklassebot.errors import InvalidSnapshot, UnusableInput, UsageError

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _bars(n: int = 6, seed: int = 3) -> list[tuple[float, float, float, float, float]]:
    rng = np.random.default_rng(seed)
    rows = []
    price = 100.0
    for _ in range(n):
        o = round(price, 2)
        c = round(price + float(rng.normal(0, 1)), 2)
        h = round(max(o, c) + float(rng.random()), 2)
        lo = round(min(o, c) - float(rng.random()), 2)
        rows.append((o, h, lo, c, round(float(rng.random()) * 10 + 1, 3)))
        price = c
    return rows


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _ts(path: Path) -> list[int]:
    return [int(x) for x in pq.read_table(path).column("ts").cast("int64").to_pylist()]


def _expected(n: int, step: timedelta = HOUR) -> list[int]:
    return [int((T0 + i * step).timestamp()) * 10**9 for i in range(n)]


def _csv(times: Sequence[str], bars: Sequence[tuple[float, ...]], header: str = "ts") -> list[str]:
    lines = [f"{header},open,high,low,close,volume"]
    lines += [f"{t},{o},{h},{lo},{c},{v}" for t, (o, h, lo, c, v) in zip(times, bars, strict=True)]
    return lines


@pytest.mark.parametrize(("unit", "scale"), [("seconds", 1), ("milliseconds", 10**3),
                                             ("microseconds", 10**6), ("nanoseconds", 10**9)])
def test_epoch_units_detected_and_reported(tmp_path: Path, unit: str, scale: int) -> None:
    bars = _bars()
    times = [str(int((T0 + i * HOUR).timestamp()) * scale) for i in range(len(bars))]
    src = _write(tmp_path / "e.csv", _csv(times, bars, header="timestamp"))
    result = import_csv(src, name="e", out=tmp_path / "e.parquet")
    assert _ts(result.path) == _expected(len(bars))
    assert any(f"epoch {unit}" in fix for fix in result.fixes)


@pytest.mark.parametrize("fmt", ["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S+00:00",
                                 "%Y-%m-%dT%H:%M:%S.000000Z", "%Y-%m-%d %H:%M UTC"])
def test_iso_with_zone(tmp_path: Path, fmt: str) -> None:
    bars = _bars()
    times = [(T0 + i * HOUR).strftime(fmt) for i in range(len(bars))]
    src = _write(tmp_path / "i.csv", _csv(times, bars, header="Date Time"))
    assert _ts(import_csv(src, name="i", out=tmp_path / "i.parquet").path) == \
        _expected(len(bars))


def test_offsets_other_than_utc_are_converted(tmp_path: Path) -> None:
    bars = _bars(3)
    times = [(T0 + i * HOUR).astimezone(zoneinfo.ZoneInfo("Asia/Tokyo")).isoformat()
             for i in range(3)]
    src = _write(tmp_path / "o.csv", _csv(times, bars))
    assert _ts(import_csv(src, name="o", out=tmp_path / "o.parquet").path) == _expected(3)


def test_zone_less_refused_unless_tz(tmp_path: Path) -> None:
    bars = _bars()
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    times = [(T0 + i * HOUR).astimezone(berlin).strftime("%Y-%m-%d %H:%M:%S")
             for i in range(len(bars))]
    src = _write(tmp_path / "n.csv", _csv(times, bars, header="datetime"))
    with pytest.raises(UnusableInput, match="--tz"):
        import_csv(src, name="n", out=tmp_path / "n.parquet")
    result = import_csv(src, name="n", out=tmp_path / "n.parquet", tz="Europe/Berlin")
    assert _ts(result.path) == _expected(len(bars))
    assert any("converted from Europe/Berlin" in fix for fix in result.fixes)
    with pytest.raises(UsageError, match="not a known time zone"):
        import_csv(src, name="n", out=tmp_path / "x.parquet", tz="Mars/Olympus")


def test_daylight_saving_ambiguity_refused_with_rows(tmp_path: Path) -> None:
    bars = _bars(3)
    times = ["2024-10-27 01:30:00", "2024-10-27 02:30:00", "2024-10-27 03:30:00"]
    src = _write(tmp_path / "d.csv", _csv(times, bars))
    with pytest.raises(UnusableInput, match=r"daylight-saving.*line 3"):
        import_csv(src, name="d", out=tmp_path / "d.parquet", tz="Europe/Berlin")


def test_separate_date_and_time_columns(tmp_path: Path) -> None:
    bars = _bars()
    lines = ["Date,Time,Open,High,Low,Close,Volume"]
    for i, (o, h, lo, c, v) in enumerate(bars):
        t = T0 + i * HOUR
        lines.append(f"{t:%Y-%m-%d},{t:%H:%M:%S},{o},{h},{lo},{c},{v}")
    src = _write(tmp_path / "dt.csv", lines)
    result = import_csv(src, name="dt", out=tmp_path / "dt.parquet", tz="UTC")
    assert _ts(result.path) == _expected(len(bars))
    assert any("combined from date column" in fix for fix in result.fixes)


def test_twelve_hour_clock_noon_and_midnight(tmp_path: Path) -> None:
    bars = _bars(4)
    times = ["2019-10-17 11-PM", "2019-10-18 12-AM", "2019-10-18 11-AM", "2019-10-18 12-PM"]
    src = _write(tmp_path / "h.csv", ["Timestamps are UTC timezone,https://example.org",
                                      *_csv(times, bars, header="date")])
    got = _ts(import_csv(src, name="h", out=tmp_path / "h.parquet").path)
    want = [datetime(2019, 10, 17, 23, tzinfo=UTC), datetime(2019, 10, 18, 0, tzinfo=UTC),
            datetime(2019, 10, 18, 11, tzinfo=UTC), datetime(2019, 10, 18, 12, tzinfo=UTC)]
    assert got == [int(w.timestamp()) * 10**9 for w in want]


def test_day_month_order_decided_by_data(tmp_path: Path) -> None:
    bars = _bars(3)
    src = _write(tmp_path / "dm.csv", _csv(["30/01/2024", "31/01/2024", "01/02/2024"], bars,
                                           header="Date"))
    result = import_csv(src, name="dm", out=tmp_path / "dm.parquet")
    assert _ts(result.path)[0] == int(datetime(2024, 1, 30, tzinfo=UTC).timestamp()) * 10**9
    assert any("dd/mm/yyyy" in fix for fix in result.fixes)
    unclear = _write(tmp_path / "u.csv", _csv(["01/02/2024", "02/02/2024", "03/02/2024"], bars,
                                              header="Date"))
    with pytest.raises(UnusableInput, match="ISO 8601"):
        import_csv(unclear, name="u", out=tmp_path / "u.parquet")


def _kline(open_ms: int, bar: tuple[float, ...], step_ms: int = 60_000) -> str:
    o, h, lo, c, v = bar
    return (f"{open_ms},{o},{h},{lo},{c},{v},{open_ms + step_ms - 1},{v * c:.4f},42,"
            f"{v / 2},{v * c / 2:.4f},0")


@pytest.mark.parametrize("scale", [1, 1000])
def test_binance_klines_without_header(tmp_path: Path, scale: int) -> None:
    bars = _bars(5)
    start = int(T0.timestamp()) * 1000
    lines = [_kline(start + i * 60_000, b) for i, b in enumerate(bars)]
    if scale != 1:  # 2025+ spot files: microseconds
        lines = [",".join(str(int(x) * scale) if j in (0, 6) else x
                          for j, x in enumerate(line.split(","))) for line in lines]
    src = _write(tmp_path / "BTCUSDT-1m-2024-03.csv", lines)
    result = import_csv(src, name="btcusdt", out=tmp_path / "b.parquet")
    assert result.format == "binance-klines"
    assert _ts(result.path) == _expected(5, timedelta(minutes=1))
    table = pq.read_table(result.path)
    assert table.column("volume").to_pylist() == [b[4] for b in bars]


def test_binance_klines_with_header(tmp_path: Path) -> None:
    bars = _bars(5)
    start = int(T0.timestamp()) * 1000
    header = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
              "taker_buy_volume,taker_buy_quote_volume,ignore")
    src = _write(tmp_path / "k.csv", [header] + [_kline(start + i * 60_000, b)
                                                 for i, b in enumerate(bars)])
    result = import_csv(src, name="k", out=tmp_path / "k.parquet")
    assert result.format == "binance-klines"
    assert pq.read_table(result.path).column("close").to_pylist() == [b[3] for b in bars]


def test_base_and_quote_volume_columns(tmp_path: Path) -> None:
    bars = _bars(6)
    lines = ["unix,date,symbol,open,high,low,close,Volume BTC,Volume USDT,tradecount"]
    for i, (o, h, lo, c, v) in enumerate(bars):
        t = T0 + i * HOUR
        lines.append(f"{int(t.timestamp()) * 1000},{t:%Y-%m-%d %H:%M:%S},BTC/USDT,{o},{h},{lo},"
                     f"{c},{v},{v * c:.2f},17")
    src = _write(tmp_path / "cdd.csv", lines)
    result = import_csv(src, name="cdd", out=tmp_path / "cdd.parquet")
    assert pq.read_table(result.path).column("volume").to_pylist() == [b[4] for b in bars]
    assert any("took column 'Volume BTC'" in fix for fix in result.fixes)
    assert result.meta.quote_currency == "USDT"
    assert _ts(result.path) == _expected(6)  # epoch column preferred over zone-less text


def test_newest_first_sorted_and_identical_duplicates_dropped(tmp_path: Path) -> None:
    bars = _bars(6)
    times = [(T0 + i * HOUR).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(6)]
    lines = _csv(times, bars)
    body = list(reversed(lines[1:]))
    body.insert(2, body[1])  # an exact copy of a row
    src = _write(tmp_path / "r.csv", [lines[0], *body])
    result = import_csv(src, name="r", out=tmp_path / "r.parquet")
    assert _ts(result.path) == _expected(6)
    text = "\n".join(result.fixes)
    assert "newest-first" in text
    assert "dropped 1 identical duplicate row(s), at 3" in text or \
        "dropped 1 identical duplicate row(s), at 4" in text


def test_conflicting_duplicates_rejected_naming_lines(tmp_path: Path) -> None:
    bars = _bars(4)
    times = [(T0 + i * HOUR).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(4)]
    lines = _csv(times, bars)
    o, h, lo, c, v = bars[2]
    lines.append(f"{times[2]},{o},{h + 1},{lo},{c},{v}")
    src = _write(tmp_path / "x.csv", lines)
    out = tmp_path / "out" / "x.parquet"
    with pytest.raises(InvalidSnapshot, match=r"lines 4 and 6"):
        import_csv(src, name="x", out=out)
    assert not (tmp_path / "out").exists()


def test_rule_violation_names_source_line_and_writes_nothing(tmp_path: Path) -> None:
    bars = _bars(5)
    o, _h, lo, c, v = bars[3]
    bars[3] = (o, min(o, c) - 0.5, lo - 1, c, v)  # high below open/close
    times = [(T0 + i * HOUR).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(5)]
    src = _write(tmp_path / "v.csv", _csv(list(reversed(times)), list(reversed(bars))))
    out = tmp_path / "v.parquet"
    with pytest.raises(InvalidSnapshot, match=r"high >= max\(open, close\).*line 3"):
        import_csv(src, name="v", out=out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.csv"]


def test_rows_without_prices_dropped(tmp_path: Path) -> None:
    bars = _bars(4)
    times = [str(int((T0 + i * HOUR).timestamp())) for i in range(5)]
    lines = _csv(times[:4], bars, header="Timestamp")
    lines.append(f"{times[4]},NaN,NaN,NaN,NaN,NaN")
    src = _write(tmp_path / "k.csv", lines)
    result = import_csv(src, name="k", out=tmp_path / "k.parquet")
    assert result.rows == 4
    assert any("no prices" in fix and "line 6" in fix for fix in result.fixes)


def test_copied_block_warned_with_rows(tmp_path: Path) -> None:
    bars = _bars(10)
    bars[7], bars[8] = bars[2], bars[3]
    times = [(T0 + i * HOUR).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(10)]
    src = _write(tmp_path / "c.csv", _csv(times, bars))
    result = import_csv(src, name="c", out=tmp_path / "c.parquet")
    warning = next(w for w in result.warnings if "consecutive bars" in w)
    assert "2024-03-01T19:00:00Z .. 2024-03-01T20:00:00Z" in warning
    assert "source lines 9-10" in warning
    assert "5h earlier" in warning


def test_multi_symbol_file_keeps_symbol_column(tmp_path: Path) -> None:
    bars = _bars(4)
    lines = ["ts,symbol,open,high,low,close,volume"]
    for sym in ("AAA", "BBB"):
        for i, (o, h, lo, c, v) in enumerate(bars):
            lines.append(f"{(T0 + i * HOUR):%Y-%m-%dT%H:%M:%SZ},{sym},{o},{h},{lo},{c},{v}")
    src = _write(tmp_path / "m.csv", lines)
    result = import_csv(src, name="m", out=tmp_path / "m.parquet")
    assert set(pq.read_table(result.path).column("symbol").to_pylist()) == {"AAA", "BBB"}
    assert result.report.symbols == ("AAA", "BBB")
    with pytest.raises(UsageError, match="--symbol"):
        import_csv(src, name="m", out=tmp_path / "m2.parquet", symbol="AAA")


def test_trade_file_with_header_and_iso_times(tmp_path: Path) -> None:
    lines = ["timestamp,price,qty,side"]
    for i in range(5):
        lines.append(f"{(T0 + i * timedelta(seconds=1)):%Y-%m-%dT%H:%M:%SZ},{100 + i},0.5,"
                     f"{'buy' if i % 2 else 'sell'}")
    src = _write(tmp_path / "t.csv", lines)
    result = import_csv(src, name="t", out=tmp_path / "t.parquet")
    assert result.kind == "trades"
    table = pq.read_table(result.path)
    assert table.column("side").to_pylist() == ["sell", "buy", "sell", "buy", "sell"]


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty"),
    (b"\x00\x01\x02binary\x00", "binary"),
    (b"just some words\nwithout columns\n", "not a delimited table"),
    (b"a,b,c\nx,y,z\n", "no header"),
    (b"ts,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,1.5\n", "line 2"),
    (b"ts,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,oops,3\n", "'oops' at line 2"),
    (b"ts,open,high,low,close,volume\nyesterday,1,2,0.5,1,3\n", "yesterday"),
    (b"ts,open,high,low,close,volume\n", "no data rows"),
    (b"PAR1xxxx", "already a Parquet file"),
])
def test_unusable_inputs_named(tmp_path: Path, content: bytes, message: str) -> None:
    src = tmp_path / "bad.csv"
    src.write_bytes(content)
    with pytest.raises(UnusableInput, match=message):
        import_csv(src, name="bad", out=tmp_path / "bad.parquet")
    assert not (tmp_path / "bad.parquet").exists()


def test_missing_source_and_bad_name(tmp_path: Path) -> None:
    with pytest.raises(UnusableInput, match="does not exist"):
        import_csv(tmp_path / "nope.csv", name="x", out=tmp_path / "x.parquet")
    with pytest.raises(UsageError, match="not allowed"):
        import_csv(tmp_path / "nope.csv", name="../evil", out=tmp_path / "x.parquet")


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(min_value=2, max_value=40), seed=st.integers(0, 10_000),
       form=st.sampled_from(["epoch_s", "epoch_ms", "iso_z", "compact"]),
       shuffle=st.booleans())
def test_any_order_and_form_round_trips(tmp_path_factory: pytest.TempPathFactory, n: int,
                                        seed: int, form: str, shuffle: bool) -> None:
    tmp = tmp_path_factory.mktemp("prop")
    bars = _bars(n, seed)
    moments = [T0 + i * timedelta(minutes=5) for i in range(n)]
    renderers: dict[str, Callable[[datetime], str]] = {
        "epoch_s": lambda t: str(int(t.timestamp())),
        "epoch_ms": lambda t: str(int(t.timestamp()) * 1000),
        "iso_z": lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "compact": lambda t: t.strftime("%Y%m%d %H%M%S"),
    }
    render = renderers[form]
    rows = list(zip([render(t) for t in moments], bars, strict=True))
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    lines = ["time,open,high,low,close,volume"] + [
        f"{rows[k][0]},{','.join(str(x) for x in rows[k][1])}" for k in order]
    src = _write(tmp / "p.csv", lines)
    result = import_csv(src, name="p", out=tmp / "p.parquet", tz="UTC")
    table = pq.read_table(result.path)
    assert _ts(result.path) == [int(t.timestamp()) * 10**9 for t in moments]
    assert table.column("close").to_pylist() == [b[3] for b in bars]


@pytest.mark.parametrize("agg", [False, True])
def test_binance_trade_dump_without_header(tmp_path: Path, agg: bool) -> None:
    start = int(T0.timestamp()) * 1000
    lines = []
    for i in range(6):
        maker = "True" if i % 3 == 0 else "False"
        if agg:
            lines.append(f"{500 + i},{100 + i}.5,0.25,{900 + i},{901 + i},{start + i * 250},"
                         f"{maker},True")
        else:
            lines.append(f"{700 + i},{100 + i}.5,0.25,{(100 + i) * 0.25},{start + i * 250},"
                         f"{maker},True")
    src = _write(tmp_path / "BTCUSDT-trades.csv", lines)
    result = import_csv(src, name="t", out=tmp_path / "t.parquet")
    assert result.kind == "trades"
    table = pq.read_table(result.path)
    assert table.column("side").to_pylist() == ["sell", "buy", "buy"] * 2
    assert table.column("trade_id").to_pylist()[0] == (500 if agg else 700)
    assert _ts(result.path)[1] - _ts(result.path)[0] == 250 * 10**6


def test_metatrader_dotted_dates_with_time_column(tmp_path: Path) -> None:
    bars = _bars(4)
    lines = ["<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>"]
    for i, (o, h, lo, c, v) in enumerate(bars):
        t = T0 + i * HOUR
        lines.append(f"{t:%Y.%m.%d}\t{t:%H:%M:%S}\t{o}\t{h}\t{lo}\t{c}\t12\t{v}\t3")
    src = _write(tmp_path / "EURUSD_H1.csv", lines)
    result = import_csv(src, name="eurusd", out=tmp_path / "e.parquet", tz="UTC")
    assert _ts(result.path) == _expected(4)
    assert pq.read_table(result.path).column("volume").to_pylist() == [b[4] for b in bars]


def test_small_integers_are_not_epoch_times(tmp_path: Path) -> None:
    bars = _bars(3)
    src = _write(tmp_path / "s.csv", _csv(["1", "2", "3"], bars, header="time"))
    with pytest.raises(UnusableInput, match="small integers"):
        import_csv(src, name="s", out=tmp_path / "s.parquet")
