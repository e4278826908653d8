"""Sweep speed: ``python benchmarks/bench_sweep.py [--bars N] [--fast A:B:S] [--slow A:B:S]
[--engine-cells K] [--bt-cells K] [--skip NAME ...]``.

One grid of ``sma_cross`` (default fast=5:50:5 x slow=60:150:10, 100 cells) on N one-minute bars
(default 1,000,000; a bounded random walk, ``_bars.py``), run in one process with:

* our sweep, fast path, with each cell's equity hash and without (``--no-hash``);
* our sweep on the engine (``--no-fast-path``);
* backtesting.py's ``Backtest.optimize`` (the same crossover, long-only, market orders);
* vectorbt (``MA.run`` crossovers and ``Portfolio.from_signals``, every cell a column).

Printed for each: bar evaluations (bars x cells) per second per core, from CPU time (this
process and its children: a pool's workers too), the ratios to the fast path, and the scaling
of our fast path from 1 to 2 workers by wall time (efficiency = T1 / (2 x T2); 1.0 is linear).
The engine and backtesting.py are too slow to run the whole grid in a benchmark: they run the
first ``--engine-cells`` / ``--bt-cells`` cells of it, and their rate is per cell as for the
others. vectorbt is timed warm (its compilation is a first run on 1,000 bars). The figures are
from whatever machine runs this and only illustrate; docs/sweeps.md has a run's figures.
Needs the bench extra (backtesting, vectorbt); a tool that is missing is reported and skipped.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bars import write_bars
from weltklassebot.sweep.grid import Axis, parse_axis, parse_seeds
from weltklassebot.sweep.runner import SweepRequest, run_sweep


@dataclass
class Figure:
    name: str
    cells: int
    bars: int
    cpu_s: float
    wall_s: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.cells * self.bars / self.cpu_s if self.cpu_s else 0.0


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(call: Callable[[], Any]) -> tuple[float, float, Any]:
    cpu, wall = cpu_seconds(), time.perf_counter()
    result = call()
    return cpu_seconds() - cpu, time.perf_counter() - wall, result


def our_sweep(data: Path, out: Path, axes: tuple[Axis, ...], *, workers: int, fast: bool,
              with_hash: bool) -> dict[str, Any]:
    request = SweepRequest(kind="sweep", strategy="sma_cross",
                           base={"strategy": {"name": "sma_cross"}}, config_file=None,
                           snapshots=(data,), axes=axes, seeds=parse_seeds("1", 0), out=out,
                           argv=["bench"], workers=workers, fast_path=fast,
                           with_hash=with_hash, write_report=False)
    return run_sweep(request).summary


def subset(axes: tuple[Axis, ...], cells: int) -> tuple[Axis, ...]:
    """The first ``cells`` cells of the grid (fast varies fastest within the first slow)."""
    fast, slow = axes
    return (Axis(fast.name, fast.values[:cells], fast.kind), Axis(slow.name, slow.values[:1],
                                                                  slow.kind))


def frame(data: Path) -> Any:
    import pandas as pd

    table = pq.read_table(data)
    df = table.to_pandas()
    df = df.set_index(pd.DatetimeIndex(df.pop("ts")))
    return df.rename(columns=str.capitalize)


def sma(values: Any, n: int) -> Any:
    import pandas as pd

    return pd.Series(values).rolling(n).mean()


try:  # the bench extra; pool workers unpickle the strategy class by its module name
    from backtesting import Strategy as _BacktestingStrategy
    from backtesting.lib import crossover

    class SmaCross(_BacktestingStrategy):
        """sma_cross in backtesting.py: buy 1 when flat at an upward cross, close at a downward
        cross, market orders."""

        fast = 10
        slow = 30

        def init(self) -> None:
            self.f = self.I(sma, self.data.Close, self.fast)
            self.s = self.I(sma, self.data.Close, self.slow)

        def next(self) -> None:
            if crossover(self.f, self.s) and not self.position:
                self.buy(size=1)
            elif crossover(self.s, self.f) and self.position:
                self.position.close()
except ModuleNotFoundError:
    SmaCross = None  # type: ignore[assignment,misc]


def backtesting_py(data: Path, pairs: list[tuple[int, int]]) -> None:
    from backtesting import Backtest

    df = frame(data)
    bt = Backtest(df, SmaCross, cash=1_000_000, commission=0.0005, finalize_trades=True)
    fasts = sorted({f for f, _ in pairs})
    slows = sorted({s for _, s in pairs})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt.optimize(fast=fasts, slow=slows, maximize="Return [%]")


def vectorbt_run(close: Any, fasts: list[int], slows: list[int]) -> Any:
    import vectorbt as vbt

    fast_ma = vbt.MA.run(close, window=[f for f in fasts for _ in slows], short_name="fast")
    slow_ma = vbt.MA.run(close, window=[s for _ in fasts for s in slows], short_name="slow")
    entries = fast_ma.ma_crossed_above(slow_ma)
    exits = fast_ma.ma_crossed_below(slow_ma)
    portfolio = vbt.Portfolio.from_signals(close, entries, exits, fees=0.0005, freq="1min",
                                           init_cash=1_000_000)
    return portfolio.total_return()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--fast", default="5:50:5")
    parser.add_argument("--slow", default="60:150:10")
    parser.add_argument("--engine-cells", type=int, default=4)
    parser.add_argument("--bt-cells", type=int, default=2)
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["fast", "nohash", "engine", "scaling", "backtesting",
                                 "vectorbt"])
    args = parser.parse_args()
    axes = (parse_axis(f"fast={args.fast}"), parse_axis(f"slow={args.slow}"))
    cells = len(axes[0].values) * len(axes[1].values)
    n = args.bars
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        root = Path(tmp)
        data = write_bars(root / "bars.parquet", n)
        print(f"{n:,} one-minute bars, grid fast={args.fast} x slow={args.slow}: {cells} cells")
        # The fast path's kernel compiled (or loaded) before any timing.
        our_sweep(data, root / "warm", (Axis("fast", ("5",), "int"), Axis("slow", ("60",),
                                                                          "int")),
                  workers=1, fast=True, with_hash=True)
        wall1 = None
        if "fast" not in args.skip:
            cpu, wall, summary = measure(lambda: our_sweep(data, root / "fast", axes, workers=1,
                                                           fast=True, with_hash=True))
            on_fast = summary["counts"]["fast_path"]
            figures.append(Figure("ours, fast path, hashed", cells, n, cpu, wall,
                                  f"{on_fast} of {cells} cells on the fast path"))
            wall1 = wall
        if "nohash" not in args.skip:
            cpu, wall, _ = measure(lambda: our_sweep(data, root / "nohash", axes, workers=1,
                                                     fast=True, with_hash=False))
            figures.append(Figure("ours, fast path, no hash", cells, n, cpu, wall))
        if "engine" not in args.skip:
            part = subset(axes, args.engine_cells)
            k = len(part[0].values)
            cpu, wall, _ = measure(lambda: our_sweep(data, root / "engine", part, workers=1,
                                                     fast=False, with_hash=True))
            figures.append(Figure("ours, engine", k, n, cpu, wall, f"first {k} cells"))
        scaling = None
        if "scaling" not in args.skip and wall1 is not None:
            cpu, wall2, _ = measure(lambda: our_sweep(data, root / "two", axes, workers=2,
                                                      fast=True, with_hash=True))
            # The pool's workers are the fork server's children, not this process's: their
            # CPU time is not in its rusage, so per core is taken as wall time x 2 here.
            figures.append(Figure("ours, fast path, hashed, 2 workers", cells, n, 2 * wall2,
                                  wall2, "per core: wall x 2"))
            scaling = wall1 / (2 * wall2)
        if "backtesting" not in args.skip:
            try:
                if SmaCross is None:
                    raise ModuleNotFoundError("backtesting is not installed (the bench extra)")
                k = args.bt_cells
                pairs = [(int(f), int(axes[1].values[0])) for f in axes[0].values[:k]]
                cpu, wall, _ = measure(lambda: backtesting_py(data, pairs))
                figures.append(Figure("backtesting.py optimize", len(pairs), n, cpu, wall,
                                      f"first {len(pairs)} cells"))
            except ModuleNotFoundError as exc:
                print(f"backtesting.py skipped: {exc}")
        if "vectorbt" not in args.skip:
            try:
                close = frame(data)["Close"]
                fasts = [int(v) for v in axes[0].values]
                slows = [int(v) for v in axes[1].values]
                vectorbt_run(close.iloc[:1000], fasts, slows)  # compiled for these shapes
                cpu, wall, _ = measure(lambda: vectorbt_run(close, fasts, slows))
                figures.append(Figure("vectorbt (warm)", cells, n, cpu, wall))
            except ModuleNotFoundError as exc:
                print(f"vectorbt skipped: {exc}")
    reference = next((f.rate for f in figures if f.name == "ours, fast path, hashed"), None)
    print(f"\n{'':38} {'cells':>6} {'CPU s':>9} {'wall s':>9} {'bar-evals/s/core':>17} "
          f"{'vs fast':>8}")
    for f in figures:
        ratio = f"{f.rate / reference:.3f}x" if reference else "-"
        print(f"{f.name:38} {f.cells:>6} {f.cpu_s:>9.2f} {f.wall_s:>9.2f} {f.rate:>17,.0f} "
              f"{ratio:>8}  {f.note}")
    if scaling is not None:
        print(f"\nscaling 1 -> 2 workers (fast path, wall time): efficiency {scaling:.2f} "
              "(1.0 = linear)")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
