"""Snapshot validation at scale: ``python benchmarks/bench_validate.py [--rows N] [--symbols K]``.

Generates a seeded bars snapshot (default 10,000,000 rows, written in row groups) in one child
process, then runs ``inspect_snapshot`` on it in a second child and reports:

* wall time of the validation (in the child) and of the whole child process (start-up included);
* peak RSS of the validating child (its own ``ru_maxrss`` from ``os.wait4``; the parent imports
  only the standard library, so nothing large is inherited at fork), the ``RUSAGE_CHILDREN``
  figure over both children, and the child's RSS right after its imports (the fixed cost);
* rows/s.

Requirement (issue "Data snapshots"): validating a 10,000,000-row snapshot stays under 1 GiB peak
RSS. The script exits 1 when the limit is exceeded. ``--symbols K`` (K > 1) adds a symbol column
with K instruments interleaved, which exercises the per-symbol checks. ``--keep PATH`` keeps the
generated file.

Timing figures depend on the machine; run it on a quiet one.
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

LIMIT_BYTES = 1 << 30
ROW_GROUP = 1 << 20
MINUTE_NS = 60 * 10**9

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from weltklassebot.data.validate import inspect_snapshot
after_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
report = inspect_snapshot(Path(sys.argv[1]))
wall = time.perf_counter() - t0
print(json.dumps({"wall_s": wall, "rows": report.rows, "ok": report.ok,
                  "violations": len(report.violations), "warnings": len(report.warnings),
                  "symbols": len(report.symbols), "rss_after_imports_kib": after_imports}))
"""


def generate(path: Path, rows: int, symbols: int, seed: int = 20261124) -> None:
    """A bounded random walk per symbol; bars interleaved by time, ascending per symbol."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.Generator(np.random.PCG64(seed))
    fields = [("ts", pa.timestamp("ns", tz="UTC"))]
    if symbols > 1:
        fields.append(("symbol", pa.string()))
    fields += [(c, pa.float64()) for c in ("open", "high", "low", "close", "volume")]
    schema = pa.schema(fields).with_metadata({
        "weltklassebot": json.dumps({"kind": "bars", "name": "bench", "source": "synthetic",
                                     "bar_interval_ns": MINUTE_NS, "ts_convention": "bar_start"})
    })
    names = [f"SYM{i:03d}" for i in range(symbols)]
    start = 1_500_000_000 * 10**9
    walk = np.zeros(symbols)
    done = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        while done < rows:
            m = min(ROW_GROUP, rows - done)
            index = np.arange(done, done + m, dtype=np.int64)
            sym = index % symbols
            ts = start + (index // symbols) * MINUTE_NS
            steps = rng.normal(0.0, 0.002, m)
            walks = np.empty(m)
            for s in range(symbols):
                sel = sym == s
                path_s = walk[s] + np.cumsum(steps[sel])
                walks[sel] = path_s
                if path_s.size:
                    walk[s] = path_s[-1]
            close = 100.0 * np.exp(0.5 * np.sin(walks))
            open_ = close * np.exp(rng.normal(0.0, 0.001, m))
            high = np.maximum(open_, close) * (1 + rng.random(m) * 0.001)
            low = np.minimum(open_, close) * (1 - rng.random(m) * 0.001)
            volume = rng.random(m) * 100
            columns: dict[str, pa.Array] = {"ts": pa.array(ts, type=pa.timestamp("ns", tz="UTC"))}
            if symbols > 1:
                columns["symbol"] = pa.DictionaryArray.from_arrays(
                    pa.array(sym.astype(np.int32)), pa.array(names)).cast(pa.string())
            columns.update(open=pa.array(open_), high=pa.array(high), low=pa.array(low),
                           close=pa.array(close), volume=pa.array(volume))
            writer.write_table(pa.table(columns, schema=schema))
            done += m


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--symbols", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="write the snapshot here")
    parser.add_argument("--generate-only", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate_only is not None:
        generate(args.generate_only, args.rows, args.symbols)
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "bench.parquet"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--symbols",
                        str(args.symbols), "--generate-only", str(path)], check=True)
        gen_s = time.perf_counter() - t0
        size = path.stat().st_size
        t0 = time.perf_counter()
        errors = Path(tmp) / "child.err"
        with errors.open("w") as err_file:
            child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)],
                                     stdout=subprocess.PIPE, stderr=err_file, text=True)
            out = child.stdout.read() if child.stdout is not None else ""
            # wait4 gives this child's own resource usage (peak RSS included).
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
        process_s = time.perf_counter() - t0
        if child.returncode != 0:
            sys.stderr.write(errors.read_text())
            return 2
        result = json.loads(out)
        # Linux reports ru_maxrss in KiB.
        peak = usage.ru_maxrss * 1024
        all_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        rows_per_s = result["rows"] / result["wall_s"] if result["wall_s"] else float("inf")
        print(f"snapshot: {args.rows:,} rows, {args.symbols} symbol(s), "
              f"{-(-args.rows // ROW_GROUP)} row groups, {size / (1 << 20):.1f} MiB on disk "
              f"(generated in {gen_s:.1f} s)")
        print(f"inspect_snapshot: {result['wall_s']:.2f} s ({rows_per_s / 1e6:.2f} M rows/s); "
              f"child process {process_s:.2f} s with start-up")
        print(f"valid: {result['ok']} ({result['violations']} violations, "
              f"{result['warnings']} warnings)")
        print(f"peak RSS of the validating child: {peak / (1 << 20):.0f} MiB (after imports "
              f"{result['rss_after_imports_kib'] / 1024:.0f} MiB); RUSAGE_CHILDREN over "
              f"generator and validator: {all_children / (1 << 20):.0f} MiB")
        print(f"limit {LIMIT_BYTES / (1 << 20):.0f} MiB -> "
              f"{'OK' if peak < LIMIT_BYTES else 'OVER THE LIMIT'}")
    return 0 if peak < LIMIT_BYTES else 1


if __name__ == "__main__":
    raise SystemExit(main())
