"""Prometheus metrics of the live service, read from ``LiveStatus`` at scrape time.

The loop never touches ``prometheus_client``: it writes plain attributes of one ``LiveStatus``
(``service/status.py``) and aggregates stage latencies into exact bucket counts. One custom
collector turns them into metric families when Prometheus scrapes, so the cost of metrics is
paid by the HTTP thread, once per scrape, not by the loop once per event.

Names are a contract (DESIGN section 6): the alert rules in ``ops/alerts/``, the dashboard in
``ops/grafana/`` and ``docs/metrics.md`` use them, and ``tests/ops`` checks that every name they use
is in ``METRIC_NAMES``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from weltklassebot.engine.probe import STAGES
from weltklassebot.risk.state import DenialReason
from weltklassebot.service.status import RISK_STATES, LiveStatus, snapshot_counts

DENIAL_REASONS: Final = tuple(r.value for r in DenialReason)
"""Every reason of DESIGN section 8, exported even at 0 so ``rate()`` sees the first denial."""

RUN_START_REASONS: Final = (
    "new", "resumed", "new_snapshot", "code_changed", "config_changed", "engine_version_changed",
)
"""Why a run started (``LiveStatus.runs_started``); other reasons the loop adds are exported too."""

ORDER_STATUSES: Final = ("open", "filled", "cancelled", "expired", "rejected")

HISTOGRAMS: Final = ("stage_latency_seconds",)
"""Histogram families: their samples are ``_bucket``, ``_sum`` and ``_count``."""

SERVICE_METRIC_NAMES: Final = (
    "stage_latency_seconds",
    "risk_state",
    "duplicate_fills_total",
    "drawdown_ratio",
    "drawdown_cap_ratio",
    "equity",
    "fills_total",
    "orders_total",
    "orders_submitted_total",
    "risk_denials_total",
    "events_processed_total",
    "last_event_timestamp_seconds",
    "last_event_age_seconds",
    "feed_cursor",
    "feed_bars_total",
    "state_store_write_errors_total",
    "state_dir_free_bytes",
    "store_fsync_seconds_total",
    "runs_started_total",
    "run_ended",
    "service_ready",
    "restart_replayed_events_total",
    "restart_replay_mismatches_total",
    "operator_commands_total",
    "bundles_written_total",
    "bundle_write_failures_total",
    "weltklassebot_build_info",
)
"""What the service's own collector exports, spelled as PromQL sees them."""

PROCESS_METRIC_NAMES: Final = (
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_start_time_seconds",
    "process_open_fds",
    "process_max_fds",
)
"""``prometheus_client``'s process collector (Linux only): CPU, memory and file descriptors,
the first things to look at when stage latency rises."""

METRIC_NAMES: Final = SERVICE_METRIC_NAMES + PROCESS_METRIC_NAMES
"""Every metric name the service may export, as written in PromQL (counters with ``_total``,
the info metric with ``_info``, histograms by their base name)."""


def sample_names(names: Iterable[str] = METRIC_NAMES) -> frozenset[str]:
    """Every series name a query may use: the names, plus each histogram's sample suffixes."""
    out = set(names)
    for name in names:
        if name in HISTOGRAMS:
            out.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count", "_created"))
    return frozenset(out)


def _le(bound: float) -> str:
    """A bucket bound as Prometheus writes it (``0.25``, ``1.0``, ``1e-05``)."""
    return repr(float(bound))


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer can still use on ``path``'s file system."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class LiveStatusCollector(Collector):
    """Reads one ``LiveStatus`` at every scrape and yields its metric families."""

    def __init__(self, status: LiveStatus, state_dir: Path | None = None) -> None:
        self._status = status
        self._state_dir = state_dir

    def describe(self) -> Iterable[Metric]:
        # No describe-time collection: registering must not read a status the loop is filling.
        return ()

    def collect(self) -> Iterator[Metric]:
        s = self._status
        yield self._stage_latency(s)

        risk = GaugeMetricFamily(
            "risk_state", "1 for the current risk state, 0 for the others", labels=["state"])
        current = s.risk_state
        for state in RISK_STATES:
            risk.add_metric([state], 1.0 if state == current else 0.0)
        yield risk

        yield _counter("duplicate_fills", "Fills received more than once (dropped, never applied)",
                       s.duplicate_fills)
        yield _gauge("drawdown_ratio", "Drawdown from peak equity as a fraction (0.1 = 10 %)",
                     s.drawdown_ratio)
        yield _gauge("drawdown_cap_ratio", "Configured drawdown cap as a fraction (1: no cap)",
                     s.drawdown_cap_ratio)
        yield _gauge("equity", "Current equity in the quote currency", s.equity)
        yield _counter("fills", "Fills applied", s.fills)
        yield _labelled_counter("orders", "Orders by final status", "status",
                                snapshot_counts(s.orders), ORDER_STATUSES)
        yield _counter("orders_submitted", "Orders the strategy submitted", s.orders_submitted)
        yield _labelled_counter("risk_denials", "Orders denied or clipped, by reason", "reason",
                                snapshot_counts(s.denials), DENIAL_REASONS)
        yield _counter("events_processed", "Market events processed by this process",
                       s.events_processed)
        if s.last_event_ts_ns:
            yield _gauge("last_event_timestamp_seconds",
                         "Event-clock time of the last event processed (Unix seconds)",
                         s.last_event_ts_ns / 1e9)
        if s.last_event_wall_s:
            yield _gauge("last_event_age_seconds",
                         "Wall seconds since the last event was processed",
                         max(0.0, time.time() - s.last_event_wall_s))
        yield _gauge("feed_cursor", "Bars of the snapshot consumed so far", s.cursor)
        yield _gauge("feed_bars_total", "Bars in the snapshot being run", s.total_bars)
        yield _counter("state_store_write_errors", "State-store writes that failed",
                       s.store_write_errors)
        free = self._free_bytes()
        if free >= 0:
            yield _gauge("state_dir_free_bytes",
                         "Free bytes on the state directory's file system", free)
        yield _counter("store_fsync_seconds", "Wall seconds spent flushing the state store",
                       s.fsync_seconds)
        yield _labelled_counter("runs_started", "Runs started by this process, by reason",
                                "reason", snapshot_counts(s.runs_started), RUN_START_REASONS)
        yield _gauge("run_ended", "1 once the feed is exhausted and the run written out",
                     1.0 if s.run_ended else 0.0)
        yield _gauge("service_ready", "1 while the service takes events (as /readyz)",
                     1.0 if s.ready and not s.stopping else 0.0)
        yield _counter("restart_replayed_events",
                       "Events re-run at start-up to reach the recorded cursor",
                       s.restarts_replayed)
        yield _counter("restart_replay_mismatches",
                       "Restarts whose re-run differed from what the store recorded",
                       s.replay_mismatches)
        yield _counter("operator_commands", "Operator commands applied", s.operator_commands)
        yield _counter("bundles_written", "Incident bundles written", s.bundles_written)
        yield _counter("bundle_write_failures", "Incident bundles that could not be written",
                       s.bundle_failures)

        info = InfoMetricFamily(
            "weltklassebot_build", "The run, snapshot, strategy and code this process serves")
        info.add_metric([], {
            "run_id": s.run_id,
            "snapshot_sha256": s.snapshot_sha256,
            "strategy": s.strategy,
            "strategy_version": s.strategy_version,
            "version": s.version,
            "build": s.build,
            "seed": str(s.seed),
        })
        yield info

    def _stage_latency(self, s: LiveStatus) -> HistogramMetricFamily:
        hist = s.stages
        bounds = [_le(b) for b in hist.bounds_s] + ["+Inf"]
        family = HistogramMetricFamily(
            "stage_latency_seconds", "Time per event spent in each pipeline stage",
            labels=["stage"])
        for stage in STAGES:
            # _count is taken from the +Inf bucket of the same copy, so the buckets and the count
            # agree even while the loop is adding an event; only _sum may be one event apart.
            cumulative = hist.cumulative(stage)
            total_ns = hist.sum_ns.get(stage, 0)
            family.add_metric([stage], list(zip(bounds, (float(c) for c in cumulative),
                                                strict=True)),
                              sum_value=total_ns / 1e9)
        return family

    def _free_bytes(self) -> int:
        s = self._status
        directory = self._state_dir
        if directory is None and s.state_dir:
            directory = Path(s.state_dir)
        if directory is not None and directory.is_dir():
            # On OSError keep the last measurement: a failing statvfs is no reason to fail a scrape.
            with contextlib.suppress(OSError):
                s.state_dir_free_bytes = free_bytes(directory)
        return s.state_dir_free_bytes


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value))


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=float(value))


def _labelled_counter(name: str, doc: str, label: str, counts: dict[str, int],
                      always: Iterable[str]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    values = dict.fromkeys(always, 0) | counts
    for key in sorted(values):
        family.add_metric([key], float(values[key]))
    return family


def build_registry(status: LiveStatus, state_dir: Path | None = None) -> CollectorRegistry:
    """A fresh registry (never the global one) holding the service's collectors."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LiveStatusCollector(status, state_dir))
    ProcessCollector(registry=registry)
    return registry
