"""``backtest --start --end --warmup``: a time range of a snapshot, the warm-up fed without
trading and leaving no record, and the refusals of bad ranges."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from support.cli import run_cli

HOUR_NS = 3_600_000_000_000
GOLDEN = "5157286e233f572603d426108774f4ce4a1407c5602cc1df7cc4999e7a1a94e8"

EAGER = '''
from decimal import Decimal
from typing import Any, ClassVar

from weltklassebot.model.enums import BUY, SELL
from weltklassebot.strategy import Bar, Strategy, StrategyContext


class Eager(Strategy):
    """Buys when flat and sells when long, at every close; logs every bar it sees."""

    name = "eager"
    version = "1.0.0"
    params: ClassVar[dict[str, Any]] = {"qty": Decimal("0.01")}

    def on_start(self, ctx: StrategyContext) -> None:
        self.seen = 0
        ctx.buy(self.p["qty"])

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        self.seen += 1
        ctx.log("bar", seen=self.seen)
        if ctx.open_orders:
            return
        if ctx.position_ticks == 0:
            ctx.buy(self.p["qty"])
        else:
            ctx.sell(ctx.position)
'''


def backtest(tmp: Path, name: str, *args: str | Path) -> dict[str, Any]:
    proc = run_cli("backtest", "--out", tmp / name, "--no-progress", "--no-report", "--json",
                   *args)
    assert proc.returncode == 0, proc.stderr
    summary: dict[str, Any] = json.loads(proc.stdout)
    return summary


def ts_ns(path: Path, column: str = "ts") -> np.ndarray:
    table = pq.read_table(path, columns=[column])
    return np.asarray(table.column(column).cast("int64").to_numpy(), dtype=np.int64)


def test_the_whole_range_is_the_plain_run(tmp_path: Path) -> None:
    summary = backtest(tmp_path, "all", "--start", "2017-07-01T11:00:00Z")
    assert summary["equity_hash"] == GOLDEN
    assert summary["range"]["warmup_bars_fed"] == 0


def test_warmup_bars_are_fed_but_never_trade(tmp_path: Path) -> None:
    strategy = tmp_path / "eager.py"
    strategy.write_text(EAGER, encoding="utf-8")
    start_ns = 1_530_403_200 * 1_000_000_000  # 2018-07-01T00:00:00Z
    summary = backtest(tmp_path, "warm", "--strategy", f"{strategy}:Eager", "--start",
                       "2018-07-01", "--end", "2018-07-03T00:00:00+00:00", "--warmup", "10")
    run = tmp_path / "warm"
    window = summary["range"]
    assert window["warmup_bars_fed"] == 10
    assert window["warmup_first_bar"] == "2018-06-30T14:00:00Z"
    assert window["first_bar"] == "2018-07-01T00:00:00Z"
    assert summary["bars"] == window["bars"] == 48
    equity = ts_ns(run / "equity.parquet")
    assert equity.size == 48
    assert int(equity[0]) == start_ns
    assert int(equity[-1]) == start_ns + 47 * HOUR_NS
    # Nothing before --start: no fill, no order, no denial, no log line of a warm-up bar.
    fills = ts_ns(run / "fills.parquet")
    assert fills.size > 0
    assert int(fills.min()) >= start_ns
    orders = pq.read_table(run / "orders.parquet").to_pylist()
    assert all(o["reason"] != "warmup" for o in orders)
    assert len(orders) == summary["orders"]
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert all(e["event"] != "order_denied" for e in events)
    logs = [e for e in events if e["event"] == "bar"]
    assert min(e["ts_ns"] for e in logs) == start_ns
    # The strategy saw the ten warm-up bars; what it logged at their close events before
    # --start is gone. The last one's close event is at --start, so its line is kept.
    assert [e["seen"] for e in logs] == list(range(10, 59))
    assert summary["denials"] == {}
    assert summary["initial_equity"] == "1000000"
    # The last warm-up bar's close is the first bar in range: its order fills at that open.
    assert int(fills[0]) == start_ns


def test_a_ranged_run_is_reproducible_and_the_warmup_matters(tmp_path: Path) -> None:
    args = ("--start", "2018-03-01", "--end", "2018-05-01", "--param", "fast=5",
            "--param", "slow=40")
    warm = [backtest(tmp_path, f"w{i}", *args, "--warmup", "40")["equity_hash"]
            for i in range(2)]
    cold = backtest(tmp_path, "c", *args)["equity_hash"]
    assert warm[0] == warm[1]
    assert warm[0] != cold


def test_bad_ranges_are_refused(tmp_path: Path) -> None:
    cases = [
        (("--start", "2018-02-01", "--end", "2018-01-01"), "must be after --start"),
        (("--warmup", "5"), "give --start too"),
        (("--start", "2030-01-01"), "has no bar in the range"),
        (("--start", "yesterday"), "not a time"),
    ]
    for args, message in cases:
        proc = run_cli("backtest", "--out", tmp_path / "x", "--no-progress", *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr, proc.stderr
        assert not (tmp_path / "x").exists()
