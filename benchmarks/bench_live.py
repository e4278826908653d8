"""The live service at ``--speed max`` beside ``backtest`` on the same file, in the same run:
``python benchmarks/bench_live.py [--bars N] [--strategy NAME ...]``.

Generates N seeded one-minute bars (default 50,000), then for each strategy runs, in this process:

* ``backtest`` (``runs.backtest.execute``: the engine over whole chunks, outputs to Parquet);
* the service (``runs.live.LiveService``, metrics server on, a fresh state directory) at
  ``--speed max``: one event per step, every event's records made durable (fsync) before the next,
  engine-state checkpoints, the spool, and the run directory at the end.

It prints events/s for both and their ratio, p50/p95/p99 of each stage's exclusive time per event
(exact, from every event's own measurement), and the share of wall time spent in fsync. Both runs
must give the same equity hash (checked). Ratios are the claim; machines are noisy, and fsync
time depends on the file system under the temporary directory (``--dir`` to choose it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bars import write_bars
from weltklassebot.config.model import BacktestConfig
from weltklassebot.config.service import LiveSettings
from weltklassebot.engine.backtest import BacktestEngine
from weltklassebot.engine.probe import STAGES
from weltklassebot.runs.backtest import RunRequest, execute
from weltklassebot.runs.live import LiveService, RecordingProbe
from weltklassebot.runs.live_record import LiveRequest
from weltklassebot.service.status import LiveStatus


class _RawProbe(RecordingProbe):
    """Keeps every event's stage times too, for exact percentiles."""

    def __init__(self, status: LiveStatus) -> None:
        super().__init__(status)
        self.raw: dict[str, list[int]] = {s: [] for s in STAGES}

    def event_done(self) -> None:
        super().event_done()
        for stage, spent in self.last.items():
            self.raw[stage].append(spent)


class _BenchService(LiveService):
    probe: _RawProbe

    def _build_engine(self) -> BacktestEngine:
        engine = super()._build_engine()
        self.probe = _RawProbe(self.status)
        engine.probe = self.probe
        return engine


def _config(snapshot: Path, strategy: str) -> BacktestConfig:
    return BacktestConfig.model_validate({
        "data": {"snapshot": str(snapshot), "price_increment": "0.01",
                 "quantity_increment": "1"},
        "strategy": {"name": strategy, "params": {"qty": 1} if strategy != "sma_cross" else {}},
        "execution": {"initial_cash": 10**12},
    })


def bench(snapshot: Path, strategy: str, work: Path, bars: int) -> dict[str, Any]:
    config = _config(snapshot, strategy)
    started = time.perf_counter()
    outcome = execute(RunRequest(config=config, config_file=None, argv=[],
                                 out=work / f"bt-{strategy}", runs_dir=work))
    backtest_s = time.perf_counter() - started
    request = LiveRequest(config=config, settings=LiveSettings(), config_file=None,
                          argv=["bench"], state_dir=work / f"state-{strategy}",
                          runs_dir=work / "runs", out=work / f"live-{strategy}", speed=None,
                          exit_at_end=True, bind="127.0.0.1", port=0)
    service = _BenchService(request)
    started = time.perf_counter()
    assert service.run() == 0
    live_s = time.perf_counter() - started
    assert service.summary is not None
    if service.summary["equity_hash"] != outcome.summary["equity_hash"]:
        raise SystemExit(f"{strategy}: live and backtest differ: "
                         f"{service.summary['equity_hash']} != {outcome.summary['equity_hash']}")
    raw = service.probe.raw
    events = service.status.events_processed
    return {
        "strategy": strategy, "bars": bars, "events": events,
        "fills": service.summary["fills"], "orders": service.summary["orders"],
        "backtest_s": backtest_s, "live_s": live_s,
        "fsync_s": service.status.fsync_seconds,
        "pcts": {s: np.percentile(np.array(raw[s], dtype=np.float64), [50, 95, 99]) / 1e3
                 for s in STAGES},
        "max_us": {s: max(raw[s]) / 1e3 for s in STAGES},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=50_000)
    parser.add_argument("--strategy", action="append",
                        help="repeatable (default: sma_cross and donchian_breakout)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where state directories go (its file system decides fsync time)")
    args = parser.parse_args()
    strategies = args.strategy or ["sma_cross", "donchian_breakout"]
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        snapshot = write_bars(work / "bars.parquet", args.bars)
        where = args.dir or "the temporary directory"
        print(f"{args.bars:,} one-minute bars; state directories under {where}")
        for strategy in strategies:
            r = bench(snapshot, strategy, work, args.bars)
            live_rate = r["events"] / r["live_s"]
            bt_rate = r["bars"] / r["backtest_s"]
            print(f"\n{strategy}: {r['fills']:,} fills, {r['orders']:,} orders; same equity hash")
            print(f"  backtest        {bt_rate:>12,.0f} bars/s   ({r['backtest_s']:.2f} s)")
            print(f"  live --speed max {live_rate:>11,.0f} events/s ({r['live_s']:.2f} s)  "
                  f"= {live_rate / bt_rate:.3f}x backtest")
            print(f"  fsync            {r['fsync_s']:.2f} s = {r['fsync_s'] / r['live_s']:.1%} "
                  "of the live run's wall time")
            print("  stage        p50 us    p95 us    p99 us    max us")
            for stage in STAGES:
                p50, p95, p99 = r["pcts"][stage]
                print(f"  {stage:<10} {p50:>8.1f}  {p95:>8.1f}  {p99:>8.1f}  "
                      f"{r['max_us'][stage]:>8.1f}")
            worst = max(float(r["pcts"][s][2]) for s in STAGES)
            print(f"  p99 of every stage under 1 ms: {'yes' if worst < 1000 else 'NO'} "
                  f"(worst p99 {worst:.1f} us)")


if __name__ == "__main__":
    main()
