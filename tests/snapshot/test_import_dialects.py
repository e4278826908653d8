"""CSV dialects in ``snapshot import``, on files re-written from the real exports in tests/data/raw.

Each dialect's file holds the same bars as a real export, written the way another locale or tool
writes them (``;`` or tab separators, decimal commas, ``dd.mm.yyyy`` or ``dd/mm/yyyy`` dates, an
Excel ``sep=`` line, quoted numbers); its snapshot must hold exactly the bars of the original's:
the same ``ts`` and the same prices as exact decimals. Failures must name the file, the line and
the column and say what to pass.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from weltklassebot.data.formats import sniff
from weltklassebot.data.importer import ImportResult, import_csv
from weltklassebot.data.importing.symbols import symbol_from_file_name
from weltklassebot.data.schema import read_meta
from weltklassebot.errors import InvalidSnapshot, UnusableInput, UsageError

from .snapshot_support import (
    COINBASE_CSV,
    MSFT_CSV,
    MTGOX_CSV,
    RAW,
    SPY_CLEAN,
    SPY_CSV,
    CliRunner,
)

BARS = ["ts", "open", "high", "low", "close", "volume"]
MSFT_DE_CSV = RAW / "msft_de.csv"
Cell = Callable[[int, str], str]
"""Re-writes one cell given its column index (for the header row: not called)."""


def _rows(path: Path, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8")), delimiter=delimiter))


def _write(path: Path, rows: list[list[str]], sep: str, *, banner: tuple[str, ...] = (),
           quoting: Literal[0, 1, 2, 3] = csv.QUOTE_MINIMAL) -> Path:
    out = io.StringIO()
    for line in banner:
        out.write(line + "\n")
    csv.writer(out, delimiter=sep, lineterminator="\n", quoting=quoting).writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def _rewrite(rows: list[list[str]], cell: Cell, header_rows: int = 1) -> list[list[str]]:
    return rows[:header_rows] + [[cell(i, c) for i, c in enumerate(row)]
                                 for row in rows[header_rows:]]


def _comma(text: str) -> str:
    return text.replace(".", ",")


def _german(iso_date: str) -> str:
    year, month, day = iso_date.split("-")
    return f"{day}.{month}.{year}"


def _same_bars(got: ImportResult, want: ImportResult, columns: list[str] = BARS) -> None:
    a, b = pq.read_table(got.path), pq.read_table(want.path)
    assert a.num_rows == b.num_rows
    for column in columns:
        assert a.column(column).equals(b.column(column)), column
    assert got.meta.price_increment == want.meta.price_increment
    assert got.meta.bar_interval_ns == want.meta.bar_interval_ns


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ImportResult]:
    """The snapshots of the real exports, imported once for the module."""
    out = tmp_path_factory.mktemp("originals")
    return {
        "msft": import_csv(MSFT_CSV, name="msft", out=out / "msft.parquet"),
        "coinbase": import_csv(COINBASE_CSV, name="cb", out=out / "cb.parquet"),
        "spy": import_csv(SPY_CSV, name="spy", out=out / "spy.parquet", tz="UTC"),
        "mtgox": import_csv(MTGOX_CSV, name="mtgox", out=out / "mtgox.parquet"),
    }


# ---- separators and decimal marks ---------------------------------------------------------------


@pytest.mark.parametrize(("sep", "decimal", "german_dates", "excel_line", "expected"), [
    (";", ",", True, False, "';'-separated (detected), decimal mark ',' (detected)"),
    ("\t", ",", True, False, "tab-separated (detected), decimal mark ',' (detected)"),
    ("|", ".", False, False, "'|'-separated (detected), decimal mark '.' (detected)"),
    (";", ",", False, True, "';'-separated (the file's 'sep=' line), decimal mark ','"),
    (",", ",", False, False, "','-separated (detected), decimal mark ',' (detected)"),
])
def test_msft_in_each_dialect_equals_the_original(
        tmp_path: Path, originals: dict[str, ImportResult], sep: str, decimal: str,
        german_dates: bool, excel_line: bool, expected: str | None) -> None:
    rows = _rows(MSFT_CSV)

    def cell(i: int, text: str) -> str:
        if i == 0:
            return _german(text) if german_dates else text
        return _comma(text) if decimal == "," and 1 <= i <= 4 else text

    # With ',' as both separator and decimal mark the numbers must be quoted (as Excel does).
    src = _write(tmp_path / "msft.csv", _rewrite(rows, cell), sep,
                 banner=(f"sep={sep}",) if excel_line else (),
                 quoting=csv.QUOTE_NONNUMERIC if sep == decimal else csv.QUOTE_MINIMAL)
    result = import_csv(src, name="msft", out=tmp_path / "msft.parquet")
    _same_bars(result, originals["msft"])
    fixes = "\n".join(result.fixes)
    if expected is not None:
        assert expected in fixes
    if german_dates:
        assert "read as dd.mm.yyyy (dates written with dots are day-first" in fixes
    assert read_meta(result.path) == result.meta
    assert result.meta.extra["import"]["decimal_mark"] == decimal
    assert result.meta.extra["import"]["separator"] == sep


def test_prices_are_the_source_decimals_exactly(tmp_path: Path) -> None:
    rows = _rows(MSFT_CSV)
    src = _write(tmp_path / "msft.csv",
                 _rewrite(rows, lambda i, t: _german(t) if i == 0 else _comma(t)), ";")
    table = pq.read_table(import_csv(src, name="m", out=tmp_path / "m.parquet").path)
    for index, column in enumerate(("open", "high", "low", "close"), start=1):
        got = [Decimal(repr(x)) for x in table.column(column).to_pylist()]
        assert got == [Decimal(row[index]) for row in rows[1:]], column


def test_coinbase_tab_separated_with_decimal_commas(tmp_path: Path,
                                                    originals: dict[str, ImportResult]) -> None:
    rows = _rows(COINBASE_CSV)
    banner = COINBASE_CSV.read_text(encoding="utf-8").splitlines()[0]
    body = _rewrite(rows[1:], lambda i, t: _comma(t) if i >= 2 else t)
    src = _write(tmp_path / "Coinbase_BTCUSD_1h.csv", body, "\t", banner=(banner,))
    result = import_csv(src, name="cb", out=tmp_path / "cb.parquet")
    _same_bars(result, originals["coinbase"])
    assert result.meta.symbol == "BTCUSD"  # the file's symbol column, not its name
    assert result.meta.extra["import"]["volume_column"] == "volume_btc"
    assert any("banner line says so" in fix for fix in result.fixes)


def test_ninjatrader_export_with_decimal_commas(tmp_path: Path,
                                                originals: dict[str, ImportResult]) -> None:
    rows = _rows(SPY_CSV, ";")
    src = _write(tmp_path / "spy.csv", _rewrite(rows, lambda i, t: _comma(t), header_rows=0),
                 ";")
    result = import_csv(src, name="spy", out=tmp_path / "spy.parquet", tz="UTC")
    assert result.format == "ninjatrader"
    _same_bars(result, originals["spy"])
    forced = import_csv(src, name="spy", out=tmp_path / "forced.parquet", tz="UTC",
                        fmt="ninjatrader")
    _same_bars(forced, originals["spy"])


def test_trades_with_semicolons_and_decimal_commas(tmp_path: Path,
                                                   originals: dict[str, ImportResult]) -> None:
    rows = _rows(MTGOX_CSV)
    src = _write(tmp_path / "mtgox.csv", _rewrite(rows, lambda i, t: _comma(t)), ";")
    result = import_csv(src, name="mtgox", out=tmp_path / "t.parquet")
    assert result.kind == "trades"
    _same_bars(result, originals["mtgox"], ["ts", "price", "size", "side", "trade_id"])
    assert result.meta.price_increment == "0.00001"


def test_every_number_with_a_decimal_comma_is_not_taken_for_commas(
        tmp_path: Path, originals: dict[str, ImportResult]) -> None:
    # time;open;high;low;close;volume with a comma in every number splits into as many columns
    # at ',' as at ';' (the header aside): layout detection alone takes ',' and finds nothing.
    rows = _rows(COINBASE_CSV)
    body = [["date", "open", "high", "low", "close", "volume_btc"]]
    for row in rows[2:]:
        body.append([row[0]] + [_comma(t) if "." in t else f"{t},0" for t in row[2:7]])
    src = _write(tmp_path / "btc.csv", body, ";", banner=("Timestamps are UTC timezone",))
    head = src.read_text(encoding="utf-8")[:20_000]
    with pytest.raises(UnusableInput, match="no header naming the columns"):
        sniff(head[: head.rindex("\n") + 1])
    result = import_csv(src, name="btc", out=tmp_path / "btc.parquet")
    _same_bars(result, originals["coinbase"])


def test_bundled_german_export_is_the_msft_rows_re_written(tmp_path: Path) -> None:
    rows = [r for r in _rows(MSFT_CSV) if not r[0][:1].isdigit() or r[0].startswith("1986")]
    expected = _rewrite(rows, lambda i, t: _german(t) if i == 0 else
                        (_comma(t) if i <= 4 else t))
    assert _rows(MSFT_DE_CSV, ";") == expected
    original = _write(tmp_path / "msft_1986.csv", rows, ",")
    _same_bars(import_csv(MSFT_DE_CSV, name="de", out=tmp_path / "de.parquet"),
               import_csv(original, name="o", out=tmp_path / "o.parquet"))


# ---- detection failures name the likely cause ---------------------------------------------------


@pytest.fixture
def german_msft(tmp_path: Path) -> Path:
    """A copy of the bundled German export (';', decimal commas, dd.mm.yyyy)."""
    copy = tmp_path / MSFT_DE_CSV.name
    copy.write_bytes(MSFT_DE_CSV.read_bytes())
    return copy


def test_wrong_separator_named_with_the_fix(tmp_path: Path, german_msft: Path) -> None:
    with pytest.raises(UnusableInput) as caught:
        import_csv(german_msft, name="m", out=tmp_path / "m.parquet", sep=",")
    message = caught.value.message
    assert message.startswith(f"{german_msft}: the header (line 1) has one column when split "
                              "at ',' (--sep): is the separator ';'?")
    assert "pass --sep ';'" in message
    assert "no header naming the columns" not in message
    plain = _write(tmp_path / "plain.csv", _rows(MSFT_CSV)[:50], ",")
    with pytest.raises(UnusableInput, match=r"no line splits into columns at ';' \(--sep\): is "
                                            r"the separator ','\? .*pass --sep ','"):
        import_csv(plain, name="p", out=tmp_path / "p.parquet", sep=";")
    assert not (tmp_path / "m.parquet").exists()
    assert not (tmp_path / "p.parquet").exists()


def test_wrong_decimal_mark_named_with_line_and_column(tmp_path: Path, german_msft: Path) -> None:
    with pytest.raises(UnusableInput) as caught:
        import_csv(german_msft, name="m", out=tmp_path / "m.parquet", decimal=".")
    assert caught.value.message == (
        f"{german_msft}: column 'Open' must hold numbers, but has '0,0672' at line 2. It uses "
        "',' as decimal mark where the file was read with '.': pass --decimal ',' (or fix that "
        "value) and import again.")


def test_decimal_commas_in_a_comma_separated_file_explained(tmp_path: Path) -> None:
    rows = _rows(MSFT_CSV)[:100]
    text = "\n".join([",".join(rows[0])] + [",".join([r[0], *(_comma(t) for t in r[1:])])
                                            for r in rows[1:]]) + "\n"
    src = tmp_path / "msft.csv"
    src.write_text(text, encoding="utf-8")
    with pytest.raises(UnusableInput, match=r"the header \(line 1\) has 7 columns but the rows "
                                            r"have 11 when split at ','.*Export the file again "
                                            r"with ';' as separator"):
        import_csv(src, name="m", out=tmp_path / "m.parquet")


def test_digit_grouping_refused_with_line_and_column(tmp_path: Path, german_msft: Path) -> None:
    lines = german_msft.read_text(encoding="utf-8").splitlines()
    cells = lines[5].split(";")
    cells[4] = "1.234,5"
    lines[5] = ";".join(cells)
    german_msft.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(UnusableInput, match=r"column 'Close' must hold numbers, but has "
                                            r"'1\.234,5' at line 6\. The numbers are written "
                                            r"with digit grouping"):
        import_csv(german_msft, name="m", out=tmp_path / "m.parquet")


def test_bad_separator_and_decimal_options_refused(tmp_path: Path, german_msft: Path) -> None:
    for kwargs, message in (({"sep": "ab"}, "--sep 'ab' is not a separator"),
                            ({"sep": '"'}, "is not a separator"),
                            ({"decimal": ";"}, "--decimal ';' is not a decimal mark"),
                            ({"sep": ",", "fmt": "ninjatrader"}, "reads ';'-separated files")):
        with pytest.raises(UsageError, match=message):
            import_csv(german_msft, name="m", out=tmp_path / "m.parquet",
                       **kwargs)  # type: ignore[arg-type]


# ---- dates ------------------------------------------------------------------------------------


def _msft_dates(tmp_path: Path, name: str, render: Callable[[str, str, str], str],
                keep: Callable[[str, str, str], bool] = lambda y, m, d: True) -> Path:
    rows = [r for r in _rows(MSFT_CSV)[1:] if keep(*r[0].split("-"))]
    body = [_rows(MSFT_CSV)[0]] + [[render(*r[0].split("-")), *r[1:]] for r in rows]
    return _write(tmp_path / name, body, ",")


def _msft_subset(tmp_path: Path, keep: Callable[[str, str, str], bool]) -> ImportResult:
    iso = _msft_dates(tmp_path, "iso.csv", lambda y, m, d: f"{y}-{m}-{d}", keep)
    return import_csv(iso, name="iso", out=tmp_path / "iso.parquet")


def test_slash_dates_that_read_two_ways_are_refused_naming_both_readings(tmp_path: Path) -> None:
    def low_days(y: str, m: str, d: str) -> bool:
        return int(d) <= 12

    src = _msft_dates(tmp_path, "msft.csv", lambda y, m, d: f"{d}/{m}/{y}", low_days)
    first = _rows(src)[1][0]
    day, month, year = first.split("/")
    with pytest.raises(UnusableInput) as caught:
        import_csv(src, name="m", out=tmp_path / "m.parquet")
    message = caught.value.message
    assert message.startswith(f"{src}: column 'Date' has dates that read two ways: line 2 has "
                              f"{first!r}, which is {year}-{month}-{day} as dd/mm/yyyy or "
                              f"{year}-{day}-{month} as mm/dd/yyyy")
    assert "Pass --dayfirst for dd/mm/yyyy or --date-format '%m/%d/%Y' for mm/dd/yyyy" in message
    assert not (tmp_path / "m.parquet").exists()

    original = _msft_subset(tmp_path, low_days)
    result = import_csv(src, name="m", out=tmp_path / "m.parquet", dayfirst=True)
    _same_bars(result, original)
    assert any("read as dd/mm/yyyy (--dayfirst)" in fix for fix in result.fixes)
    us = _msft_dates(tmp_path, "us.csv", lambda y, m, d: f"{m}/{d}/{y}", low_days)
    _same_bars(import_csv(us, name="u", out=tmp_path / "u.parquet", date_format="%m/%d/%Y"),
               original)


def test_a_day_above_12_settles_the_order_and_is_named(tmp_path: Path,
                                                       originals: dict[str, ImportResult]) -> None:
    src = _msft_dates(tmp_path, "msft.csv", lambda y, m, d: f"{m}/{d}/{y}")
    result = import_csv(src, name="m", out=tmp_path / "m.parquet")
    _same_bars(result, originals["msft"])
    assert any(re.search(r"read as mm/dd/yyyy \(line 2 has '03/13/1986', whose second number "
                         r"is a day above 12\)", fix) for fix in result.fixes)
    both = _msft_dates(tmp_path, "both.csv",
                       lambda y, m, d: f"{m}/{d}/{y}" if y == "1986" else f"{d}/{m}/{y}")
    with pytest.raises(UnusableInput, match=r"mixes both date orders: line 2 has '03/13/1986' "
                                            r"\(only mm/dd/yyyy reads it\) and line \d+ has "
                                            r"'\d\d/\d\d/1987' \(only dd/mm/yyyy"):
        import_csv(both, name="b", out=tmp_path / "b.parquet")


def test_dotted_dates_are_day_first_without_a_flag(tmp_path: Path) -> None:
    def low_days(y: str, m: str, d: str) -> bool:
        return int(d) <= 12

    src = _msft_dates(tmp_path, "msft.csv", lambda y, m, d: f"{d}.{m}.{y}", low_days)
    _same_bars(import_csv(src, name="m", out=tmp_path / "m.parquet"),
               _msft_subset(tmp_path, low_days))
    swapped = _msft_dates(tmp_path, "swapped.csv", lambda y, m, d: f"{m}.{d}.{y}")
    with pytest.raises(UnusableInput, match=r"is read as dd\.mm\.yyyy \(dates written with dots "
                                            r"are day-first.*\), but line 2 has '03\.13\.1986', "
                                            r"which has no month 13"):
        import_csv(swapped, name="s", out=tmp_path / "s.parquet")


def test_date_format_reads_any_layout(tmp_path: Path,
                                      originals: dict[str, ImportResult]) -> None:
    src = _msft_dates(tmp_path, "msft.csv", lambda y, m, d: f"{d}-{m}-{y}")
    with pytest.raises(UnusableInput, match=r"'13-03-1986' at line 2\..*pass --date-format"):
        import_csv(src, name="m", out=tmp_path / "m.parquet")
    result = import_csv(src, name="m", out=tmp_path / "m.parquet", date_format="%d-%m-%Y")
    _same_bars(result, originals["msft"])
    assert any("'%d-%m-%Y' (--date-format)" in fix and "00:00 UTC" in fix
               for fix in result.fixes)


def test_date_format_with_time_and_offset(tmp_path: Path) -> None:
    # NinjaTrader's 'yyyyMMdd HHmmss' re-written as German date and time; without the
    # NinjaTrader layout the times stay as given, which is the clean file's ts.
    rows = _rows(SPY_CSV, ";")

    def german(text: str, offset: str = "") -> str:
        return f"{text[6:8]}.{text[4:6]}.{text[0:4]} {text[9:11]}:{text[11:13]}:{text[13:15]}" \
            + offset

    body = [["Date", "Open", "High", "Low", "Close", "Volume"]]
    naive = _write(tmp_path / "spy.csv", body + [[german(r[0]), *r[1:]] for r in rows], ";")
    clean = pq.read_table(SPY_CLEAN)
    with pytest.raises(UnusableInput, match="--tz"):
        import_csv(naive, name="s", out=tmp_path / "s.parquet", date_format="%d.%m.%Y %H:%M:%S")
    result = import_csv(naive, name="s", out=tmp_path / "s.parquet", tz="UTC",
                        date_format="%d.%m.%Y %H:%M:%S")
    table = pq.read_table(result.path)
    for column in BARS:
        assert table.column(column).equals(clean.column(column)), column
    # The same instants written one hour ahead with their offset: no --tz needed.
    ahead = []
    for r in rows:
        utc = datetime.strptime(r[0] + "+0000", "%Y%m%d %H%M%S%z")
        local = utc.astimezone(timezone(timedelta(hours=1)))
        ahead.append([f"{local:%d.%m.%Y %H:%M:%S %z}", *r[1:]])
    zoned = _write(tmp_path / "zoned.csv", body + ahead, ";")
    result = import_csv(zoned, name="z", out=tmp_path / "z.parquet",
                        date_format="%d.%m.%Y %H:%M:%S %z")
    assert pq.read_table(result.path).column("ts").equals(clean.column("ts"))


def test_date_format_mismatches_named_by_line(tmp_path: Path) -> None:
    src = _msft_dates(tmp_path, "msft.csv", lambda y, m, d: f"{d}.{m}.{y}")
    lines = src.read_text(encoding="utf-8").splitlines()
    lines[4] = "31.02.1986" + lines[4][10:]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(UnusableInput, match=r"column 'Date': line 5 has '31\.02\.1986', which is "
                                            r"no real date or time for --date-format "
                                            r"'%d\.%m\.%Y': it would become '03\.03\.1986'"):
        import_csv(src, name="m", out=tmp_path / "m.parquet", date_format="%d.%m.%Y")
    lines[4] = "1986-03-18" + lines[4][10:]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(UnusableInput, match=r"line 5 has '1986-03-18', which does not match "
                                            r"--date-format '%d\.%m\.%Y' \(1 such row"):
        import_csv(src, name="m", out=tmp_path / "m.parquet", date_format="%d.%m.%Y")
    assert not (tmp_path / "m.parquet").exists()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"date_format": "%d.%m.%Y", "dayfirst": True}, "pass one"),
    ({"date_format": "dd.mm.yyyy"}, "has no strftime codes"),
    ({"date_format": "%d.%m.%Y %H:%M:%S.%f"}, r"fractions of a second \(%f\)"),
    ({"date_format": "%d.%m.%Y %Z"}, r"zone names \(%Z\)"),
    ({"date_format": "%z %d.%m.%Y"}, "only at the end"),
])
def test_unusable_date_options_refused(tmp_path: Path, kwargs: dict[str, object],
                                       message: str) -> None:
    with pytest.raises(UsageError, match=message):
        import_csv(MSFT_CSV, name="m", out=tmp_path / "m.parquet",
                   **kwargs)  # type: ignore[arg-type]


# ---- symbol and price increment ---------------------------------------------------------------


@pytest.mark.parametrize(("name", "symbol"), [
    ("BTCUSDT-1m-2024-03.zip", "BTCUSDT"),
    ("EURUSD_H1.csv", "EURUSD"),
    ("msft.us.txt", "msft"),
    ("AAPL.csv.gz", "AAPL"),
    ("2024-03_ETHBTC.csv", "ETHBTC"),
    ("^GSPC.csv", "GSPC"),
    ("2024-03-01.csv", ""),
])
def test_symbol_from_file_name_rule(name: str, symbol: str) -> None:
    assert symbol_from_file_name(Path(name)) == symbol


def test_symbol_taken_from_the_file_name_and_overridden_by_symbol(tmp_path: Path) -> None:
    src = tmp_path / "MSFT_1d.csv.gz"
    with gzip.open(src, "wb") as fh:
        fh.write(MSFT_CSV.read_bytes())
    result = import_csv(src, name="msft", out=tmp_path / "m.parquet")
    assert result.meta.symbol == "MSFT"
    assert result.symbols == ("MSFT",)
    assert "symbol" not in pq.read_schema(result.path).names
    assert any("symbol: 'MSFT', taken from the file name 'MSFT_1d.csv.gz'" in fix
               for fix in result.fixes)
    given = import_csv(src, name="msft", out=tmp_path / "g.parquet", symbol="MSFT.O")
    assert given.meta.symbol == "MSFT.O"
    assert set(pq.read_table(given.path).column("symbol").to_pylist()) == {"MSFT.O"}
    nameless = tmp_path / "2017-11-10.csv"
    nameless.write_bytes(MSFT_CSV.read_bytes())
    result = import_csv(nameless, name="n", out=tmp_path / "n.parquet")
    assert result.meta.symbol is None
    assert any("pass --symbol" in w for w in result.warnings)


def test_price_increment_inferred_stated_and_written(tmp_path: Path,
                                                     originals: dict[str, ImportResult]) -> None:
    for key, increment, places in (("msft", "0.00001", 5), ("coinbase", "0.01", 2),
                                   ("spy", "0.01", 2)):
        result = originals[key]
        assert result.meta.price_increment == increment
        meta = read_meta(result.path)
        assert meta is not None
        assert meta.price_increment == increment
        assert f"price increment: {increment}, inferred from the prices (the most decimals any " \
               f"open/high/low/close value has is {places})" in "\n".join(result.fixes)
        assert result.meta.extra["import"]["price_increment_from"] == "decimals"
        assert result.report.ok


def test_price_increment_option_wins_and_is_checked(tmp_path: Path) -> None:
    result = import_csv(MSFT_CSV, name="m", out=tmp_path / "m.parquet",
                        price_increment="0.000001")
    assert result.meta.price_increment == "0.000001"
    assert "price increment: 0.000001 (--price-increment)" in result.fixes
    with pytest.raises(InvalidSnapshot, match=r"open is 0\.0672, not a multiple of the "
                                              r"price_increment 0\.001.*line 2 .*not whole "
                                              r"multiples of --price-increment"):
        import_csv(MSFT_CSV, name="m", out=tmp_path / "x.parquet", price_increment="0.001")
    with pytest.raises(UsageError, match=r"--price-increment '-1' is not usable"):
        import_csv(MSFT_CSV, name="m", out=tmp_path / "x.parquet", price_increment="-1")
    assert not (tmp_path / "x.parquet").exists()


def test_float_noise_is_not_decimals_and_endless_decimals_refused(tmp_path: Path) -> None:
    rows = _rows(MSFT_CSV)[:40]
    noisy = _rewrite(rows, lambda i, t: repr(float(t) * 3 / 3 + 0.1 - 0.1)
                     if 1 <= i <= 4 else t)
    assert any(len(c.split(".")[1]) > 8 for r in noisy[1:] for c in r[1:5])
    result = import_csv(_write(tmp_path / "noisy.csv", noisy, ","), name="n",
                        out=tmp_path / "n.parquet")
    assert result.meta.price_increment == "0.00001"
    thirds = _rewrite(rows, lambda i, t: repr(float(t) / 3) if 1 <= i <= 4 else t)
    with pytest.raises(InvalidSnapshot, match=r"high is 0\.0279633333\d*, not a multiple.*line "
                                              r"31 .*more decimals than whole ticks of a price "
                                              r"can hold.*round the prices"):
        import_csv(_write(tmp_path / "thirds.csv", thirds, ","), name="t",
                   out=tmp_path / "t.parquet")
    assert not (tmp_path / "t.parquet").exists()


# ---- the command line ---------------------------------------------------------------------------


def test_cli_options_and_report(cli: CliRunner, tmp_path: Path, german_msft: Path) -> None:
    wrong = cli("import", german_msft, "--name", "m", "--sep", ",")
    assert wrong.returncode == 2
    assert "pass --sep ';'" in wrong.stderr
    ok = cli("import", german_msft, "--name", "m", "--sep", ";", "--decimal", ",", "--json")
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["price_increment"] == "0.00001"
    assert report["metadata"]["price_increment"] == "0.00001"
    assert report["metadata"]["symbol"] == "msft"
    assert any("';'-separated (--sep), decimal mark ',' (--decimal)" in f
               for f in report["fixes"])
    text = cli("import", german_msft, "--name", "m", "--force", "--price-increment", "0.00001",
               "--date-format", "%d.%m.%Y")
    assert text.returncode == 0, text.stderr
    assert "note: price increment: 0.00001 (--price-increment)" in text.stderr
    table = pq.read_table(tmp_path / "staging" / "m.parquet")
    assert table.column("ts").type == pa.timestamp("ns", tz="UTC")
    both = cli("import", german_msft, "--name", "b", "--dayfirst", "--date-format", "%d.%m.%Y")
    assert both.returncode == 2
    assert "pass one" in both.stderr
