"""The exposition of ``service/metrics.py``: names, labels, exact bucket counts, scrape-time values.

Every test renders the registry to Prometheus' text format and parses it back with
``prometheus_client``'s parser, as Prometheus would read it.
"""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from weltklassebot.engine.probe import STAGES
from weltklassebot.service.metrics import (
    DENIAL_REASONS,
    METRIC_NAMES,
    SERVICE_METRIC_NAMES,
    build_registry,
    sample_names,
)
from weltklassebot.service.status import LATENCY_BUCKETS_S, LiveStatus


def scrape(registry: CollectorRegistry) -> list[Sample]:
    text = generate_latest(registry).decode()
    return [s for fam in text_string_to_metric_families(text) for s in fam.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    hits = [s.value for s in samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(hits) == 1, f"{name}{labels}: {len(hits)} samples"
    return hits[0]


def busy_status(state_dir: Path | None = None) -> LiveStatus:
    """A status as the loop leaves it mid-run: every field away from its default."""
    s = LiveStatus(run_id="run-1", strategy="sma_cross", strategy_version="2",
                   snapshot_sha256="ab" * 32, seed=7, version="0.1.0", build="abc1234",
                   ready=True, events_processed=1200, last_event_ts_ns=1_500_000_000_123_000_000,
                   last_event_wall_s=time.time() - 3.0, last_loop_wall_s=time.time(),
                   cursor=1200, total_bars=19000, fills=31, duplicate_fills=2,
                   orders={"filled": 31, "cancelled": 4, "expired_soon": 1}, orders_submitted=36,
                   denials={"max_position": 5, "cooldown": 2}, equity=10_250.5,
                   drawdown_ratio=0.04, drawdown_cap_ratio=0.1, risk_state="COOL",
                   store_write_errors=1, fsync_seconds=0.75, runs_started={"resumed": 1},
                   restarts_replayed=800, replay_mismatches=0, operator_commands=3,
                   bundles_written=1, bundle_failures=0,
                   state_dir=str(state_dir) if state_dir else "")
    return s


def test_every_name_exported_and_listed() -> None:
    samples = scrape(build_registry(busy_status()))
    exported = {s.name for s in samples}
    allowed = sample_names()
    assert exported <= allowed, f"exported but not in METRIC_NAMES: {exported - allowed}"
    # Every service name is in a scrape of a running service (state_dir_free_bytes needs a
    # state directory: checked in test_state_dir_free_bytes).
    for name in SERVICE_METRIC_NAMES:
        if name == "state_dir_free_bytes":
            continue
        assert name in exported or f"{name}_bucket" in exported, name
    if Path("/proc/self/stat").exists():  # the process collector reads Linux' /proc
        assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= exported
    assert len(set(METRIC_NAMES)) == len(METRIC_NAMES)


def test_design_six_names_and_types() -> None:
    text = generate_latest(build_registry(busy_status())).decode()
    types = {fam.name: fam.type for fam in text_string_to_metric_families(text)}
    assert types["stage_latency_seconds"] == "histogram"
    assert types["risk_state"] == "gauge"
    assert types["duplicate_fills"] == "counter"  # the parser names counters without _total
    assert "duplicate_fills_total 2.0" in text
    for gauge in ("drawdown_ratio", "drawdown_cap_ratio", "equity"):
        assert types[gauge] == "gauge"


def test_stage_histogram_exact_bucket_counts() -> None:
    status = LiveStatus()
    # 0.25 s exactly lands in the 0.25 bucket (le is inclusive); one ns more does not.
    durations = {"strategy": [1_000, 250_000_000, 250_000_001, 3_000_000_000, 40_000]}
    for spent in durations["strategy"]:
        status.stages.observe_event(dict.fromkeys(STAGES, 0) | {"strategy": spent})
    samples = scrape(build_registry(status))

    assert {s.labels["stage"] for s in samples if s.name == "stage_latency_seconds_count"} \
        == set(STAGES)
    bounds = [s.labels["le"] for s in samples
              if s.name == "stage_latency_seconds_bucket" and s.labels["stage"] == "strategy"]
    assert [float(b) for b in bounds[:-1]] == list(LATENCY_BUCKETS_S)
    assert bounds[-1] == "+Inf"
    assert "0.25" in bounds

    def bucket(le: str) -> float:
        return value(samples, "stage_latency_seconds_bucket", stage="strategy", le=le)

    assert bucket("1e-05") == 1          # 1 us
    assert bucket("5e-05") == 2          # + 40 us
    assert bucket("0.1") == 2
    assert bucket("0.25") == 3           # + exactly 250 ms
    assert bucket("0.5") == 4            # + 250 ms and 1 ns
    assert bucket("2.5") == 4
    assert bucket("+Inf") == 5           # + 3 s, above every bound
    assert value(samples, "stage_latency_seconds_count", stage="strategy") == 5
    assert value(samples, "stage_latency_seconds_sum", stage="strategy") == pytest.approx(
        sum(durations["strategy"]) / 1e9)
    # the other stages saw five events of 0 ns: all in the first bucket
    assert value(samples, "stage_latency_seconds_bucket", stage="risk", le="1e-05") == 5
    assert value(samples, "stage_latency_seconds_sum", stage="risk") == 0
    # the cumulative counts match StageHistograms' own
    got = [s.value for s in samples
           if s.name == "stage_latency_seconds_bucket" and s.labels["stage"] == "strategy"]
    assert got == status.stages.cumulative("strategy")


@pytest.mark.parametrize("state", ["ACTIVE", "COOL", "HALTED"])
def test_risk_state_one_hot(state: str) -> None:
    status = LiveStatus(risk_state=state)
    samples = scrape(build_registry(status))
    got = {s.labels["state"]: s.value for s in samples if s.name == "risk_state"}
    assert got == {st: (1.0 if st == state else 0.0) for st in ("ACTIVE", "COOL", "HALTED")}


def test_values_read_at_scrape_time() -> None:
    status = busy_status()
    registry = build_registry(status)
    first = scrape(registry)
    assert value(first, "risk_state", state="COOL") == 1
    assert value(first, "duplicate_fills_total") == 2
    assert value(first, "drawdown_ratio") == 0.04
    assert value(first, "drawdown_cap_ratio") == 0.1
    assert value(first, "equity") == 10_250.5
    assert value(first, "fills_total") == 31
    assert value(first, "orders_total", status="filled") == 31
    assert value(first, "orders_total", status="rejected") == 0       # known statuses at 0
    assert value(first, "orders_total", status="expired_soon") == 1   # unknown ones too
    assert value(first, "orders_submitted_total") == 36
    assert value(first, "events_processed_total") == 1200
    assert value(first, "last_event_timestamp_seconds") == pytest.approx(1_500_000_000.123)
    assert 2.5 < value(first, "last_event_age_seconds") < 60
    assert value(first, "feed_cursor") == 1200
    assert value(first, "feed_bars_total") == 19000
    assert value(first, "state_store_write_errors_total") == 1
    assert value(first, "store_fsync_seconds_total") == 0.75
    assert value(first, "runs_started_total", reason="resumed") == 1
    assert value(first, "runs_started_total", reason="new") == 0
    assert value(first, "run_ended") == 0
    assert value(first, "service_ready") == 1
    assert value(first, "restart_replayed_events_total") == 800
    assert value(first, "restart_replay_mismatches_total") == 0
    assert value(first, "operator_commands_total") == 3
    assert value(first, "bundles_written_total") == 1
    assert value(first, "bundle_write_failures_total") == 0
    info = [s for s in first if s.name == "weltklassebot_build_info"]
    assert len(info) == 1
    assert info[0].value == 1
    assert info[0].labels == {"run_id": "run-1", "snapshot_sha256": "ab" * 32,
                              "strategy": "sma_cross", "strategy_version": "2",
                              "version": "0.1.0", "build": "abc1234", "seed": "7"}

    # The loop moves on; the same registry shows the new values at the next scrape.
    status.risk_state = "HALTED"
    status.duplicate_fills = 3
    status.denials["halted"] = 4
    status.run_ended = True
    status.stopping = True
    second = scrape(registry)
    assert value(second, "risk_state", state="HALTED") == 1
    assert value(second, "risk_state", state="COOL") == 0
    assert value(second, "duplicate_fills_total") == 3
    assert value(second, "risk_denials_total", reason="halted") == 4
    assert value(second, "run_ended") == 1
    assert value(second, "service_ready") == 0


def test_every_denial_reason_exported_from_the_start() -> None:
    samples = scrape(build_registry(LiveStatus(denials={"price_band": 3})))
    got = {s.labels["reason"]: s.value for s in samples if s.name == "risk_denials_total"}
    assert set(got) == set(DENIAL_REASONS)
    assert set(DENIAL_REASONS) == {
        "max_position", "max_gross_notional", "max_order_qty", "max_order_notional",
        "order_rate_second", "order_rate_minute", "price_band", "reduce_only",
        "insufficient_buying_power", "cooldown", "halted"}
    assert got["price_band"] == 3
    assert sum(got.values()) == 3


def test_before_the_first_event() -> None:
    """No event yet: no event time or age (not a 1970 timestamp), every counter at 0."""
    samples = scrape(build_registry(LiveStatus()))
    names = {s.name for s in samples}
    assert "last_event_age_seconds" not in names
    assert "last_event_timestamp_seconds" not in names
    assert "state_dir_free_bytes" not in names  # not measured, no state directory given
    assert value(samples, "events_processed_total") == 0
    assert value(samples, "risk_state", state="ACTIVE") == 1
    assert value(samples, "drawdown_cap_ratio") == 1
    assert all(not math.isnan(s.value) for s in samples)


def test_state_dir_free_bytes(tmp_path: Path) -> None:
    status = LiveStatus()
    samples = scrape(build_registry(status, state_dir=tmp_path))
    st = os.statvfs(tmp_path)
    expected = st.f_bavail * st.f_frsize
    got = value(samples, "state_dir_free_bytes")
    # other writers on the same file system may move it a little between the two readings
    assert abs(got - expected) < 64 * 1024 * 1024
    assert status.state_dir_free_bytes == got  # written back for /healthz and the loop

    # Falls back to the status's own state_dir; a missing directory keeps the last figure.
    status2 = LiveStatus(state_dir=str(tmp_path / "gone"), state_dir_free_bytes=12345)
    assert value(scrape(build_registry(status2)), "state_dir_free_bytes") == 12345
    status3 = LiveStatus(state_dir=str(tmp_path))
    assert value(scrape(build_registry(status3)), "state_dir_free_bytes") > 0


def test_registries_are_separate() -> None:
    a = build_registry(LiveStatus(fills=1))
    b = build_registry(LiveStatus(fills=2))
    assert value(scrape(a), "fills_total") == 1
    assert value(scrape(b), "fills_total") == 2
    assert "fills_total" not in generate_latest(REGISTRY).decode()


def test_scrape_while_the_loop_writes() -> None:
    """Scrapes during a stream of events stay well-formed: buckets cumulative, count = +Inf."""
    status = LiveStatus()
    registry = build_registry(status)
    done = threading.Event()

    def loop() -> None:
        n = 0
        while not done.is_set():
            n += 1
            status.stages.observe_event({s: (n * 7919) % 400_000_000 for s in STAGES})
            status.orders[f"s{n % 50}"] = n
            status.events_processed = n

    t = threading.Thread(target=loop)
    t.start()
    try:
        for _ in range(30):
            samples = scrape(registry)
            for stage in STAGES:
                counts = [s.value for s in samples if s.name == "stage_latency_seconds_bucket"
                          and s.labels["stage"] == stage]
                assert counts == sorted(counts)
                assert counts[-1] == value(samples, "stage_latency_seconds_count", stage=stage)
    finally:
        done.set()
        t.join()
