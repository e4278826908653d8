"""The engine driven one bar per step, as the live service drives it:
``python benchmarks/bench_step.py [--bars N] [--strategy NAME] [--param KEY=VALUE ...]``.

Generates N seeded one-minute bars (default 200,000), reads them once, then times, in this
process and in the same run:

* the engine over whole chunks (``run``: the backtest, where the quiet-bar skip works chunk-wide);
* the same engine stepped one bar at a time (``start``, one ``step`` per bar, ``stop``), which a
  live feed forces;
* the plain-Python crossover loop of ``bench_backtest.py`` (no exactness, no I/O) as the yardstick,

and prints bars/s and the ratios to the plain loop. Each is timed ``--repeat`` times (default 3),
the three in turn in each round, taking the fastest of each: a short run on a shared machine is
easily slowed, never sped up. Both engine
runs must give the same equity curve (checked). Ratios are the claim; machines are noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bars import write_bars
from bench_backtest import BASELINE_LOOP
from weltklassebot.data.feed import ParquetFeed
from weltklassebot.data.reader import open_snapshot
from weltklassebot.engine.backtest import BacktestEngine, ExecutionSettings
from weltklassebot.engine.costs import FeeModel
from weltklassebot.model.bars import BarChunk
from weltklassebot.model.instrument import Instrument, MoneySpec
from weltklassebot.strategy.loader import resolve_strategy

MINUTE_NS = 60_000_000_000


def engine(strategy: str, params: dict[str, Any] | None = None) -> BacktestEngine:
    usd = MoneySpec("USD", Decimal("0.01"))
    inst = Instrument("SYN", Decimal("0.01"), Decimal("0.00000001"), usd)
    execution = ExecutionSettings(money=usd, initial_cash=usd.units(Decimal(1_000_000)),
                                  fees=FeeModel(Decimal(2), Decimal(5), 0, usd.step))
    spec = resolve_strategy(strategy, params or {})
    return BacktestEngine({"SYN": inst}, {"SYN": MINUTE_NS}, execution, spec.create, spec.name,
                          7)


def timed_run(strategy: str, params: dict[str, Any], chunks: list[BarChunk], *,
              per_bar: bool) -> tuple[float, list[int]]:
    curve: list[int] = []

    def sink(ts: list[int], equity: list[int], cash: list[int]) -> None:
        curve.extend(equity)

    eng = engine(strategy, params)
    if per_bar:
        bars = [c.slice(i, i + 1) for c in chunks for i in range(len(c))]
        start = time.perf_counter()
        eng.start(int(bars[0].ts[0]), equity_sink=sink)
        for bar in bars:
            eng.step(bar)
        eng.stop()
    else:
        start = time.perf_counter()
        eng.run(chunks, sink)
    return time.perf_counter() - start, curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--strategy", default="sma_cross")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="a strategy parameter (an integer), e.g. entry=400 for long "
                             "donchian_breakout channels")
    args = parser.parse_args()
    params: dict[str, Any] = {}
    for item in args.param:
        key, _, value = item.partition("=")
        params[key] = int(value)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_bars(Path(tmp) / "bars.parquet", args.bars)
        usd = MoneySpec("USD", Decimal("0.01"))
        inst = Instrument("SYN", Decimal("0.01"), Decimal("0.00000001"), usd)
        chunks = list(ParquetFeed(open_snapshot(path), {"SYN": inst}, "SYN").chunks())
        sys.argv = ["loop", str(path)]
        code = compile(BASELINE_LOOP, "baseline", "exec")
        loop = whole = stepped = float("inf")
        # The three alternate within each round, so a slow spell of the machine slows one
        # round of each rather than all the rounds of one.
        for _ in range(args.repeat):
            loop_start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # it prints its own figures
                exec(code, {})
            loop = min(loop, time.perf_counter() - loop_start)
            whole_time, whole_curve = timed_run(args.strategy, params, chunks, per_bar=False)
            stepped_time, stepped_curve = timed_run(args.strategy, params, chunks,
                                                    per_bar=True)
            if whole_curve != stepped_curve:
                raise SystemExit("stepping one bar at a time changed the equity curve")
            whole, stepped = min(whole, whole_time), min(stepped, stepped_time)
    n = args.bars
    shown = "".join(f" {k}={v}" for k, v in params.items())
    print(f"{args.strategy}{shown}, {n:,} bars, equity curves identical, best of "
          f"{args.repeat}")
    print(f"plain-Python loop     {loop:7.2f} s  {n / loop:12,.0f} bars/s  (yardstick)")
    print(f"engine, whole chunks  {whole:7.2f} s  {n / whole:12,.0f} bars/s  "
          f"{loop / whole:.2f}x the loop")
    print(f"engine, one bar/step  {stepped:7.2f} s  {n / stepped:12,.0f} bars/s  "
          f"{loop / stepped:.2f}x the loop")


if __name__ == "__main__":
    main()
