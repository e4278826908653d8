"""data/reader.py and data/validate.py: every rule, counts, first offending rows, unusable files."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from support.bars import HOUR, OHLCV, T0, Row, bars_table, timed, write_snapshot, write_table
from weltklassebot.core.timeutil import ns_to_iso
from weltklassebot.data.reader import open_snapshot
from weltklassebot.data.validate import describe_violation, inspect_snapshot, require_valid
from weltklassebot.errors import InvalidSnapshot, UnusableInput

GOOD = [(100, 101, 99, 100, 10)] * 6


def rows_with(index: int, bar: OHLCV) -> list[Row]:
    rows = timed(GOOD)
    rows[index] = (rows[index][0], *bar)
    return rows


def only_violation(path: Path) -> tuple[str, int, int, int | None]:
    report = inspect_snapshot(path)
    assert len(report.violations) == 1, report.violations
    v = report.violations[0]
    return v.rule, v.count, v.examples[0].index, v.examples[0].ts_ns


@pytest.mark.parametrize(
    ("bar", "rule"),
    [
        ((math.nan, 101, 99, 100, 10), "price_finite_positive"),
        ((100, math.inf, 99, 100, 10), "price_finite_positive"),
        ((100, 101, 0, 100, 10), "price_finite_positive"),
        ((100, 101, 99, -100, 10), "price_finite_positive"),
        ((100, 99.5, 99, 100, 10), "high_ge_open_close"),
        ((100, 101, 99, 101.5, 10), "high_ge_open_close"),
        ((100, 101, 100.5, 101, 10), "low_le_open_close"),
        ((99, 101, 99.5, 100, 10), "low_le_open_close"),
        ((100, 101, 99, 100, -1), "volume_non_negative"),
        ((100, 101, 99, 100, math.nan), "volume_non_negative"),
    ],
)
def test_each_price_and_volume_rule(tmp_path: Path, bar: OHLCV, rule: str) -> None:
    path = write_snapshot(tmp_path / "s.parquet", rows_with(3, bar))
    assert only_violation(path) == (rule, 1, 3, T0 + 3 * HOUR)
    with pytest.raises(InvalidSnapshot) as info:
        require_valid(path)
    message = info.value.message
    assert str(path) in message
    assert f"rule '{rule}'" in message
    assert f"row 3 (ts {ns_to_iso(T0 + 3 * HOUR)})" in message
    assert info.value.exit_code == 1


def test_unsorted_and_duplicate_timestamps(tmp_path: Path) -> None:
    rows = timed(GOOD)
    rows[2], rows[3] = rows[3], rows[2]
    path = write_snapshot(tmp_path / "unsorted.parquet", rows)
    assert only_violation(path) == ("ts_sorted", 1, 3, T0 + 2 * HOUR)
    rows = timed(GOOD)
    rows[4] = (rows[3][0], *rows[4][1:])
    path = write_snapshot(tmp_path / "dup.parquet", rows)
    assert only_violation(path) == ("ts_unique", 1, 4, T0 + 3 * HOUR)


def test_one_late_row_is_one_violation_not_a_cascade(tmp_path: Path) -> None:
    rows = timed(GOOD * 3)
    rows[5] = (rows[5][0] + 10 * HOUR, *rows[5][1:])
    path = write_snapshot(tmp_path / "late.parquet", rows)
    report = inspect_snapshot(path)
    (v,) = report.violations
    assert (v.rule, v.examples[0].index) == ("ts_sorted", 6)
    assert v.count == 1  # only the step back after the late row, not every later row


def test_symbols_are_checked_separately(tmp_path: Path) -> None:
    a = timed(GOOD[:3])
    interleaved = [a[0], a[0], a[1], a[1], a[2], a[2]]
    path = write_snapshot(tmp_path / "multi.parquet", interleaved,
                          symbols=["A", "B", "B", "A", "A", "B"])
    report = inspect_snapshot(path)
    assert report.ok
    assert report.symbols == ("A", "B")
    assert report.interval_ns == {"A": HOUR, "B": HOUR}
    dup = write_snapshot(tmp_path / "dup.parquet", interleaved,
                         symbols=["A", "A", "B", "B", "A", "B"])
    report = inspect_snapshot(dup)
    (v,) = report.violations
    rule, count, index, ts = v.rule, v.count, v.examples[0].index, v.examples[0].ts_ns
    assert (rule, count, index, ts) == ("ts_unique", 2, 1, T0)  # rows 1 (A) and 3 (B)
    assert inspect_snapshot(dup).violations[0].examples[0].symbol == "A"


def test_nulls_are_a_violation(tmp_path: Path) -> None:
    table = bars_table(timed(GOOD))
    close = pa.array([100.0, None, 100.0, 100.0, 100.0, 100.0])
    table = table.set_column(table.schema.get_field_index("close"), "close", close)
    path = write_table(tmp_path / "null.parquet", table)
    assert only_violation(path) == ("not_null", 1, 1, T0 + HOUR)


def test_zero_rows_break_non_empty(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path / "empty_rows.parquet", [])
    report = inspect_snapshot(path)
    assert [v.rule for v in report.violations] == ["non_empty"]
    with pytest.raises(InvalidSnapshot, match=r"rule 'non_empty'.*the file as a whole"):
        require_valid(path)


def test_offending_rows_are_counted_across_row_groups(tmp_path: Path) -> None:
    rows = timed([(100, 101, 99, 100, 10)] * 50)
    for i in (33, 41, 47):
        rows[i] = (rows[i][0], 100, 101, 99, 100, -5)
    path = write_table(tmp_path / "groups.parquet", bars_table(rows), row_group_size=8)
    assert pq.ParquetFile(path).metadata.num_row_groups == 7
    report = inspect_snapshot(path, max_examples=2)
    (v,) = report.violations
    assert v.count == 3
    assert [e.index for e in v.examples] == [33, 41]
    rows = timed([(100, 101, 99, 100, 10)] * 50)
    rows[16], rows[15] = rows[15], rows[16]  # crosses the row-group boundary at 16
    path = write_table(tmp_path / "boundary.parquet", bars_table(rows), row_group_size=8)
    assert only_violation(path)[:3] == ("ts_sorted", 1, 16)


def test_facts_interval_gaps_and_zero_volume_warnings(tmp_path: Path) -> None:
    rows = timed(GOOD * 2)
    rows = rows[:5] + [(r[0] + 5 * HOUR, *r[1:]) for r in rows[5:]]
    rows[2] = (rows[2][0], 100, 100, 100, 100, 0)
    path = write_snapshot(tmp_path / "gaps.parquet", rows)
    report = inspect_snapshot(path)
    assert report.ok
    assert report.interval_ns == {"-": HOUR}
    assert report.rows == 12
    assert report.ts_min_ns == T0
    assert report.facts["zero_volume_bars"] == 1
    assert report.facts["has_symbol_column"] is False
    assert any("gap" in w and "row 5" in w for w in report.warnings)
    assert any("zero-volume" in w and "row 2" in w for w in report.warnings)


def test_interval_is_the_most_common_spacing(tmp_path: Path) -> None:
    spacing = [0, 1, 2, 3, 5, 7, 9, 11]  # hours: 1,1,1,2,2,2,2
    rows = [(T0 + h * HOUR, 100, 101, 99, 100, 1) for h in spacing]
    report = inspect_snapshot(write_snapshot(tmp_path / "i.parquet", rows))
    assert report.interval_ns == {"-": 2 * HOUR}


def test_trades_may_share_a_timestamp_but_not_go_back(tmp_path: Path, mtgox_trades: Path) -> None:
    report = inspect_snapshot(mtgox_trades)
    assert report.kind == "trades"
    assert report.ok
    with pytest.raises(UnusableInput, match="holds trade ticks"):
        require_valid(mtgox_trades)
    table = pa.table({
        "ts": pa.array([T0, T0, T0 - 1], type=pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "price": [1.0, 1.0, 1.0], "size": [1.0, 0.0, 1.0], "side": ["buy", None, "sell"],
    })
    report = inspect_snapshot(write_table(tmp_path / "t.parquet", table))
    assert sorted(v.rule for v in report.violations) == ["size_positive", "ts_sorted"]


def test_real_snapshots_are_valid(btc_hourly: Path, msft_daily: Path, spy_minute: Path) -> None:
    for path, interval in ((btc_hourly, HOUR), (msft_daily, 24 * HOUR), (spy_minute, HOUR // 60)):
        report = require_valid(path)
        assert report.interval_ns == {"-": interval}
        assert report.rows == pq.ParquetFile(path).metadata.num_rows


# -- unusable files ------------------------------------------------------------------------------

def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UnusableInput, match="does not exist"):
        open_snapshot(tmp_path / "missing.parquet")


def test_dangling_symlink(tmp_path: Path) -> None:
    link = tmp_path / "latest.parquet"
    link.symlink_to(tmp_path / "gone.parquet")
    with pytest.raises(UnusableInput, match=r"symbolic link to .*gone\.parquet, which does not"):
        open_snapshot(link)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(UnusableInput, match="is a directory"):
        open_snapshot(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    path.write_bytes(b"")
    with pytest.raises(UnusableInput, match=r"is empty \(0 bytes\)"):
        open_snapshot(path)


def test_truncated_and_not_parquet(tmp_path: Path, msft_daily: Path) -> None:
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(msft_daily.read_bytes()[:5000])
    with pytest.raises(UnusableInput, match="not a readable Parquet file"):
        open_snapshot(cut)
    csv = tmp_path / "bars.parquet"
    csv.write_text("ts,open,high,low,close,volume\n2024-01-01,1,1,1,1,1\n")
    with pytest.raises(UnusableInput, match="snapshot import"):
        open_snapshot(csv)


def test_footer_intact_but_data_damaged(tmp_path: Path, msft_daily: Path) -> None:
    data = bytearray(msft_daily.read_bytes())
    for i in range(100, 60_000):
        data[i] = 0
    path = tmp_path / "damaged.parquet"
    path.write_bytes(bytes(data))
    with pytest.raises(UnusableInput, match=str(path)):
        inspect_snapshot(path)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ("drop_close", r"has no column\(s\) close"),
        ("naive_ts", "zone-less timestamp"),
        ("int_ts", "not a timestamp"),
        ("text_open", "column open has type string; it must be numeric"),
        ("int_symbol", "column symbol has type int64; it must be text"),
    ],
)
def test_schema_problems(tmp_path: Path, change: str, match: str) -> None:
    table = bars_table(timed(GOOD))
    if change == "drop_close":
        table = table.drop_columns(["close"])
    elif change == "naive_ts":
        table = bars_table(timed(GOOD), ts_type=pa.timestamp("ns"))
    elif change == "int_ts":
        table = table.set_column(0, "ts", table.column("ts").cast(pa.int64()))
    elif change == "text_open":
        table = table.set_column(1, "open", table.column("open").cast(pa.string()))
    else:
        table = table.append_column("symbol", pa.array([1] * len(GOOD), type=pa.int64()))
    path = write_table(tmp_path / f"{change}.parquet", table)
    with pytest.raises(UnusableInput, match=match) as info:
        open_snapshot(path)
    assert str(path) in info.value.message
    assert info.value.exit_code == 2


def test_other_timestamp_units_and_zones_are_read_as_utc_instants(tmp_path: Path) -> None:
    rows = timed(GOOD)
    for ts_type in (pa.timestamp("ms", tz="UTC"), pa.timestamp("s", tz="Europe/Berlin"),
                    pa.timestamp("us", tz="+02:00")):
        path = write_snapshot(tmp_path / "u.parquet", rows, ts_type=ts_type)
        report = require_valid(path)
        assert (report.ts_min_ns, report.ts_max_ns) == (T0, T0 + 5 * HOUR)


def test_describe_violation_is_one_paragraph(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path / "v.parquet", rows_with(1, (100, 101, 99, 100, -1)))
    text = describe_violation(path, inspect_snapshot(path).violations[0])
    assert "\n" not in text
    assert "snapshot validate" in text


def test_a_damaged_row_group_stops_validation_with_the_readers_error(tmp_path: Path) -> None:
    """The batches are decoded ahead of the checks in a worker thread: a row group that
    cannot be decoded still stops validation with the reader's one-paragraph error."""
    path = tmp_path / "s.parquet"
    pq.write_table(bars_table(timed(GOOD * 700)), path, row_group_size=1000,
                   compression="zstd")
    column = pq.ParquetFile(path).metadata.row_group(2).column(1)
    data = bytearray(path.read_bytes())
    for i in range(column.data_page_offset + 20, column.data_page_offset + 60):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(UnusableInput, match="could not be read past its footer"):
        inspect_snapshot(path)
