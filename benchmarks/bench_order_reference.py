"""Order-heavy backtest against backtesting.py: ``python benchmarks/bench_order_reference.py
[--bars N]
[--repeat K]``.

The order-heavy workload of ``bench_backtest.py`` (``donchian_breakout``, qty 1, cash 10^10, on
the additive random walk around 10,000 that ``order_walk`` makes, N one-minute bars, default
1,000,000) run two ways on the same generated file, in the same run, each in its own process:

* **weltklassebot** as a user runs it: ``python -m cli backtest --config ... --data-snapshot ...
  --out ... --json --no-progress`` with this checkout's ``src`` on ``PYTHONPATH`` (the whole
  command: reading and checking the data, the run, every output and the report);
* **backtesting.py** running the same rules (``Reference`` below): this script again, in a
  hidden mode, reads the file with pandas and runs ``Backtest.run`` (its statistics included).

Reported per engine: the whole-process wall and CPU time (user + system, less disturbed than
wall time by other work on a shared machine), for ours also the time in process (the manifest's
``wall_time_seconds``: from opening the snapshot to the run directory's final rename), the orders
placed / cancelled / filled, orders placed per second of whole-process time, and the ratios
backtesting.py / weltklassebot of whole and CPU time (above 1 means ours is faster). Ratios are
the claim; absolute figures only illustrate (machines are noisy).

The order counts of the two engines agree closely but not exactly: ``donchian_breakout`` cancels
the opposite entry stop in ``on_fill``, at once, so one bar fills at most one entry; backtesting.py
has no fill callback, so the opposite entry is cancelled at the next ``next()``, and a bar that
reaches both entry stops fills both (long, then closed: flat again). The script prints both sets
of counts and their differences.

Needs the bench extra (backtesting); without it the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
ENTRY, EXIT = 20, 10  # donchian_breakout's default channels
# bench_backtest.py's order-heavy workload, exactly.
CONFIG = ('[data]\nprice_increment = "0.01"\n[strategy]\nname = "donchian_breakout"\n'
          '[strategy.params]\nqty = 1\n[execution]\ninitial_cash = "10000000000"\n')


def channel(ticks: Any, n: int, extreme: str) -> list[int]:
    """Highest (``extreme="max"``) or lowest of the last ``n`` values including the current one,
    as Python integers; 0 before ``n`` values are seen (never read there)."""
    windows = np.lib.stride_tricks.sliding_window_view(ticks, n)
    values = windows.max(axis=1) if extreme == "max" else windows.min(axis=1)
    extremes: list[int] = values.tolist()
    return [0] * (n - 1) + extremes


def reference(walk: Path) -> dict[str, float | int]:
    """Run the rules of ``donchian_breakout`` in backtesting.py on ``walk``; its counts."""
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]
    from backtesting import Backtest, Strategy  # type: ignore[import-untyped]

    class Reference(Strategy):  # type: ignore[misc]
        """donchian_breakout in backtesting.py, prices in units of 0.01 (one tick).

        At each ``next()`` (a bar's close; orders placed here may fill from the next bar, as
        in our engine), once ``entry`` bars are seen: flat -> a buy stop one tick above the
        highest high of the last ``entry`` bars and a sell stop one tick below the lowest low,
        size 1; long -> a sell stop for the position one tick below the lowest low of the last
        ``exit`` bars; short -> a buy stop for the position one tick above the highest high of
        the last ``exit`` bars. A resting stop that is already right (same size with its sign,
        level and tag) keeps resting; every other one is cancelled, and the stops still missing
        are placed. The tag keeps an entry stop from standing in for an exit at the same level:
        the built-in cancels the opposite entry when the first one fills and then places the
        exit, so it is done here too (one bar later, see the module docstring).

        Stop orders in backtesting.py: a buy stop is hit when high >= stop and then fills as a
        market order at max(open, stop) (a sell: low <= stop, min(open, stop)), the rule of
        docs/fill-model.md. With ``hedging=False`` a sell while long closes the long trade
        (FIFO) instead of opening a short, so the exit is a plain ``sell``/``buy`` of the
        position's size. ``order.cancel()`` removes the order from the broker's queue at once.
        """

        entry = ENTRY
        exit = EXIT

        def init(self) -> None:
            # Channels in integer ticks, including the current bar (no look-ahead: index i
            # uses bars i-n+1..i). Kept out of ``self.I`` so that backtesting.py does not skip
            # a warm-up: ``next()`` runs from the second bar, as ``on_bar`` is called from the
            # first, and returns until ``entry`` bars are seen.
            high = np.rint(np.asarray(self.data.High) * 100).astype(np.int64)
            low = np.rint(np.asarray(self.data.Low) * 100).astype(np.int64)
            self.entry_high = channel(high, self.entry, "max")
            self.entry_low = channel(low, self.entry, "min")
            self.exit_high = channel(high, self.exit, "max")
            self.exit_low = channel(low, self.exit, "min")
            self.placed = self.cancelled = self.filled = 0
            self.resting: tuple[Any, ...] = ()

        def next(self) -> None:
            i = len(self.data) - 1
            if i < self.entry - 1:
                return
            book = self.orders
            # Fills, counted by the book: with cash 10^10 and margin 1 the broker never drops an
            # order for margin, so an order left resting at the last close that is gone now and
            # that this strategy did not cancel was filled (one fill each, size 1 or the whole
            # position). Checked against the trades at the end (``reference`` below).
            self.filled += sum(1 for order in self.resting if order not in book)
            position = self.position.size
            # (size with its sign, stop price, tag). A stop level is ticks / 100: the double
            # nearest the two-decimal price, the same double the file holds for that price
            # (so the comparison with a resting order's ``stop`` is exact).
            wanted: list[tuple[int, float, str]]
            if position == 0:
                wanted = [(1, (self.entry_high[i] + 1) / 100, "long_entry")]
                entry_low = self.entry_low[i]
                if entry_low > 1:
                    wanted.append((-1, (entry_low - 1) / 100, "short_entry"))
            elif position > 0:
                exit_low = self.exit_low[i]
                wanted = [(-position, (exit_low - 1) / 100, "long_exit")] if exit_low > 1 else []
            else:
                wanted = [(-position, (self.exit_high[i] + 1) / 100, "short_exit")]
            for order in book:
                key = (order.size, order.stop, order.tag)
                if key in wanted:
                    wanted.remove(key)
                    continue
                order.cancel()
                self.cancelled += 1
            for size, stop, tag in wanted:
                if size > 0:
                    self.buy(size=size, stop=stop, tag=tag)
                else:
                    self.sell(size=-size, stop=stop, tag=tag)
                self.placed += 1
            self.resting = self.orders

    df = pd.read_parquet(walk)
    df = df.set_index(pd.DatetimeIndex(df.pop("ts"))).rename(columns=str.capitalize)
    bt = Backtest(df, Reference, cash=10**10, commission=0.0, margin=1, trade_on_close=False,
                  hedging=False, exclusive_orders=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "some trades remain open at the end"
        stats = bt.run()
    strategy = stats["_strategy"]
    # The same fills from the trades: every trade was opened by one fill and every closed one
    # closed by one more (an exit is the whole position, so no fill splits or flips a trade).
    by_trades = len(strategy.trades) + 2 * len(strategy.closed_trades)
    if by_trades != strategy.filled:
        raise SystemExit(f"backtesting.py: {strategy.filled} fills by the book, {by_trades} by "
                         "the trades")
    return {"bars": len(df), "placed": strategy.placed, "cancelled": strategy.cancelled,
            "filled": strategy.filled}


def run_reference(walk: Path, work: Path) -> tuple[float, float, dict[str, Any]]:
    """This script in its hidden mode, in its own process: whole wall, CPU, its counts."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--backtesting-py", str(walk)]
    env = dict(os.environ, PYTHONHASHSEED="0")
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=work, stdout=stdout, stderr=stderr)
        _pid, status, usage = os.wait4(proc.pid, 0)
        whole = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            stderr.seek(0)
            raise SystemExit(f"backtesting.py run failed ({code}): "
                             f"{stderr.read().decode(errors='replace')}")
        stdout.seek(0)
        counts: dict[str, Any] = json.loads(stdout.read())
    return whole, usage.ru_utime + usage.ru_stime, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per engine, alternating; the fastest kept (ours by the time in "
                        "process, backtesting.py by whole time)")
    parser.add_argument("--backtesting-py", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.backtesting_py is not None:
        print(json.dumps(reference(args.backtesting_py)))
        return
    if importlib.util.find_spec("backtesting") is None:
        print("backtesting.py skipped: the package backtesting is not installed (the bench "
              "extra)")
        return
    sys.path.insert(0, str(BENCH))
    from bench_backtest import Workload, best, check_source, order_counts, order_walk, run_cli

    n = args.bars
    if n < ENTRY + 1:
        raise SystemExit(f"--bars must be at least {ENTRY + 1}")
    src = REPO / "src"
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        work = tmp / "work"
        work.mkdir()
        check_source(dict(os.environ, PYTHONPATH=str(src), PYTHONHASHSEED="0"), src, work)
        walk = order_walk(tmp / "order-walk.parquet", n)
        workload = Workload("order-heavy", walk, CONFIG, counts=True)
        ours_runs, bt_runs = [], []
        for k in range(max(1, args.repeat)):
            ours_runs.append(run_cli(src, workload, tmp / f"ours-{k}", work))
            bt_runs.append(run_reference(walk, work))
        ours = best(ours_runs)
        ours_counts = order_counts(ours.out)
        bt_whole, bt_cpu, bt_counts = min(bt_runs, key=lambda r: r[0])
    if bt_counts["bars"] != n:
        raise SystemExit(f"backtesting.py read {bt_counts['bars']} bars, not {n}")

    print(f"bars {n:,}; donchian_breakout qty 1 (entry {ENTRY}, exit {EXIT}) on the order walk")
    print(f"{'engine':<16}{'in process':>12}{'whole':>10}{'CPU':>10}{'placed':>10}"
          f"{'cancelled':>11}{'filled':>9}{'orders/s':>10}")
    rows = [("weltklassebot", f"{ours.in_process:>10.2f} s", ours.whole, ours.cpu, ours_counts),
            ("backtesting.py", f"{'-':>12}", bt_whole, bt_cpu, bt_counts)]
    for name, in_process, whole, cpu, c in rows:
        print(f"{name:<16}{in_process}{whole:>8.2f} s{cpu:>8.2f} s{c['placed']:>10,}"
              f"{c['cancelled']:>11,}{c['filled']:>9,}{c['placed'] / whole:>10,.0f}")
    print(f"backtesting.py / weltklassebot: whole {bt_whole / ours.whole:.2f}x, "
          f"CPU {bt_cpu / ours.cpu:.2f}x")
    differences = ", ".join(
        f"{key} {bt_counts[key] - ours_counts[key]:+,} "
        f"({(bt_counts[key] - ours_counts[key]) / max(1, ours_counts[key]):+.2%})"
        for key in ("placed", "cancelled", "filled"))
    print(f"orders, backtesting.py - weltklassebot: {differences}")
    if ours_counts["refused"]:
        print(f"note: weltklassebot refused {ours_counts['refused']:,} orders")


if __name__ == "__main__":
    main()
