"""State-store latency and throughput: ``python benchmarks/bench_state_store.py [--dir DIR]``.

Reports, on the filesystem of ``--dir`` (default: a temporary directory):

* durable appends (fsync before returning): median, p99 and max latency;
* batched appends (``durable=False``): records per second, including the batch fsyncs;
* recovery (open) of a store of several rotated segments: seconds and MB/s;

and, as a baseline measured in the same run, a bare ``write + fsync`` of a line of the same size,
so the store's own overhead is visible. Timing claims live here, never in unit tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("WELTKLASSE_LOG_LEVEL", "WARNING")  # keep the figures readable

from weltklassebot.state.config import StoreConfig
from weltklassebot.state.jsonl_store import JsonlStore

PAYLOAD = {"fill_id": 0, "symbol": "BTC/USD", "side": "buy", "price": "2623.79", "qty": "1",
           "fee": "2.62379", "order_id": 0}


class _State:
    def __init__(self) -> None:
        self.count = 0

    def snapshot(self) -> dict[str, Any]:
        return {"count": self.count}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_durable(directory: Path, n: int) -> list[float]:
    state = _State()
    store = JsonlStore.open(directory, StoreConfig(max_segment_bytes=64 << 20), state.snapshot)
    latencies = []
    for i in range(n):
        t0 = time.perf_counter()
        store.append("fill", dict(PAYLOAD, fill_id=i), i, durable=True)
        latencies.append(time.perf_counter() - t0)
        state.count += 1
    store.close()
    return latencies


def bench_baseline(directory: Path, n: int) -> list[float]:
    line = (b'{"kind":"fill","payload":' + repr(PAYLOAD).encode() + b'}\n')
    fd = os.open(directory / "baseline.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    latencies = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            os.write(fd, line)
            os.fsync(fd)
            latencies.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
    return latencies


def bench_batched(directory: Path, n: int) -> float:
    state = _State()
    store = JsonlStore.open(directory, StoreConfig(max_segment_bytes=16 << 20,
                                                   retain_segments=8), state.snapshot)
    t0 = time.perf_counter()
    for i in range(n):
        store.append("cursor", {"cursor": i}, i, durable=False)
        state.count += 1
    store.flush()
    elapsed = time.perf_counter() - t0
    store.close()
    return elapsed


def bench_recovery(directory: Path) -> tuple[float, int, int]:
    size = sum(p.stat().st_size for p in directory.glob("*.jsonl"))
    state = _State()
    t0 = time.perf_counter()
    store = JsonlStore.open(directory, StoreConfig(max_segment_bytes=16 << 20,
                                                   retain_segments=8), state.snapshot)
    elapsed = time.perf_counter() - t0
    records = len(store.recovery.records)
    store.close()
    return elapsed, size, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="filesystem to measure on")
    parser.add_argument("--durable", type=int, default=2000, help="durable appends to time")
    parser.add_argument("--batched", type=int, default=300_000, help="batched appends")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp_name:
        tmp = Path(tmp_name)
        durable = bench_durable(tmp / "durable", args.durable)
        (tmp / "baseline").mkdir()
        baseline = bench_baseline(tmp / "baseline", args.durable)
        batched = bench_batched(tmp / "batched", args.batched)
        seconds, size, records = bench_recovery(tmp / "batched")
    ms = 1000.0
    print(f"durable append      median {statistics.median(durable) * ms:.3f} ms   "
          f"p99 {_percentile(durable, 0.99) * ms:.3f} ms   max {max(durable) * ms:.3f} ms")
    print(f"bare write+fsync    median {statistics.median(baseline) * ms:.3f} ms   "
          f"p99 {_percentile(baseline, 0.99) * ms:.3f} ms   (baseline, same run)")
    print(f"ratio               {statistics.median(durable) / statistics.median(baseline):.2f}x "
          "the bare write+fsync median")
    print(f"batched append      {args.batched / batched:,.0f} records/s "
          f"({args.batched:,} records in {batched:.2f} s, batch fsyncs included)")
    print(f"recovery            {seconds:.2f} s for {size / 1e6:.1f} MB, {records:,} records "
          f"after the checkpoint ({size / 1e6 / seconds:.0f} MB/s)")


if __name__ == "__main__":
    main()
