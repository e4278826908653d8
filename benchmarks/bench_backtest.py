"""Backtest throughput and memory: ``python benchmarks/bench_backtest.py [--bars N]``.

Generates N seeded bars (default 1,000,000) and reports, for ``sma_cross``:

* bars/s in process, from opening the snapshot to the run directory's final rename;
* whole-process wall time of ``python -m cli backtest`` on the same file (start-up included);
* peak RSS of that process;
* the same figures for a plain-Python loop doing the same crossover logic (baseline measured in
  the same run, in its own process), and the ratios.

Timing claims live here, not in unit tests: machines are noisy. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bars import write_bars

BASELINE = r'''
import sys, time
import pyarrow.parquet as pq
t0 = time.perf_counter()
table = pq.read_table(sys.argv[1], columns=["open", "close"])
opens = table.column("open").to_pylist()
closes = [round(c * 100) for c in table.column("close").to_pylist()]
fast, slow = 10, 30
fsum = ssum = 0
position = 0
pending = 0
cash = 1_000_000.0
fills = 0
prev = 0
equity = []
for i, c in enumerate(closes):
    if pending:
        price = opens[i]
        cash -= pending * price * 1.001 if pending > 0 else pending * price * 0.999
        position += pending
        pending = 0
        fills += 1
    fsum += c - (closes[i - fast] if i >= fast else 0)
    ssum += c - (closes[i - slow] if i >= slow else 0)
    if i >= slow - 1:
        d = fsum * slow - ssum * fast
        sign = (d > 0) - (d < 0)
        if i >= slow and prev and sign and sign != prev:
            if sign > 0 and position == 0:
                pending = 1
            elif sign < 0 and position > 0:
                pending = -position
        prev = sign
    equity.append(cash + position * opens[i])
elapsed = time.perf_counter() - t0
print(elapsed, fills)
'''


IN_PROCESS = r'''
import sys, time
from pathlib import Path
from weltklassebot.config.model import BacktestConfig
from weltklassebot.runs.backtest import RunRequest, execute
config = BacktestConfig.model_validate({"data": {"snapshot": sys.argv[1]}})
out = Path(sys.argv[2])
request = RunRequest(config=config, config_file=None, argv=sys.argv, out=out,
                     runs_dir=out.parent)
t0 = time.perf_counter()
execute(request)  # validation, run, outputs, manifest, fsync and the final rename
print(time.perf_counter() - t0)
'''


def run_in_process(snapshot: Path, out: Path) -> float:
    """Seconds from opening the snapshot to the run directory's final rename."""
    done = subprocess.run([sys.executable, "-c", IN_PROCESS, str(snapshot), str(out)],
                          env=dict(os.environ, PYTHONHASHSEED="0"), capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"backtest failed: {done.stderr}")
    return float(done.stdout.split()[-1])


def run_cli(snapshot: Path, out: Path) -> tuple[float, float, dict[str, object]]:
    env = dict(os.environ, PYTHONHASHSEED="0")
    code = (
        "import resource, runpy, sys, time;"
        "sys.argv=['cli','backtest','--data-snapshot',sys.argv[1],'--out',sys.argv[2],'--json',"
        "'--no-progress'];"
        "runpy.run_module('cli', run_name='__main__')"
    )
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, str(snapshot), str(out)], env=env,
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"backtest failed: {done.stderr}")
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    summary = json.loads(done.stdout)
    manifest = json.loads((out / "manifest.json").read_text())
    return wall, rss_mb, {"summary": summary, "in_process": manifest["wall_time_seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, default=None, help="reuse/keep the snapshot here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        snapshot = args.keep or tmp / "bars.parquet"
        if not snapshot.exists():
            write_bars(snapshot, args.bars)
        wall, rss_mb, _info = run_cli(snapshot, tmp / "run")
        in_process = run_in_process(snapshot, tmp / "run-in-process")
        t0 = time.perf_counter()
        base = subprocess.run([sys.executable, "-c", BASELINE, str(snapshot)],
                              capture_output=True, text=True, check=True)
        base_wall = time.perf_counter() - t0
        base_loop = float(base.stdout.split()[0])
    n = args.bars
    print(f"bars                          {n:,}")
    print(f"weltklassebot in process      {in_process:.3f} s   {n / in_process:,.0f} bars/s")
    print(f"weltklassebot whole process   {wall:.3f} s   (python -m cli backtest)")
    print(f"weltklassebot peak RSS        {rss_mb:,.0f} MiB")
    print(f"plain-Python loop in process  {base_loop:.3f} s   {n / base_loop:,.0f} bars/s")
    print(f"plain-Python whole process    {base_wall:.3f} s")
    print(f"ratio in process (ours/loop)  {base_loop / in_process:.2f}x the loop's speed")
    print(f"ratio whole process           {base_wall / wall:.2f}x the loop's speed")


if __name__ == "__main__":
    main()
