"""Instructions executed, not seconds: ``python benchmarks/bench_instructions.py [--baseline REV]
[--only order-heavy|step] [--small N] [--large M] [--strategy NAME]``.

Wall and CPU time on a shared machine move by a fifth or more from run to run, too much to tell
apart changes of a few per cent or to trust one ratio. The number of instructions a run executes
does not move: this script counts them with valgrind's callgrind (deterministic, about 50 times
slower than a normal run) and prints them per bar, as the slope between a run of ``--small``
and one of ``--large`` bars, so what every run pays once (start-up, imports, writing the run
directory) drops out:

* **order-heavy**: ``bench_backtest.py``'s workload (``donchian_breakout``, qty 1, cash 10^10,
  the additive random walk), the whole ``python -m cli backtest`` command, with this checkout's
  ``src`` and with a git worktree of ``--baseline`` (default ``b0a67b4``, as in
  ``bench_backtest.py``); the ratio baseline / now is the order path's gain by instructions;
* **step**: ``sma_cross`` (or ``--strategy``) driven one bar per ``step`` as the live service
  drives it (the cost of slicing the bars, made before the steps, is measured apart and taken
  off), against the plain-Python crossover loop of ``bench_backtest.py``; for ``sma_cross``
  the ratio loop / step is the one-bar figure by instructions (time ratios are lower: the
  plain loop's few simple bytecodes run at more instructions per cycle than the engine's).

Sizes well below the defaults overstate the per-bar figures: the engine's per-chunk and the
outputs' per-row-group costs are then spread over few bars (order-heavy at 2,000 -> 6,000 bars
gives about twice the default's figure). Instructions are not time: a run with more cache
misses takes longer for the same count. Read these beside the time ratios of
``bench_backtest.py`` and ``bench_step.py``, not instead. Needs ``valgrind``; without it the
script says so and exits 0. Runs two callgrind processes at once.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bars import write_bars
from bench_backtest import (
    BASELINE_LOOP,
    DEFAULT_BASELINE,
    baseline_worktree,
    check_source,
    order_walk,
)

REPO = Path(__file__).resolve().parent.parent
ORDER_HEAVY = ('[data]\nprice_increment = "0.01"\n[strategy]\nname = "donchian_breakout"\n'
               '[strategy.params]\nqty = 1\n[execution]\ninitial_cash = "10000000000"\n')
# One bar per step, as bench_step.py drives it; argv: bars file, "step" or "slice", the
# benchmarks directory, the strategy.
STEP = r'''
import sys
from decimal import Decimal
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from bench_step import engine
from weltklassebot.data.feed import ParquetFeed
from weltklassebot.data.reader import open_snapshot
from weltklassebot.model.instrument import Instrument, MoneySpec
usd = MoneySpec("USD", Decimal("0.01"))
inst = Instrument("SYN", Decimal("0.01"), Decimal("0.00000001"), usd)
chunks = list(ParquetFeed(open_snapshot(Path(sys.argv[1])), {"SYN": inst}, "SYN").chunks())
bars = [c.slice(i, i + 1) for c in chunks for i in range(len(c))]
eng = engine(sys.argv[4])
if sys.argv[2] == "step":
    eng.start(int(bars[0].ts[0]), equity_sink=lambda ts, equity, cash: None)
    for bar in bars:
        eng.step(bar)
    eng.stop()
'''


def instructions(argv: list[str], env: dict[str, str], cwd: Path, out: Path) -> int:
    """The instructions callgrind counts for the whole process ``argv``."""
    done = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                           *argv], env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed under callgrind ({done.returncode}): "
                         f"{done.stderr[-2000:]}")
    for line in out.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no instruction total in {out}")


def slope(counts: dict[int, int]) -> float:
    """Instructions per bar between the two sizes."""
    (small, a), (large, b) = sorted(counts.items())
    return (b - a) / (large - small)


def order_heavy(args: argparse.Namespace, tmp: Path, pool: ThreadPoolExecutor) -> None:
    with baseline_worktree(args.baseline, tmp / "baseline") as base:
        work = tmp / "work"
        work.mkdir()
        config = work / "order-heavy.toml"
        config.write_text(ORDER_HEAVY, encoding="utf-8")
        versions = {"baseline": base / "src", "current": REPO / "src"}
        for src in versions.values():
            check_source(dict(os.environ, PYTHONPATH=str(src), PYTHONHASHSEED="0"), src, work)
        walks = {n: order_walk(tmp / f"walk-{n}.parquet", n) for n in (args.small, args.large)}
        jobs = {}
        for label, src in versions.items():
            env = dict(os.environ, PYTHONPATH=str(src), PYTHONHASHSEED="0")
            for n, walk in walks.items():
                argv = [sys.executable, "-m", "cli", "backtest", "--config", str(config),
                        "--data-snapshot", str(walk), "--out", str(tmp / f"{label}-{n}"),
                        "--json", "--no-progress"]
                jobs[label, n] = pool.submit(instructions, argv, env, work,
                                             tmp / f"{label}-{n}.callgrind")
        per_bar = {label: slope({n: jobs[label, n].result() for n in walks})
                   for label in versions}
    old, new = per_bar["baseline"], per_bar["current"]
    print(f"order-heavy, instructions per bar ({args.small:,} -> {args.large:,} bars, the whole "
          "backtest command)")
    print(f"  baseline {args.baseline:<10}{old:>12,.0f}")
    print(f"  current   {'':<9}{new:>12,.0f}")
    print(f"  baseline / current {old / new:.2f}x")


def step(args: argparse.Namespace, tmp: Path, pool: ThreadPoolExecutor) -> None:
    src = REPO / "src"
    env = dict(os.environ, PYTHONPATH=str(src), PYTHONHASHSEED="0")
    check_source(env, src, tmp)
    bench = str(Path(__file__).resolve().parent)
    files = {n: write_bars(tmp / f"bars-{n}.parquet", n) for n in (args.small, args.large)}
    jobs = {}
    for n, path in files.items():
        for mode in ("step", "slice"):
            argv = [sys.executable, "-c", STEP, str(path), mode, bench, args.strategy]
            jobs[mode, n] = pool.submit(instructions, argv, env, tmp,
                                        tmp / f"{mode}-{n}.callgrind")
        jobs["loop", n] = pool.submit(instructions, [sys.executable, "-c", BASELINE_LOOP,
                                                     str(path)], env, tmp,
                                      tmp / f"loop-{n}.callgrind")
    per_bar = {kind: slope({n: jobs[kind, n].result() for n in files})
               for kind in ("step", "slice", "loop")}
    stepped = per_bar["step"] - per_bar["slice"]
    print(f"{args.strategy} one bar per step, instructions per bar ({args.small:,} -> "
          f"{args.large:,} bars)")
    print(f"  plain-Python loop   {per_bar['loop']:>10,.0f}  (yardstick)")
    print(f"  engine, one step    {stepped:>10,.0f}  ({per_bar['step']:,.0f} with the harness, "
          f"{per_bar['slice']:,.0f} slicing the bars)")
    print(f"  loop / step         {per_bar['loop'] / stepped:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE,
                        help=f"commit to compare with (default {DEFAULT_BASELINE})")
    parser.add_argument("--only", choices=["order-heavy", "step"], action="append",
                        default=None, help="run only this measurement (repeatable)")
    parser.add_argument("--small", type=int, default=50_000, help="bars of the smaller run")
    parser.add_argument("--large", type=int, default=150_000, help="bars of the larger run")
    parser.add_argument("--strategy", default="sma_cross",
                        help="the strategy stepped one bar at a time (default sma_cross; the "
                             "loop is sma_cross's logic whatever the strategy)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("instruction counts skipped: valgrind is not installed (apt-get install valgrind)")
        return
    if not 0 < args.small < args.large:
        raise SystemExit("--small must be positive and below --large")
    wanted = args.only or ["order-heavy", "step"]
    with tempfile.TemporaryDirectory() as tmp_name, ThreadPoolExecutor(max_workers=2) as pool:
        tmp = Path(tmp_name)
        if "order-heavy" in wanted:
            order_heavy(args, tmp, pool)
        if "step" in wanted:
            step(args, tmp, pool)


if __name__ == "__main__":
    main()
