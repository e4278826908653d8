"""The acceptance rule's newer parts: metadata checked key by key, ticks, ranges, intervals.

Each class of input that used to pass ``validate`` and then crash (or silently mislead) a
backtest is refused here by name, and the same file is refused the same way by ``backtest``.
"""

from __future__ import annotations

import contextlib
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from support.bars import HOUR, T0, Row, bars_table, timed, write_snapshot, write_table
from weltklassebot.cli.main import run
from weltklassebot.config.model import BacktestConfig, DataConfig, InstrumentConfig
from weltklassebot.data.reader import open_snapshot
from weltklassebot.data.schema import SnapshotMeta, check_metadata
from weltklassebot.data.validate import inspect_snapshot, require_valid
from weltklassebot.errors import InvalidSnapshot, UnusableInput
from weltklassebot.runs.backtest import resolve_instruments

GOOD = [(100, 101, 99, 100, 10)] * 6


def cli(*args: str | Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            run([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, err.getvalue()


def both(path: Path, tmp_path: Path) -> tuple[tuple[int, str], tuple[int, str]]:
    """(validate, backtest) exit status and stderr for ``path``."""
    return (cli("snapshot", "validate", path),
            cli("backtest", "--data-snapshot", path, "--out", tmp_path / "run", "--no-progress"))


def with_meta(tmp_path: Path, meta: Any, rows: list[Row] | None = None) -> Path:
    table = bars_table(rows or timed(GOOD))
    text = meta if isinstance(meta, str) else json.dumps(meta)
    table = table.replace_schema_metadata({"weltklassebot": text})
    return write_table(tmp_path / "m.parquet", table)


def violation(path: Path, rule: str, **kwargs: Any) -> Any:
    report = inspect_snapshot(path, **kwargs)
    found = [v for v in report.violations if v.rule == rule]
    assert found, report.violations
    return found[0]


# ---- metadata ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("price_increment", "0", "is not > 0"),
        ("price_increment", "abc", "is not a decimal number"),
        ("price_increment", "NaN", "is not a finite number"),
        ("price_increment", "-0.01", "is not > 0"),
        ("price_increment", True, "is not a decimal number"),
        ("price_increment", "1e-30", "more than 18 decimal places"),
        ("quantity_increment", "Infinity", "is not a finite number"),
        ("bar_interval_ns", "0", "is not in 1 .."),
        ("bar_interval_ns", "abc", "is not an integer number of nanoseconds"),
        ("bar_interval_ns", "NaN", "is not an integer number of nanoseconds"),
        ("bar_interval_ns", -3600, "is not in 1 .."),
        ("bar_interval_ns", 2**63, "is not in 1 .."),
        ("bar_interval_ns", 1.5, "is not an integer number of nanoseconds"),
        ("kind", "candles", "is not one of"),
        ("ts_convention", "bar_end", "is not one of bar_start, trade_time"),
        ("symbol", "", "is empty"),
        ("symbol", 7, "is not text"),
        ("extra", [1], "is not a JSON object"),
        ("schema_version", 99, "is not a schema version"),
        ("timeframe", "H1", "is not a duration"),
    ],
)
def test_each_metadata_key_is_checked_by_type_and_range(tmp_path: Path, key: str, value: Any,
                                                        problem: str) -> None:
    path = with_meta(tmp_path, {key: value})
    found = violation(path, "metadata_valid")
    assert [k.key for k in found.keys] == [key]
    assert problem in found.keys[0].problem
    (v_code, v_err), (b_code, b_err) = both(path, tmp_path)
    assert (v_code, b_code) == (1, 1), (v_err, b_err)
    for err in (v_err, b_err):
        assert f"metadata key {key}" in err
        assert problem in err
        assert "internal error" not in err


def test_bar_interval_of_1e999_is_named(tmp_path: Path) -> None:
    # JSON's 1e999 is an infinite float once parsed.
    path = with_meta(tmp_path, '{"bar_interval_ns": 1e999}')
    found = violation(path, "metadata_valid")
    assert found.keys[0].key == "bar_interval_ns"
    assert "inf" in found.keys[0].problem
    assert [c for c, _ in both(path, tmp_path)] == [1, 1]


@pytest.mark.parametrize("text", ["{", "[1, 2]", "null", "[" * 5000])
def test_metadata_that_is_not_a_json_object_is_named(tmp_path: Path, text: str) -> None:
    path = with_meta(tmp_path, text)
    assert violation(path, "metadata_valid").keys[0].key == "weltklassebot"


def test_unknown_keys_are_named_and_a_near_miss_suggests_the_key(tmp_path: Path) -> None:
    path = with_meta(tmp_path, {"price_incremnt": "0.01", "venue": "X", "timeframe": "1h"})
    report = require_valid(path)
    assert report.facts["metadata_unknown_keys"] == ["price_incremnt", "venue"]
    check = check_metadata(json.dumps({"price_incremnt": "0.01"}))
    assert "price_incremnt (did you mean price_increment?)" in (check.unknown_text() or "")
    code, _ = cli("snapshot", "validate", path)
    assert code == 0


def test_valid_metadata_round_trips_and_from_json_refuses_bad_keys() -> None:
    meta = SnapshotMeta(symbol="BTC", price_increment="0.01", bar_interval_ns=HOUR)
    assert SnapshotMeta.from_json(meta.to_json()) == meta
    with pytest.raises(ValueError, match="price_increment"):
        SnapshotMeta.from_json('{"price_increment": "0"}')


def test_config_increments_follow_the_same_rule() -> None:
    with pytest.raises(ValueError, match="more than 18 decimal places"):
        DataConfig(price_increment=Decimal("1e-30"))
    with pytest.raises(ValueError, match="above 10"):
        DataConfig(quantity_increment=Decimal("1e30"))


# ---- columns, symbols, time ---------------------------------------------------------------------


def test_a_duplicated_column_name_is_unusable(tmp_path: Path) -> None:
    table = bars_table(timed(GOOD))
    table = pa.Table.from_arrays([*table.columns, table.column("close")],
                                 names=[*table.column_names, "close"])
    path = write_table(tmp_path / "dup.parquet", table)
    with pytest.raises(UnusableInput, match="more than one column named close"):
        open_snapshot(path)
    (v_code, v_err), (b_code, _) = both(path, tmp_path)
    assert (v_code, b_code) == (2, 2)
    assert "close" in v_err


def test_empty_symbol_names_are_refused_with_the_row(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path / "e.parquet", timed(GOOD), symbols=["A", "A", "", "A", " ",
                                                                         "A"])
    found = violation(path, "symbol_not_empty")
    assert found.count == 2
    assert [e.index for e in found.examples] == [2, 4]
    (v_code, _), (b_code, b_err) = both(path, tmp_path)
    assert (v_code, b_code) == (1, 1)
    assert "row 2" in b_err


def test_timestamps_before_1970_are_refused_with_the_row(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path / "old.parquet", timed(GOOD, start=-2 * HOUR))
    found = violation(path, "ts_range")
    assert found.count == 2
    assert found.examples[0].index == 0
    assert found.examples[0].describe() == "row 0 (ts 1969-12-31T22:00:00Z)"
    (v_code, _), (b_code, b_err) = both(path, tmp_path)
    assert (v_code, b_code) == (1, 1)
    assert "ts_range" in b_err


def test_timestamps_beyond_int64_nanoseconds_are_refused_not_overflowed(tmp_path: Path) -> None:
    seconds = [T0 // 10**9 + i * 3600 for i in range(5)] + [10**12]  # the last: year ~33658
    table = bars_table(timed(GOOD)).set_column(
        0, "ts", pa.array(seconds, type=pa.int64()).cast(pa.timestamp("s", tz="UTC")))
    path = tmp_path / "far.parquet"
    pq.write_table(table, path, coerce_timestamps="us", allow_truncated_timestamps=False)
    found = violation(path, "ts_range")
    assert found.count == 1
    assert found.examples[0].describe() == "row 5"
    assert [c for c, _ in both(path, tmp_path)] == [1, 1]


# ---- ticks and volumes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meta", "price", "detail"),
    [
        ({"price_increment": "0.01"}, 0.004, "below one price_increment (0.01)"),
        ({}, 1e-9, "would become 0 ticks"),
        ({"price_increment": "0.01"}, 100.005, "not a multiple of the price_increment 0.01"),
        ({"price_increment": "0.25"}, 100.3, "not a multiple of the price_increment 0.25"),
        ({}, 2e8, "too large to be represented exactly"),
    ],
)
def test_prices_that_do_not_survive_ticks_are_refused(tmp_path: Path, meta: dict[str, str],
                                                      price: float, detail: str) -> None:
    rows = timed(GOOD)
    rows[3] = (rows[3][0], price, price, price, price, 1)
    path = with_meta(tmp_path, meta, rows)
    found = violation(path, "price_ticks")
    assert found.count == 1
    assert found.examples[0].index == 3
    assert detail in (found.detail or "")
    (v_code, v_err), (b_code, b_err) = both(path, tmp_path)
    assert (v_code, b_code) == (1, 1)
    assert detail in v_err
    assert detail in b_err
    assert "row 3" in b_err


def test_prices_on_the_grid_within_float_rounding_are_accepted(tmp_path: Path) -> None:
    rows = timed([(0.1 + 0.2, 0.31, 0.29, 0.30000000000000004, 1),
                  (2461.9899999999998, 2462.0, 2461.0, 2461.99, 1)])
    path = with_meta(tmp_path, {"price_increment": "0.01", "bar_interval_ns": HOUR}, rows)
    assert require_valid(path).ok


def test_config_increment_overrides_metadata_in_validation(tmp_path: Path) -> None:
    rows = timed([(100.5, 101, 100, 100.5, 1)] * 3)
    path = with_meta(tmp_path, {"price_increment": "0.25"}, rows)
    assert require_valid(path).ok
    with pytest.raises(InvalidSnapshot, match=r"row 0 .*price_increment 1\b"):
        require_valid(path, data=DataConfig(price_increment=Decimal(1)))
    config = tmp_path / "c.toml"
    config.write_text('[data]\nprice_increment = "1"\n')
    code, err = cli("backtest", "--data-snapshot", path, "--config", config, "--out",
                    tmp_path / "run", "--no-progress")
    assert code == 1
    assert "price_ticks" in err


@pytest.mark.parametrize("volume_type", [pa.uint64(), pa.float64()])
def test_volume_beyond_the_quantity_range_is_refused_with_the_row(tmp_path: Path,
                                                                  volume_type: pa.DataType) -> None:
    table = bars_table(timed(GOOD))
    volumes = [10] * 5 + [2**64 - 1]
    table = table.set_column(5, "volume", pa.array(volumes, type=pa.uint64()).cast(
        volume_type, safe=False))
    path = write_table(tmp_path / "v.parquet", table)
    found = violation(path, "volume_in_range")
    assert found.count == 1
    assert found.examples[0].index == 5
    (v_code, _), (b_code, b_err) = both(path, tmp_path)
    assert (v_code, b_code) == (1, 1)
    assert "row 5" in b_err
    assert "quantity_increment" in b_err


# ---- bar interval -------------------------------------------------------------------------------


def test_a_single_bar_needs_a_stated_interval(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path / "one.parquet", timed(GOOD[:1]))
    found = violation(path, "bar_interval_known")
    assert found.examples[0].index == 0
    assert [c for c, _ in both(path, tmp_path)] == [1, 1]
    assert require_valid(path, data=DataConfig(bar_interval=HOUR)).ok
    stated = with_meta(tmp_path, {"bar_interval_ns": HOUR}, timed(GOOD[:1]))
    assert require_valid(stated).ok


def test_validation_resolves_instruments_as_the_backtest_does(tmp_path: Path) -> None:
    rows = timed(GOOD)
    table = bars_table(rows + rows, symbols=["A"] * len(rows) + ["B"] * len(rows))
    meta = {"price_increment": "0.5", "quantity_increment": "0.001"}
    path = write_table(tmp_path / "two.parquet",
                       table.replace_schema_metadata({"weltklassebot": json.dumps(meta)}))
    data = DataConfig(quantity_increment=Decimal("0.01"),
                      instruments={"B": InstrumentConfig(price_increment=Decimal("0.25"))})
    report = require_valid(path, data=data)
    config = BacktestConfig(data=data)
    instruments, _ = resolve_instruments(config, open_snapshot(path), report)
    assert report.facts["increments"] == {
        s: {"price": str(i.price_increment), "quantity": str(i.quantity_increment)}
        for s, i in instruments.items()}
    assert report.facts["increments"]["A"] == {"price": "0.5", "quantity": "0.01"}
    assert report.facts["increments"]["B"] == {"price": "0.25", "quantity": "0.01"}


def test_bundled_and_test_snapshots_stay_valid(btc_hourly: Path, msft_daily: Path,
                                               spy_minute: Path, mtgox_trades: Path) -> None:
    for path in (btc_hourly, msft_daily, spy_minute, mtgox_trades):
        report = inspect_snapshot(path)
        assert report.ok, (path, report.violations)
        assert "cleaning" in report.facts["metadata_unknown_keys"]
