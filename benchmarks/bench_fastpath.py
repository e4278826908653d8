"""Fast path against the engine: ``python benchmarks/bench_fastpath.py [--bars N] [--repeat K]
[--strategy NAME ...] [--json]``.

On N one-minute bars (default 1,000,000, the bounded random walk of ``_bars.py``), per
strategy (default ``sma_cross`` with its default parameters):

* the fast path warm (compiled before timing), three ways: the loop alone (no equity hash, no
  statistics), with the equity hash, and with the hash and every statistic of a backtest's
  summary (what a sweep cell needs);
* the engine on the same bars in the same process: the event loop alone (``BacktestEngine.run``
  stepping 4,096 bars at a time into a sink that drops everything), and a whole backtest
  without its report (``runs.backtest.simulate``: record files, equity hash, statistics);

each as the best of K runs, in bars per second of wall time and of this process's CPU time
(one thread: CPU bars/s is bars per second per core, less disturbed by other work on a shared
machine), with the ratios fast path / engine. The fast path's equity hash is checked against
the engine's, and the run stops with exit 1 if they differ.

Compile time is measured apart: the kernels are compiled into a fresh, empty numba cache
directory before anything is timed, then loaded from that cache in a new process (what every
later process pays).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Compile into an empty cache of our own (numba reads this when it is first imported).
_CACHE = tempfile.mkdtemp(prefix="weltklassebot-numba-")
os.environ["NUMBA_CACHE_DIR"] = _CACHE

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bars import write_bars  # noqa: E402
from weltklassebot import fastpath  # noqa: E402
from weltklassebot.config.model import BacktestConfig  # noqa: E402
from weltklassebot.engine.backtest import BacktestEngine  # noqa: E402
from weltklassebot.runs.backtest import (  # noqa: E402
    STEP_BARS,
    execution_settings,
    prepare_data,
    simulate,
)
from weltklassebot.strategy.loader import resolve_strategy  # noqa: E402

LOAD_PROBE = r"""
import json, time
t = time.perf_counter()
from weltklassebot.fastpath import compiled
compiled.warm()
print(json.dumps({"seconds": time.perf_counter() - t, "cached": compiled.cached}))
"""


def best(repeat: int, work: Callable[[], Any]) -> tuple[float, float, Any]:
    """Best wall and best CPU seconds of ``repeat`` runs, and the last result."""
    walls, cpus = [], []
    result = None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), result


def engine_loop(config: BacktestConfig, bars: fastpath.Bars) -> int:
    spec = resolve_strategy(config.strategy.name, dict(config.strategy.params))
    engine = BacktestEngine(bars.instruments, bars.intervals, execution_settings(config),
                            spec.create, spec.name, config.seed)
    whole = bars.chunk()
    steps = (whole.slice(i, min(i + STEP_BARS, len(bars))) for i in range(0, len(bars),
                                                                           STEP_BARS))
    return engine.run(steps, lambda ts, equity, cash: None).fill_count


def engine_backtest(config: BacktestConfig) -> str | None:
    spec = resolve_strategy(config.strategy.name, dict(config.strategy.params))
    data = prepare_data(config)
    with tempfile.TemporaryDirectory() as scratch:
        sim = simulate(Path(scratch), config, spec, data.instruments, data.intervals,
                       data.feed().chunks(), rows=data.report.rows, log=False)
    return sim.equity_hash


def measure(name: str, path: Path, args: argparse.Namespace, report: dict[str, Any]) -> tuple[
        dict[str, tuple[float, float]], str | None, str | None, int]:
    """Every timing of one strategy: (figures by path, fast hash, engine hash, fills)."""
    config = BacktestConfig.model_validate({"data": {"snapshot": str(path)},
                                            "strategy": {"name": name}})
    spec = resolve_strategy(name, {})
    wall = time.perf_counter()
    bars = fastpath.prepare(config)
    report.setdefault("prepare_seconds", time.perf_counter() - wall)
    figures: dict[str, tuple[float, float]] = {}
    fast: fastpath.FastResult | None = None
    for label, hashed, with_stats in (("fast path, loop only", False, False),
                                      ("fast path + equity hash", True, False),
                                      ("fast path + hash + statistics", True, True)):

        def one(hashed: bool = hashed, with_stats: bool = with_stats) -> fastpath.FastResult:
            return fastpath.run(spec, config, bars, with_hash=hashed, with_stats=with_stats)

        w, c, fast = best(args.repeat, one)
        figures[label] = (w, c)
    figures["engine, event loop only"] = best(args.engine_repeat,
                                              lambda: engine_loop(config, bars))[:2]
    w, c, engine_hash = best(args.engine_repeat, lambda: engine_backtest(config))
    figures["engine, whole backtest"] = (w, c)
    assert fast is not None
    return figures, fast["equity_hash"], engine_hash, fast["fills"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--engine-repeat", type=int, default=1)
    parser.add_argument("--strategy", action="append", dest="strategies")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    strategies = args.strategies or ["sma_cross"]
    report: dict[str, Any] = {"bars": args.bars, "cpu_count": os.cpu_count(),
                              "load_average": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="bench-fastpath-") as scratch:
        path = write_bars(Path(scratch) / "bars.parquet", args.bars)
        wall = time.perf_counter()
        from weltklassebot.fastpath import compiled
        compiled.warm()
        report["compile_seconds"] = time.perf_counter() - wall
        report["compile_cached"] = compiled.cached
        loaded = subprocess.run([sys.executable, "-c", LOAD_PROBE], capture_output=True,
                                text=True, check=True, env=os.environ.copy())
        report["cache_load_seconds"] = json.loads(loaded.stdout)["seconds"]
        rows = []
        for name in strategies:
            figures, fast_hash, engine_hash, fills = measure(name, path, args, report)
            if engine_hash != fast_hash:
                print(f"{name}: equity hashes differ: fast path {fast_hash}, engine "
                      f"{engine_hash}", file=sys.stderr)
                return 1
            for label, (w, c) in figures.items():
                rows.append({"strategy": name, "path": label, "wall_s": w, "cpu_s": c,
                             "bars_per_s": args.bars / w, "bars_per_cpu_s": args.bars / c,
                             "fills": fills})
            report.setdefault("equity_hashes", {})[name] = fast_hash
        report["rows"] = rows
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"{args.bars:,} bars; compile {report['compile_seconds']:.1f} s "
          f"(into an empty cache), load from the cache {report['cache_load_seconds']:.2f} s "
          f"(a new process); prepare {report['prepare_seconds']:.2f} s; load average "
          f"{report['load_average'][0]:.1f} on {report['cpu_count']} CPUs")
    print(f"{'strategy':<18} {'path':<32} {'wall s':>8} {'CPU s':>8} {'bars/s':>12} "
          f"{'bars/CPU s':>12}")
    for row in rows:
        print(f"{row['strategy']:<18} {row['path']:<32} {row['wall_s']:>8.3f} "
              f"{row['cpu_s']:>8.3f} {row['bars_per_s']:>12,.0f} {row['bars_per_cpu_s']:>12,.0f}")
    for name in strategies:
        by = {r["path"]: r for r in rows if r["strategy"] == name}
        loop = by["engine, event loop only"]["bars_per_cpu_s"]
        whole = by["engine, whole backtest"]["bars_per_cpu_s"]
        print(f"{name}: per core, the fast path's loop is "
              f"{by['fast path, loop only']['bars_per_cpu_s'] / loop:.0f}x the engine's loop; "
              f"with hash and statistics "
              f"{by['fast path + hash + statistics']['bars_per_cpu_s'] / whole:.0f}x a whole "
              f"backtest; equity hashes identical ({report['equity_hashes'][name][:12]}...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
