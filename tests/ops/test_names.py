"""Every metric name that the alert rules and the dashboard query is one the service exports.

A renamed metric or a typo in a query would otherwise show as an alert that never fires or an
empty panel, which nobody notices until the incident it was meant for.
"""

from __future__ import annotations

from typing import Any

import pytest

from support.cli import REPO
from weltklassebot.service.metrics import METRIC_NAMES, sample_names

from .tools import dashboard, dashboard_queries, metric_names, panels, rules

PROMETHEUS_OWN = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE"})
"""Series Prometheus writes itself: scrape health and the state of its alerts."""

KNOWN = sample_names(METRIC_NAMES) | PROMETHEUS_OWN


@pytest.mark.parametrize(("expr", "expected"), [
    ('histogram_quantile(0.95, sum by (instance, stage, le) '
     '(rate(stage_latency_seconds_bucket{job="x", le!="+Inf"}[5m]))) > 0.25',
     {"stage_latency_seconds_bucket"}),
    ("drawdown_ratio > on(job, instance) (0.9 * drawdown_cap_ratio)",
     {"drawdown_ratio", "drawdown_cap_ratio"}),
    ('count(count by (snapshot_sha256) (weltklassebot_build_info{snapshot_sha256!=""})) > 1',
     {"weltklassebot_build_info"}),
    ("up == 0 or absent(up{job='a b'}) unless ignoring(instance) max without (x) (y_total)",
     {"up", "y_total"}),
    ('rate(x[$__rate_interval]) * 1e9 + sum(z{instance=~"$instance"} offset 5m) / 2^30',
     {"x", "z"}),
])
def test_name_extraction(expr: str, expected: set[str]) -> None:
    assert metric_names(expr) == expected


def test_alert_expressions_use_exported_names() -> None:
    used: set[str] = set()
    for rule in rules():
        names = metric_names(rule.expr)
        assert names, f"{rule.alert}: no metric in {rule.expr!r}"
        assert names <= KNOWN, f"{rule.alert} uses unknown metrics {names - KNOWN}"
        used |= names
    # the three metrics DESIGN 7's alerts are built on
    assert {"stage_latency_seconds_bucket", "risk_state", "drawdown_ratio",
            "drawdown_cap_ratio"} <= used


def test_dashboard_queries_use_exported_names() -> None:
    doc = dashboard()
    queries = dashboard_queries(doc)
    assert len(queries) >= 15
    used: set[str] = set()
    for query in queries:
        names = metric_names(query)
        assert names, f"no metric in {query!r}"
        assert names <= KNOWN, f"dashboard query {query!r} uses unknown {names - KNOWN}"
        used |= names
    # the DESIGN 6 metrics each have a panel
    for name in ("risk_state", "duplicate_fills_total", "drawdown_ratio", "drawdown_cap_ratio",
                 "equity"):
        assert name in used, name
    assert "stage_latency_seconds_bucket" in used


def test_dashboard_uses_its_datasource_variable() -> None:
    doc = dashboard()
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ref = {"type": "prometheus", "uid": "${datasource}"}

    def refs(p: dict[str, Any]) -> list[Any]:
        return [p.get("datasource")] + [t.get("datasource") for t in p.get("targets", [])]

    for p in panels(doc):
        if p["type"] == "row":
            continue
        assert p.get("targets"), p["title"]
        assert all(r == ref for r in refs(p)), p["title"]
    ids = [p["id"] for p in panels(doc)]
    assert len(ids) == len(set(ids))


def test_dashboard_has_a_panel_per_slo_and_per_alert() -> None:
    doc = dashboard()
    text = {p["id"]: f"{p['title']} {p.get('description', '')}" for p in panels(doc)}
    for alert in (r.alert for r in rules()):
        assert any(alert in t for t in text.values()), f"no panel for alert {alert}"
    titles = " | ".join(p["title"] for p in panels(doc))
    for slo in ("latency SLO", "idempotency SLO", "Determinism"):
        assert slo in titles, slo


def test_no_overlapping_panels() -> None:
    taken: set[tuple[int, int]] = set()
    for p in panels(dashboard()):
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"])
                 for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & taken, f"{p['title']} overlaps another panel"
        taken |= cells


def test_docs_name_every_metric_and_alert() -> None:
    text = (REPO / "docs" / "metrics.md").read_text()
    for name in METRIC_NAMES:
        assert f"`{name}`" in text, name
    for rule in rules():
        assert f"| `{rule.alert}` | {rule.labels['severity']} |" in text, rule.alert
