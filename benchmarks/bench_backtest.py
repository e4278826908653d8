"""Backtest speed against an older commit: ``python benchmarks/bench_backtest.py [--bars N]
[--baseline REV] [--repeat K]``.

Each workload runs ``python -m cli backtest`` in its own process twice: once with this checkout's
``src`` and once with the ``src`` of a git worktree of ``--baseline`` (default ``b0a67b4``, the
release before the order-path work), on the same generated file, in the same run. Reported per
workload and version: the in-process time (the manifest's ``wall_time_seconds``: from opening the
snapshot to the run directory's final rename), the whole-process wall and CPU time (user + system,
less disturbed than wall time by other work on a shared machine) and peak RSS, and the ratios
old/new (above 1 means faster than before). Ratios are the claim; absolute figures only
illustrate (machines are noisy, ``--repeat`` keeps the best of K runs of each).

Workloads, on N one-minute bars (default 1,000,000):

* ``sma_cross`` and ``donchian_breakout`` with default settings on a bounded random walk;
* **order-heavy**: ``donchian_breakout``, qty 1, cash 10^10 (never refused; money stays within
  int64), on an additive random walk around 10,000 (``order_walk`` below), with orders placed /
  cancelled / filled and orders per second;
* **refused**: the same strategy and file with so little cash that, once fees have eaten it, the
  strategy's entry stops are refused for buying power and resubmitted at every bar.

For every workload the fills, orders, equity and events of both versions are compared and the
script prints ``identical`` or exits 1. The plain-Python loop (same crossover logic as
``sma_cross``, no exactness or I/O) is measured in the same run as a yardstick.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bars import write_bars

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BASELINE = "b0a67b4"
MINUTE_NS = 60_000_000_000
ORDER_WALK_SEED = 42
# Refused workload: the order-heavy run pays about 0.87 money units of fees per bar at a price
# near 10,000; with this cash its equity falls below one unit's price around the middle of the
# 1M bars, and from then on the entry stops are refused at every bar.
REFUSED_CASH_PER_BAR = "0.5"

BASELINE_LOOP = r'''
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

# Run by each version's interpreter process: names the package it imported, so a wrong
# PYTHONPATH (the installed checkout winning over the worktree) cannot go unnoticed.
WHICH = "import weltklassebot, cli; print(weltklassebot.__file__); print(cli.__file__)"


def order_walk(path: Path, n: int, seed: int = ORDER_WALK_SEED) -> Path:
    """One-minute bars of an additive random walk: close = 10,000 + cumsum N(0, 1), open = the
    previous close, high/low = max/min(open, close) -/+ U(0, 1), prices to 0.01."""
    rng = np.random.default_rng(seed)
    close = np.round(10_000 + np.cumsum(rng.normal(0.0, 1.0, n)), 2)
    open_ = np.concatenate(([10_000.0], close[:-1]))
    high = np.round(np.maximum(open_, close) + rng.random(n), 2)
    low = np.round(np.minimum(open_, close) - rng.random(n), 2)
    ts = 1_700_000_000 * 10**9 + MINUTE_NS * np.arange(n, dtype=np.int64)
    table = pa.table({"ts": pa.array(ts, type=pa.timestamp("ns", tz="UTC")), "open": open_,
                      "high": high, "low": low, "close": close,
                      "volume": np.round(rng.random(n) * 10, 4)})
    pq.write_table(table, path, compression="zstd", row_group_size=1 << 18)
    return path


@dataclass(frozen=True)
class Workload:
    name: str
    snapshot: Path
    config: str  # TOML
    counts: bool = False  # report order counts and orders/s


@dataclass(frozen=True)
class Result:
    in_process: float
    whole: float
    cpu: float
    rss_mib: float
    summary: dict[str, object]
    out: Path


def check_source(env: dict[str, str], src: Path, cwd: Path) -> None:
    """Check that a run with ``env`` imports the package from ``src``, and compile ``src``'s
    bytecode first: every version is measured as an installed package runs, with its modules'
    bytecode cached. Without that (a fresh worktree, or ``PYTHONDONTWRITEBYTECODE`` set) every
    process would compile every module it imports again, a cost that grows with the code and
    falls partly inside the time in process (modules imported during the run)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(src)], check=True,
                   stdout=subprocess.DEVNULL)
    done = subprocess.run([sys.executable, "-c", WHICH], env=env, cwd=cwd, capture_output=True,
                          text=True, check=True)
    for line in done.stdout.split():
        if not Path(line).resolve().is_relative_to(src.resolve()):
            raise SystemExit(f"the run meant for {src} imported {line}; check PYTHONPATH")


def run_cli(src: Path, workload: Workload, out: Path, work: Path) -> Result:
    """One backtest in its own process with ``src`` first on the path."""
    env = dict(os.environ, PYTHONPATH=str(src), PYTHONHASHSEED="0")
    config = work / f"{workload.name}.toml"
    config.write_text(workload.config, encoding="utf-8")
    argv = [sys.executable, "-m", "cli", "backtest", "--config", str(config),
            "--data-snapshot", str(workload.snapshot), "--out", str(out), "--json",
            "--no-progress"]
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=work, stdout=stdout, stderr=stderr)
        _pid, status, usage = os.wait4(proc.pid, 0)
        whole = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            stderr.seek(0)
            raise SystemExit(f"{workload.name} with {src} failed ({proc.returncode}): "
                             f"{stderr.read().decode(errors='replace')}")
        stdout.seek(0)
        summary = json.loads(stdout.read())
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return Result(float(manifest["wall_time_seconds"]), whole, usage.ru_utime + usage.ru_stime,
                  usage.ru_maxrss / 1024, summary, out)


def _records(path: Path) -> pa.Table:
    table = pq.read_table(path)
    # Orders are compared by id: older releases wrote them in the order they closed, newer
    # ones by id within each batch. Every other file is compared row for row.
    if path.name == "orders.parquet":
        table = table.sort_by("order_id")
    return table


def compare(a: Path, b: Path) -> list[str]:
    """Names of the outputs that differ between two run directories (empty: identical)."""
    differ = []
    for name in ("fills.parquet", "orders.parquet", "equity.parquet"):
        if not _records(a / name).equals(_records(b / name)):
            differ.append(name)
    if (a / "events.jsonl").read_bytes() != (b / "events.jsonl").read_bytes():
        differ.append("events.jsonl")
    return differ


def order_counts(run: Path) -> dict[str, int]:
    status = pq.read_table(run / "orders.parquet", columns=["status"]).column("status")
    counts = collections.Counter(status.to_pylist())
    refused = counts.pop("rejected", 0)
    return {"placed": sum(counts.values()), "cancelled": counts["cancelled"],
            "filled": counts["filled"], "expired": counts["expired"], "refused": refused}


def best(results: list[Result]) -> Result:
    return min(results, key=lambda r: r.in_process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--baseline", default=DEFAULT_BASELINE,
                        help=f"commit to compare with (default {DEFAULT_BASELINE})")
    parser.add_argument("--repeat", type=int, default=1, help="runs per version, best kept")
    parser.add_argument("--only", action="append", default=None,
                        help="run only this workload (repeatable)")
    args = parser.parse_args()
    n = args.bars
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with baseline_worktree(args.baseline, tmp / "baseline") as base:
            run_all(args, n, tmp, base / "src")


@contextlib.contextmanager
def baseline_worktree(revision: str, path: Path) -> Iterator[Path]:
    """A detached git worktree of ``revision`` at ``path``, removed again afterwards."""
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet",
                    str(path), revision], check=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)],
                       check=False)


def run_all(args: argparse.Namespace, n: int, tmp: Path, base_src: Path) -> None:
    ours_src = REPO / "src"
    work = tmp / "work"
    work.mkdir()
    env = dict(os.environ, PYTHONHASHSEED="0")
    for src in (ours_src, base_src):
        check_source(dict(env, PYTHONPATH=str(src)), src, work)
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.baseline],
                            capture_output=True, text=True, check=True).stdout.strip()
    walk = write_bars(tmp / "walk.parquet", n)
    heavy = order_walk(tmp / "order-walk.parquet", n)
    donchian_1 = ('[data]\nprice_increment = "0.01"\n[strategy]\nname = "donchian_breakout"\n'
                  '[strategy.params]\nqty = 1\n')
    refused_cash = int(n * float(REFUSED_CASH_PER_BAR))
    workloads = [
        Workload("sma_cross", walk, '[strategy]\nname = "sma_cross"\n'),
        Workload("donchian_breakout", walk, '[strategy]\nname = "donchian_breakout"\n'),
        Workload("order-heavy", heavy,
                 donchian_1 + '[execution]\ninitial_cash = "10000000000"\n', counts=True),
        Workload("refused", heavy, donchian_1 + f'[execution]\ninitial_cash = "{refused_cash}"\n',
                 counts=True),
    ]
    if args.only:
        workloads = [w for w in workloads if w.name in args.only]
    print(f"bars {n:,}; baseline {args.baseline} ({commit}); best of {args.repeat}")
    print(f"{'workload':<18}{'version':<10}{'in process':>12}{'whole':>10}{'CPU':>10}"
          f"{'RSS MiB':>9}")
    failed = []
    sma_current: Result | None = None
    for w in workloads:
        runs: dict[str, list[Result]] = {"baseline": [], "current": []}
        for k in range(args.repeat):
            for label, src in (("baseline", base_src), ("current", ours_src)):
                runs[label].append(run_cli(src, w, tmp / f"{w.name}-{label}-{k}", work))
        old, new = best(runs["baseline"]), best(runs["current"])
        if w.name == "sma_cross":
            sma_current = new
        for label, r in (("baseline", old), ("current", new)):
            print(f"{w.name:<18}{label:<10}{r.in_process:>10.2f} s{r.whole:>8.2f} s"
                  f"{r.cpu:>8.2f} s{r.rss_mib:>9,.0f}")
        print(f"{w.name:<18}{'old/new':<10}{old.in_process / new.in_process:>10.2f} x"
              f"{old.whole / new.whole:>8.2f} x{old.cpu / new.cpu:>8.2f} x")
        if w.counts:
            for label, r in (("baseline", old), ("current", new)):
                c = order_counts(r.out)
                handled = c["placed"] + c["refused"]
                print(f"{'':<18}{label:<10}orders placed {c['placed']:,} / cancelled "
                      f"{c['cancelled']:,} / filled {c['filled']:,} / expired {c['expired']:,}"
                      f" / refused {c['refused']:,}; {handled / r.in_process:,.0f} orders/s")
        differ = compare(old.out, new.out)
        if old.summary["equity_hash"] != new.summary["equity_hash"]:
            differ.append("equity hash")
        verdict = "identical" if not differ else "DIFFERENT: " + ", ".join(differ)
        print(f"{'':<18}outputs   {verdict} (hash {str(new.summary['equity_hash'])[:16]}…)")
        if differ:
            failed.append(w.name)
    if not args.only or "sma_cross" in args.only:
        t0 = time.perf_counter()
        loop = subprocess.run([sys.executable, "-c", BASELINE_LOOP, str(walk)],
                              capture_output=True, text=True, check=True)
        loop_wall = time.perf_counter() - t0
        loop_in = float(loop.stdout.split()[0])
        print(f"plain-Python sma loop   {loop_in:.2f} s in process ({n / loop_in:,.0f} bars/s),"
              f" {loop_wall:.2f} s whole")
        if sma_current is not None:
            print(f"sma_cross / loop        {loop_in / sma_current.in_process:.2f}x the loop's "
                  f"speed in process, {loop_wall / sma_current.whole:.2f}x whole")
    if failed:
        raise SystemExit(f"outputs differ from {args.baseline} for: {', '.join(failed)}")


if __name__ == "__main__":
    main()
