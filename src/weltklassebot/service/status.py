"""What a running service knows about itself, for ``/metrics``, ``/healthz`` and ``/readyz``.

The service loop writes plain attributes of one ``LiveStatus`` (ints, floats, strings: a store of a
Python attribute is atomic under the GIL, so the loop takes no lock and pays almost nothing); the
HTTP thread reads them at scrape time and turns them into metric families
(``service/metrics.py``). Counters only ever grow within a process. Label-keyed counters are dicts
that the loop only adds keys to or bumps; readers copy them with ``snapshot_counts``.

Stage latencies are aggregated in the loop into exact histogram bucket counts
(``StageHistograms``): one ``bisect`` and two integer additions per stage per event, instead of
one ``prometheus_client`` ``observe()`` (a lock and a float walk) per stage per event.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Final

from weltklassebot.engine.probe import STAGES

LATENCY_BUCKETS_S: Final = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)
"""Upper bounds (seconds) of ``stage_latency_seconds``; 0.25 is the SLO's bound (DESIGN 6)."""

RISK_STATES: Final = ("ACTIVE", "COOL", "HALTED")


class StageHistograms:
    """Exact per-stage histograms of nanosecond durations: bucket counts, sum and count."""

    __slots__ = ("_bounds_ns", "buckets", "count", "sum_ns")

    def __init__(self, bounds_s: tuple[float, ...] = LATENCY_BUCKETS_S) -> None:
        self._bounds_ns = [round(b * 1e9) for b in bounds_s]
        # buckets[stage][i]: observations with duration <= bounds[i] and > bounds[i-1];
        # the last slot holds those above every bound (+Inf).
        self.buckets = {s: [0] * (len(bounds_s) + 1) for s in STAGES}
        self.sum_ns = dict.fromkeys(STAGES, 0)
        self.count = dict.fromkeys(STAGES, 0)

    @property
    def bounds_s(self) -> tuple[float, ...]:
        return tuple(b / 1e9 for b in self._bounds_ns)

    def observe_ns(self, stage: str, duration_ns: int) -> None:
        self.buckets[stage][bisect.bisect_left(self._bounds_ns, duration_ns)] += 1
        self.sum_ns[stage] += duration_ns
        self.count[stage] += 1

    def observe_event(self, durations_ns: dict[str, int]) -> None:
        """One event: every stage's exclusive time (a stage that did not run counts as 0)."""
        bounds = self._bounds_ns
        buckets, sums, counts = self.buckets, self.sum_ns, self.count
        for stage, spent in durations_ns.items():
            buckets[stage][bisect.bisect_left(bounds, spent)] += 1
            sums[stage] += spent
            counts[stage] += 1

    def cumulative(self, stage: str) -> list[int]:
        """Cumulative counts per bound, then +Inf (Prometheus' ``le`` convention)."""
        total = 0
        out = []
        for n in list(self.buckets[stage]):
            total += n
            out.append(total)
        return out


def snapshot_counts(counts: dict[str, int]) -> dict[str, int]:
    """A copy of a label -> count dict that another thread may be adding keys to."""
    for _ in range(10):
        try:
            return dict(counts)
        except RuntimeError:  # "dictionary changed size during iteration": try again
            continue
    return {}


@dataclass
class LiveStatus:
    """The service's own view of itself; written by the loop, read by the HTTP thread."""

    # identity (labels of the info metric)
    run_id: str = ""
    strategy: str = ""
    strategy_version: str = ""
    snapshot_sha256: str = ""
    snapshot_path: str = ""
    seed: int = 0
    version: str = ""
    build: str = ""
    """Package version and git commit (or 'unknown') of the running code."""

    # life cycle
    started_wall_s: float = 0.0
    ready: bool = False
    """True once state is recovered and the loop takes events (``/readyz``)."""
    run_ended: bool = False
    """The feed is exhausted and the run written out; the service idles, serving metrics."""
    stopping: bool = False
    last_loop_wall_s: float = 0.0
    """Wall time the main loop last went round (``/healthz`` says it is alive)."""
    last_event_wall_s: float = 0.0
    """Wall time of the last event processed (``/healthz``: age of the last event)."""

    # the event clock and progress
    events_processed: int = 0
    last_event_ts_ns: int = 0
    cursor: int = 0
    total_bars: int = 0

    # trading
    fills: int = 0
    duplicate_fills: int = 0
    orders: dict[str, int] = field(default_factory=dict)
    """Orders by final status (``filled``, ``cancelled``, ``expired``, ``rejected``, ...)."""
    orders_submitted: int = 0
    denials: dict[str, int] = field(default_factory=dict)
    """Risk and engine denials by reason (DESIGN section 8's fixed set)."""
    equity: float = 0.0
    drawdown_ratio: float = 0.0
    drawdown_cap_ratio: float = 1.0
    risk_state: str = "ACTIVE"

    # state store and disk
    store_write_errors: int = 0
    state_dir: str = ""
    state_dir_free_bytes: int = -1
    """Free bytes of the state directory's file system (-1: not measured yet)."""
    fsync_seconds: float = 0.0
    """Wall seconds spent in store flushes (fsync) so far."""

    # runs and restarts
    runs_started: dict[str, int] = field(default_factory=dict)
    """Runs started by this process, by reason: ``new`` (empty state directory), ``resumed``,
    ``new_snapshot``, ``code_changed``, ``config_changed``, ``engine_version_changed``."""
    restarts_replayed: int = 0
    """Events re-run at start-up to reach the recorded cursor (from the last checkpoint)."""
    replay_mismatches: int = 0
    """Restarts whose re-run differed from what the store recorded."""
    operator_commands: int = 0
    bundles_written: int = 0
    bundle_failures: int = 0

    stages: StageHistograms = field(default_factory=StageHistograms)
