"""``python -m cli backtest`` end to end, in a subprocess, as a user runs it.

Part 1: every validation rule and every unusable file, a raising strategy and Ctrl-C: the exit
status of DESIGN section 3, a one-paragraph message naming the file, the rule and the first
offending row (or strategy, symbol and bar), never a traceback, and no run directory left.
Part 2: successful runs: the zero-argument run on the bundled sample, the run directory's files,
``--json``, config files and flag precedence, strategy params, user strategies, a multi-symbol
snapshot, a file without a ``symbol`` column, and donchian_breakout trading both ways.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from support.bars import (
    HOUR,
    T0,
    Row,
    bars_table,
    read_rows,
    timed,
    write_snapshot,
    write_table,
)
from support.cli import REPO, cli_env, leftovers, run_cli
from weltklassebot.core.timeutil import ns_to_iso

pytestmark = pytest.mark.integration

GOOD = [(100, 101, 99, 100, 10)] * 8
SAMPLE = REPO / "src" / "weltklassebot" / "sample" / "coinbase_btcusd_1h_2017-07_2019-10.parquet"
SUMMARY_LABELS = ("Strategy", "Data", "Total return", "Max drawdown", "Sharpe", "Fills",
                  "Fees paid", "Equity hash", "Report")


Bar = tuple[float, float, float, float, float]  # open, high, low, close, volume


def bad_rows(index: int, bar: Bar) -> list[Row]:
    rows = timed(GOOD)
    rows[index] = (rows[index][0], *bar)
    return rows


def assert_clean_failure(proc: subprocess.CompletedProcess[str], status: int, tmp: Path,
                         *needles: str) -> None:
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.startswith("error: ") or status == 130
    paragraph = proc.stderr.strip()
    assert "\n" not in paragraph, "one paragraph"
    for needle in needles:
        assert needle in paragraph
    assert not (tmp / "out").exists()
    assert leftovers(tmp) == []


# -- part 1: bad input -------------------------------------------------------------------------

RULE_CASES: list[tuple[str, int, Bar]] = [
    ("price_finite_positive", 3, (math.nan, 101, 99, 100, 10)),
    ("price_finite_positive", 4, (100, math.inf, 99, 100, 10)),
    ("price_finite_positive", 2, (100, 101, 99, -math.inf, 10)),
    ("price_finite_positive", 5, (0.0, 101, 99, 100, 10)),
    ("price_finite_positive", 1, (100, 101, -99, 100, 10)),
    ("high_ge_open_close", 3, (100, 99.5, 99, 100, 10)),
    ("high_ge_open_close", 6, (100, 101, 99, 102, 10)),
    ("low_le_open_close", 2, (100, 101, 100.5, 101, 10)),
    ("low_le_open_close", 7, (98, 101, 99, 100, 10)),
    ("volume_non_negative", 4, (100, 101, 99, 100, -1)),
]


@pytest.mark.parametrize(("rule", "index", "bar"), RULE_CASES,
                         ids=[f"{r}-row{i}" for r, i, _ in RULE_CASES])
def test_each_value_rule_is_refused_with_exit_1(tmp_path: Path, rule: str, index: int,
                                                bar: Bar) -> None:
    path = write_snapshot(tmp_path / "bad.parquet", bad_rows(index, bar))
    proc = run_cli("backtest", "--data-snapshot", path, "--out", tmp_path / "out")
    assert_clean_failure(proc, 1, tmp_path, str(path), f"rule '{rule}'",
                         f"row {index} (ts {ns_to_iso(T0 + index * HOUR)})")


def _unsorted(tmp: Path) -> tuple[Path, str, int, int]:
    rows = timed(GOOD)
    rows[4], rows[5] = rows[5], rows[4]
    return write_snapshot(tmp / "unsorted.parquet", rows), "ts_sorted", 5, T0 + 4 * HOUR


def _duplicate(tmp: Path) -> tuple[Path, str, int, int]:
    rows = timed(GOOD)
    rows[3] = (rows[2][0], *rows[3][1:])
    return write_snapshot(tmp / "dup.parquet", rows), "ts_unique", 3, T0 + 2 * HOUR


def _duplicate_symbol(tmp: Path) -> tuple[Path, str, int, int]:
    rows = timed(GOOD[:3])
    doubled = [rows[0], rows[0], rows[1], rows[1], rows[2], rows[1]]
    path = write_snapshot(tmp / "dup_sym.parquet", doubled,
                          symbols=["A", "B", "A", "B", "A", "A"])
    return path, "ts_sorted", 5, T0 + HOUR


def _null(tmp: Path) -> tuple[Path, str, int, int]:
    table = bars_table(timed(GOOD))
    volume = pa.array([1.0, 1.0, None, 1.0, 1.0, 1.0, 1.0, 1.0])
    table = table.set_column(table.schema.get_field_index("volume"), "volume", volume)
    return write_table(tmp / "null.parquet", table), "not_null", 2, T0 + 2 * HOUR


@pytest.mark.parametrize("make", [_unsorted, _duplicate, _duplicate_symbol, _null],
                         ids=["unsorted_ts", "duplicate_ts", "duplicate_ts_symbol", "null"])
def test_order_and_null_rules(tmp_path: Path,
                              make: Callable[[Path], tuple[Path, str, int, int]]) -> None:
    path, rule, index, ts = make(tmp_path)
    proc = run_cli("backtest", "--data-snapshot", path, "--out", tmp_path / "out")
    assert_clean_failure(proc, 1, tmp_path, str(path), f"rule '{rule}'",
                         f"row {index} (ts {ns_to_iso(ts)}")


def test_duplicate_ts_within_one_symbol_is_named(tmp_path: Path) -> None:
    rows = timed(GOOD[:3])
    doubled = [rows[0], rows[0], rows[1], rows[1], rows[2], rows[2]]
    path = write_snapshot(tmp_path / "dup.parquet", doubled,
                          symbols=["A", "B", "A", "A", "A", "B"])
    proc = run_cli("backtest", "--data-snapshot", path, "--out", tmp_path / "out")
    assert_clean_failure(proc, 1, tmp_path, str(path), "rule 'ts_unique'",
                         f"row 3 (ts {ns_to_iso(T0 + HOUR)}, symbol A)")


def test_zero_rows_break_the_non_empty_rule(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path / "zero.parquet", [])
    proc = run_cli("backtest", "--data-snapshot", path, "--out", tmp_path / "out")
    assert_clean_failure(proc, 1, tmp_path, str(path), "rule 'non_empty'")


def _write_bytes(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(data)
        return path
    return make


def _truncated(tmp: Path) -> Path:
    path = tmp / "truncated.parquet"
    path.write_bytes(SAMPLE.read_bytes()[: SAMPLE.stat().st_size // 2])
    return path


def _footer_only_damage(tmp: Path) -> Path:
    data = bytearray(SAMPLE.read_bytes())
    data[4:200_000] = bytes(200_000 - 4)
    path = tmp / "damaged.parquet"
    path.write_bytes(bytes(data))
    return path


def _schema(change: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        table = bars_table(timed(GOOD))
        if change == "naive":
            table = bars_table(timed(GOOD), ts_type=pa.timestamp("us"))
        elif change == "missing":
            table = table.drop_columns(["volume"])
        elif change == "text":
            table = table.set_column(4, "close", table.column("close").cast(pa.string()))
        elif change == "epoch":
            table = table.set_column(0, "ts", table.column("ts").cast(pa.int64()))
        return write_table(tmp / f"{change}.parquet", table)
    return make


UNUSABLE = [
    ("missing", lambda tmp: tmp / "nope.parquet", "does not exist"),
    ("empty", _write_bytes("empty.parquet", b""), "is empty (0 bytes)"),
    ("truncated", _truncated, "not a readable Parquet file"),
    ("damaged_data", _footer_only_damage, "damaged"),
    ("csv_renamed", _write_bytes("bars.parquet",
                                 b"ts,open,high,low,close,volume\n2024-01-01,1,1,1,1,1\n"),
     "not a readable Parquet file"),
    ("directory", lambda tmp: tmp, "is a directory"),
    ("zone_less_ts", _schema("naive"), "zone-less timestamp"),
    ("missing_column", _schema("missing"), "has no column(s) volume"),
    ("non_numeric_column", _schema("text"), "column close has type string"),
    ("ts_not_a_timestamp", _schema("epoch"), "not a timestamp"),
]


@pytest.mark.parametrize(("label", "make", "phrase"), UNUSABLE, ids=[u[0] for u in UNUSABLE])
def test_unusable_files_exit_2(tmp_path: Path, label: str, make: Callable[[Path], Path],
                               phrase: str) -> None:
    path = make(tmp_path)
    proc = run_cli("backtest", "--data-snapshot", path, "--out", tmp_path / "out")
    assert_clean_failure(proc, 2, tmp_path, f"snapshot {path}", phrase)


def test_trades_snapshot_is_refused_for_bars(tmp_path: Path, mtgox_trades: Path) -> None:
    proc = run_cli("backtest", "--data-snapshot", mtgox_trades, "--out", tmp_path / "out")
    assert_clean_failure(proc, 2, tmp_path, str(mtgox_trades), "trade ticks", "bars")


BOOM = '''
from weltklassebot.strategy.base import Strategy


class Boom(Strategy):
    name = "boom"
    version = "1"

    def on_bar(self, ctx, bar):
        if bar.index == 3:
            raise RuntimeError("kaboom")
'''


def test_a_raising_strategy_exits_3_naming_strategy_symbol_and_bar(tmp_path: Path) -> None:
    strategy = tmp_path / "boom.py"
    strategy.write_text(BOOM)
    path = write_snapshot(tmp_path / "bars.parquet", timed(GOOD),
                          metadata={"symbol": "XYZ", "bar_interval_ns": HOUR})
    proc = run_cli("backtest", "--data-snapshot", path, "--strategy", strategy,
                   "--out", tmp_path / "out")
    assert_clean_failure(proc, 3, tmp_path, "strategy boom", "RuntimeError: kaboom",
                         "symbol XYZ", f"bar starting {ns_to_iso(T0 + 3 * HOUR)}",
                         f"{strategy}:11")


def test_a_strategy_raising_in_a_multi_symbol_run_names_its_symbol(tmp_path: Path) -> None:
    strategy = tmp_path / "boom.py"
    strategy.write_text(BOOM.replace("bar.index == 3", "ctx.symbol == 'BBB' and bar.index == 2"))
    rows = timed(GOOD)
    path = write_snapshot(tmp_path / "bars.parquet", rows + rows,
                          symbols=["AAA"] * len(rows) + ["BBB"] * len(rows))
    proc = run_cli("backtest", "--data-snapshot", path, "--strategy", strategy,
                   "--out", tmp_path / "out")
    assert_clean_failure(proc, 3, tmp_path, "symbol BBB",
                         f"bar starting {ns_to_iso(T0 + 2 * HOUR)}")


@pytest.mark.parametrize(
    ("body", "hook", "line"),
    [
        ("    def __init__(self, **params):\n        super().__init__(**params)\n"
         "        raise RuntimeError('kaboom')\n", "__init__", 11),
        ("    def validate(self):\n        raise RuntimeError('kaboom')\n", "validate", 10),
        ("    def on_start(self, ctx):\n        raise RuntimeError('kaboom')\n", "on_start", 10),
    ],
)
def test_a_strategy_raising_before_the_first_bar_exits_3(tmp_path: Path, body: str, hook: str,
                                                         line: int) -> None:
    strategy = tmp_path / "early.py"
    strategy.write_text(BOOM.split("    def on_bar")[0] + body)
    path = write_snapshot(tmp_path / "bars.parquet", timed(GOOD))
    proc = run_cli("backtest", "--data-snapshot", path, "--strategy", strategy,
                   "--out", tmp_path / "out")
    assert_clean_failure(proc, 3, tmp_path, "strategy boom raised RuntimeError: kaboom",
                         f"in {hook}", f"{strategy}:{line}")
    assert "internal error" not in proc.stderr


SLEEPER = '''
import pathlib
import time

from weltklassebot.strategy.base import Strategy

MARKER = pathlib.Path(__file__).with_name("started")


class Sleeper(Strategy):
    name = "sleeper"
    version = "1"

    def on_bar(self, ctx, bar):
        if bar.index == 5:
            MARKER.write_text("yes")
        if bar.index >= 5:
            time.sleep(0.01)
        if bar.index % 7 == 0:
            ctx.buy(1)
'''


@pytest.mark.parametrize(("sig", "status", "word"), [(signal.SIGINT, 130, "interrupted"),
                                                      (signal.SIGTERM, 143, "terminated")])
def test_ctrl_c_exits_130_without_traceback_or_run_directory(
        tmp_path: Path, msft_daily: Path, sig: signal.Signals, status: int, word: str) -> None:
    strategy = tmp_path / "sleeper.py"
    strategy.write_text(SLEEPER)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "backtest", "--data-snapshot", str(msft_daily),
         "--strategy", str(strategy), "--out", str(out)],
        cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "started").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert any(p.name.startswith(".incomplete") for p in tmp_path.iterdir())
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status, stderr
    assert "Traceback" not in stdout + stderr
    assert word in stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".incomplete")] == []


def test_config_unknown_key_and_wrong_type_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text("seed = 1\n[execution]\ninital_cash = 5\n")
    proc = run_cli("backtest", "--config", config, "--out", tmp_path / "out")
    assert_clean_failure(proc, 2, tmp_path, str(config), "unknown key 'execution.inital_cash'")
    config.write_text('[execution.fees]\ntaker_bps = "cheap"\n')
    proc = run_cli("backtest", "--config", config, "--out", tmp_path / "out")
    assert_clean_failure(proc, 2, tmp_path, str(config), "key 'execution.fees.taker_bps'")
    config.write_text("seed = [1]\n")
    proc = run_cli("backtest", "--config", config, "--out", tmp_path / "out")
    assert_clean_failure(proc, 2, tmp_path, "key 'seed'")
    config.write_text('strategy = "sma_cross"\n')
    proc = run_cli("backtest", "--config", config, "--strategy", "sma_cross",
                   "--out", tmp_path / "out")
    assert_clean_failure(proc, 2, tmp_path, str(config), "key 'strategy'")
    config.write_text("seed = \n")
    proc = run_cli("backtest", "--config", config, "--out", tmp_path / "out")
    assert_clean_failure(proc, 2, tmp_path, str(config), "not valid TOML")
    proc = run_cli("backtest", "--config", tmp_path / "absent.toml", "--out", tmp_path / "out")
    assert_clean_failure(proc, 2, tmp_path, "absent.toml", "does not exist")


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["--param", "nope=1"], "has no parameter nope"),
        (["--param", "fast=abc"], "parameter fast must be of type int"),
        (["--param", "fast"], "KEY=VALUE"),
        (["--param", "fast=40"], "must be smaller than slow"),
        (["--strategy", "no_such_strategy"], "unknown strategy 'no_such_strategy'"),
        (["--seed", "-3"], "--seed"),
        (["--bogus"], "No such option"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], phrase: str) -> None:
    proc = run_cli("backtest", *args, "--out", tmp_path / "out")
    assert_clean_failure(proc, 2, tmp_path, phrase)


def test_existing_non_empty_out_is_refused_and_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    proc = run_cli("backtest", "--out", out)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"output directory {out} already exists and is not empty" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["precious.txt"]
    assert (out / "precious.txt").read_text() == "keep me"
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".incomplete")] == []


# -- part 2: successful runs ---------------------------------------------------------------------

def run_ok(*args: str | Path, cwd: Path = REPO, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    proc = run_cli("backtest", *args, cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def load_run(out: Path) -> dict[str, Any]:
    return {
        "summary": json.loads((out / "summary.json").read_text()),
        "manifest": json.loads((out / "manifest.json").read_text()),
        "fills": pq.read_table(out / "fills.parquet"),
        "orders": pq.read_table(out / "orders.parquet"),
        "equity": pq.read_table(out / "equity.parquet"),
    }


def plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("0", "-0") else text


def recompute_equity_hash(run: dict[str, Any]) -> str:
    """The equity hash of docs/equity-hash.md, rebuilt from the run's Parquet files."""
    lines = ["weltklassebot-equity-hash v1\n"]
    fills = run["fills"]
    ts = fills.column("ts").cast(pa.int64()).to_pylist()
    for i, row in enumerate(fills.to_pylist()):
        lines.append(f"{ts[i]},{row['symbol']},{row['side']},{plain(row['price'])},"
                     f"{plain(row['qty'])},{plain(row['fee'])},{row['order_id']},"
                     f"{row['fill_id']}\n")
    equity = run["equity"]
    for t, e in zip(equity.column("ts").cast(pa.int64()).to_pylist(),
                    equity.column("equity").to_pylist(), strict=True):
        lines.append(f"{t},{plain(e)}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def test_zero_argument_run_on_the_bundled_sample(tmp_path: Path) -> None:
    proc = run_ok(cwd=tmp_path)
    assert proc.stderr == ""  # no progress bar when stderr is not a terminal
    for label in SUMMARY_LABELS:
        assert re.search(rf"^{label}\b.*\S", proc.stdout, re.MULTILINE), label
    (run_dir,) = (tmp_path / "runs").iterdir()
    run = load_run(run_dir)
    summary, manifest = run["summary"], run["manifest"]
    assert re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z-sma_cross-[0-9a-f]{8}", run_dir.name)
    assert run_dir.name.endswith(summary["equity_hash"][:8])
    assert re.search(rf"^Equity hash +{summary['equity_hash']}$", proc.stdout, re.MULTILINE)
    for key in ("stats", "benchmark", "fills", "fees_paid", "equity_hash", "data", "params"):
        assert key in summary
    # One Sharpe, one total return, one drawdown: the stats object's (schema version 3).
    assert not {"total_return", "max_drawdown", "sharpe"} & set(summary)
    assert summary["schema_version"] == 3
    assert summary["data"]["rows"] == 20111
    assert summary["data"]["interval"] == "1h"
    assert re.search(r"^Sharpe \(annualised\) +\S+ +\S+$", proc.stdout, re.MULTILINE)
    assert summary["fills"] > 0
    assert summary["bars"] == 20111
    # manifest
    assert manifest["argv"] == [sys.executable, "-m", "cli", "backtest"]
    assert manifest["seed"] == 0
    assert manifest["config"]["execution"]["fees"] == {"maker_bps": "10", "taker_bps": "10",
                                                       "min_fee": "0"}
    assert manifest["config"]["execution"]["initial_cash"] == "1000000"
    strategy = manifest["strategy"]
    assert (strategy["name"], strategy["version"]) == ("sma_cross", "1.0.0")
    source = REPO / "src" / "weltklassebot" / "strategy" / "builtin" / "sma_cross.py"
    assert strategy["code_hash"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert strategy["params"] == {"fast": 10, "slow": 30, "qty": "1",
                                  "fraction": "0.95"}
    assert Path(manifest["snapshot"]["path"]).resolve() == SAMPLE.resolve()
    assert manifest["snapshot"]["sha256"] == hashlib.sha256(SAMPLE.read_bytes()).hexdigest()
    assert manifest["equity_hash"] == summary["equity_hash"]
    assert manifest["counts"]["fills"] == summary["fills"] == run["fills"].num_rows
    assert manifest["counts"]["orders"] == run["orders"].num_rows
    assert manifest["counts"]["bars"] == 20111
    assert manifest["wall_time_seconds"] > 0
    assert manifest["package_version"]
    for dependency in ("python", "numpy", "pyarrow"):
        assert manifest["versions"][dependency]
    assert manifest["instruments"]["BTC/USD"]["bar_interval"] == "1h"
    # run files
    assert {"ts", "symbol", "side", "price", "qty", "fee", "order_id", "fill_id"} <= set(
        run["fills"].column_names)
    assert set(run["fills"].column("side").to_pylist()) == {"buy", "sell"}
    assert run["equity"].column_names[:4] == ["ts", "equity", "cash", "drawdown"]
    assert run["equity"].num_rows == 20111
    drawdown = run["equity"].column("drawdown").to_pylist()
    assert min(drawdown) >= 0
    assert max(drawdown) == pytest.approx(summary["stats"]["max_drawdown"])
    assert recompute_equity_hash(run) == summary["equity_hash"]
    final = run["equity"].column("equity").to_pylist()[-1]
    assert plain(final) == summary["final_equity"]
    assert not [p for p in (tmp_path / "runs").iterdir() if p.name.startswith(".")]


def test_json_output_is_the_summary(tmp_path: Path, msft_daily: Path) -> None:
    out = tmp_path / "out"
    proc = run_ok("--data-snapshot", msft_daily, "--json", "--seed", "123", "--out", out)
    printed = json.loads(proc.stdout)
    assert printed == json.loads((out / "summary.json").read_text())
    assert printed["seed"] == 123
    assert printed["run_dir"] == str(out)
    assert load_run(out)["manifest"]["seed"] == 123


def test_config_file_and_flags_override_it(tmp_path: Path, msft_daily: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text(
        f'seed = 5\n[data]\nsnapshot = "{msft_daily}"\n'
        '[strategy]\nname = "sma_cross"\nparams = { fast = 3, slow = 9 }\n'
        '[execution]\ninitial_cash = 250000\n[execution.fees]\ntaker_bps = 2\n')
    from_config = tmp_path / "a"
    run_ok("--config", config, "--out", from_config)
    manifest = load_run(from_config)["manifest"]
    assert manifest["seed"] == 5
    assert manifest["config_file"] == str(config)
    assert manifest["strategy"]["params"] == {"fast": 3, "slow": 9, "qty": "1",
                                                   "fraction": "0"}
    assert manifest["config"]["execution"]["initial_cash"] == "250000"
    overridden = tmp_path / "b"
    run_ok("--config", config, "--seed", "9", "--param", "fast=4", "--out", overridden)
    manifest = load_run(overridden)["manifest"]
    assert manifest["seed"] == 9
    assert manifest["strategy"]["params"] == {"fast": 4, "slow": 9, "qty": "1",
                                                   "fraction": "0"}
    assert manifest["config"]["execution"]["fees"]["taker_bps"] == "2"
    # --strategy replaces the configured strategy and drops the params meant for it.
    other = tmp_path / "c"
    run_ok("--config", config, "--strategy", "donchian_breakout", "--out", other)
    strategy = load_run(other)["manifest"]["strategy"]
    assert (strategy["name"], strategy["params"]) == (
        "donchian_breakout", {"entry": 20, "exit": 10, "qty": "1", "fraction": "0"})
    # The environment sits between the config and the flags.
    env_config = tmp_path / "env.toml"
    env_config.write_text("seed = 77\n")
    by_env = tmp_path / "d"
    run_ok("--data-snapshot", msft_daily, "--out", by_env,
           env={"WELTKLASSE_CONFIG": str(env_config)})
    assert load_run(by_env)["manifest"]["seed"] == 77


def test_params_change_the_trades(tmp_path: Path, msft_daily: Path) -> None:
    run_ok("--data-snapshot", msft_daily, "--out", tmp_path / "default")
    run_ok("--data-snapshot", msft_daily, "--param", "fast=5", "--param", "slow=20",
           "--out", tmp_path / "tuned")
    default, tuned = load_run(tmp_path / "default"), load_run(tmp_path / "tuned")
    assert tuned["manifest"]["strategy"]["params"] == {"fast": 5, "slow": 20, "qty": "1",
                                                              "fraction": "0"}
    assert tuned["manifest"]["argv"][-4:-2] == ["--param", "slow=20"]
    assert tuned["summary"]["fills"] != default["summary"]["fills"]


def test_same_seed_same_hash_in_a_fresh_process(tmp_path: Path, msft_daily: Path) -> None:
    args = ["--data-snapshot", str(msft_daily), "--json"]
    first = json.loads(run_ok(*args, "--out", tmp_path / "x").stdout)
    second = json.loads(run_ok(*args, "--out", tmp_path / "y",
                               env={"PYTHONHASHSEED": "123"}).stdout)
    assert first["equity_hash"] == second["equity_hash"]


USER_STRATEGY = '''
from weltklassebot.strategy.base import Strategy


class EveryTenth(Strategy):
    """Buys at every tenth bar, sells five bars later."""

    name = "every_tenth"
    version = "0.3"
    params = {"qty": 2}

    def on_bar(self, ctx, bar):
        if bar.index % 10 == 0:
            ctx.buy(self.p["qty"])
        elif bar.index % 10 == 5 and ctx.position_ticks > 0:
            ctx.sell(ctx.position)
'''


def test_user_strategy_from_a_file_path_and_from_module_class(tmp_path: Path,
                                                              msft_daily: Path) -> None:
    package = tmp_path / "mystrats"
    package.mkdir()
    (package / "__init__.py").write_text("")
    path = package / "tenth.py"
    path.write_text(USER_STRATEGY)
    by_path = tmp_path / "by_path"
    run_ok("--data-snapshot", msft_daily, "--strategy", path, "--param", "qty=3",
           "--out", by_path)
    by_module = tmp_path / "by_module"
    run_ok("--data-snapshot", msft_daily, "--strategy", "mystrats.tenth:EveryTenth",
           "--param", "qty=3", "--out", by_module, env={"PYTHONPATH": str(tmp_path)})
    one, two = load_run(by_path), load_run(by_module)
    for run in (one, two):
        strategy = run["manifest"]["strategy"]
        assert (strategy["name"], strategy["version"]) == ("every_tenth", "0.3")
        assert strategy["code_hash"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert strategy["params"] == {"qty": 3}
        assert set(run["fills"].column("qty").to_pylist()) == {Decimal(3)}
    assert one["summary"]["equity_hash"] == two["summary"]["equity_hash"]
    bars = 7983  # an order at the last bar never fills
    buys = [k for k in range(bars - 1) if k % 10 == 0]
    sells = [k for k in range(bars - 1) if k % 10 == 5]
    assert one["summary"]["fills"] == len(buys) + len(sells)


def test_file_without_symbol_column_or_metadata_trades_as_default(tmp_path: Path,
                                                                 msft_daily: Path) -> None:
    path = write_snapshot(tmp_path / "plain.parquet", read_rows(msft_daily))
    assert "symbol" not in pq.read_schema(path).names
    out = tmp_path / "out"
    run_ok("--data-snapshot", path, "--out", out)
    run = load_run(out)
    assert set(run["fills"].column("symbol").to_pylist()) == {"default"}
    assert run["manifest"]["instruments"]["default"]["bar_interval"] == "1d"
    named = tmp_path / "named"
    config = tmp_path / "c.toml"
    config.write_text('[data]\nsymbol = "MSFT"\n')
    run_ok("--data-snapshot", path, "--config", config, "--out", named)
    assert set(load_run(named)["fills"].column("symbol").to_pylist()) == {"MSFT"}
    assert load_run(named)["summary"]["equity_hash"] != run["summary"]["equity_hash"]


def _fills_of(run: dict[str, Any], symbol: str | None = None) -> list[tuple[Any, ...]]:
    rows = run["fills"].to_pylist()
    ts = run["fills"].column("ts").cast(pa.int64()).to_pylist()
    return [(t, r["side"], r["price"], r["qty"], r["fee"]) for t, r in zip(ts, rows, strict=True)
            if symbol is None or r["symbol"] == symbol]


def test_multi_symbol_snapshot_is_traded_per_symbol_with_one_cash_balance(
        tmp_path: Path, msft_daily: Path, btc_hourly: Path) -> None:
    msft = read_rows(msft_daily)
    btc = [r for r in read_rows(btc_hourly) if r[0] <= msft[-1][0]]
    both = write_snapshot(tmp_path / "both.parquet", msft + btc,
                          symbols=["MSFT"] * len(msft) + ["BTC"] * len(btc))
    btc_only = write_snapshot(tmp_path / "btc.parquet", btc)
    for path, out in ((both, "both"), (msft_daily, "msft"), (btc_only, "btc")):
        run_ok("--data-snapshot", path, "--param", "fast=5", "--param", "slow=20",
               "--out", tmp_path / out)
    multi, one, two = (load_run(tmp_path / n) for n in ("both", "msft", "btc"))
    assert multi["manifest"]["snapshot"]["symbols"] == ["BTC", "MSFT"]
    assert multi["manifest"]["instruments"]["MSFT"]["bar_interval"] == "1d"
    assert multi["manifest"]["instruments"]["BTC"]["bar_interval"] == "1h"
    assert _fills_of(multi, "MSFT") == _fills_of(one)
    assert _fills_of(multi, "BTC") == _fills_of(two)
    assert set(multi["fills"].column("symbol").to_pylist()) == {"BTC", "MSFT"}
    # One equity point per distinct timestamp (MSFT days at 00:00 coincide with BTC hours).
    distinct = {r[0] for r in msft} | {r[0] for r in btc}
    assert len(distinct) < len(msft) + len(btc)
    equity_ts = multi["equity"].column("ts").cast(pa.int64()).to_pylist()
    assert equity_ts == sorted(distinct)
    assert multi["summary"]["bars"] == len(msft) + len(btc)
    # One cash balance: the final cash is the initial cash less what both symbols' fills cost.
    spent = sum((1 if r["side"] == "buy" else -1) * r["notional"] + r["fee"]
                for r in multi["fills"].to_pylist())
    assert Decimal(multi["summary"]["final_cash"]) == Decimal(1_000_000) - spent
    gains = [Decimal(r["summary"]["final_equity"]) - Decimal(1_000_000) for r in (one, two)]
    assert Decimal(multi["summary"]["final_equity"]) - Decimal(1_000_000) == sum(gains)


def test_donchian_breakout_trades_long_and_short_on_real_data(tmp_path: Path,
                                                              msft_daily: Path) -> None:
    out = tmp_path / "out"
    run_ok("--data-snapshot", msft_daily, "--strategy", "donchian_breakout", "--out", out)
    run = load_run(out)
    position, seen = Decimal(0), set()
    for row in run["fills"].to_pylist():
        position += row["qty"] if row["side"] == "buy" else -row["qty"]
        seen.add((position > 0) - (position < 0))
        assert abs(position) <= 1
    assert seen == {-1, 0, 1}
    orders = run["orders"].to_pylist()
    assert {o["type"] for o in orders} == {"stop"}
    filled_tags = {o["tag"] for o in orders if o["status"] == "filled"}
    assert {"long_entry", "short_entry", "long_exit", "short_exit"} <= filled_tags
    assert run["summary"]["fills"] > 100


def test_progress_bar_is_drawn_only_on_a_terminal(tmp_path: Path, msft_daily: Path) -> None:
    if not hasattr(os, "openpty"):
        pytest.skip("no pseudo-terminals here")
    controller, terminal = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "backtest", "--data-snapshot", str(msft_daily),
         "--out", str(tmp_path / "out")],
        cwd=REPO, env=cli_env({"COLUMNS": "100", "TERM": "xterm"}), stdout=subprocess.PIPE,
        stderr=terminal,
    )
    os.close(terminal)
    drawn = b""
    try:
        while True:
            try:
                block = os.read(controller, 65536)
            except OSError:  # the terminal is gone once the child has exited
                break
            if not block:
                break
            drawn += block
        proc.communicate(timeout=120)
    finally:
        os.close(controller)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert b"backtest" in drawn
    assert b"Traceback" not in drawn


def test_no_command_shows_the_commands_and_succeeds() -> None:
    done = subprocess.run([sys.executable, "-m", "cli"], cwd=REPO, capture_output=True,
                          text=True, check=False, timeout=60)
    assert done.returncode == 0
    for name in ("backtest", "replay", "snapshot", "risk", "state"):
        assert name in done.stdout
    assert done.stderr == ""
