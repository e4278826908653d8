"""The alert rules: promtool accepts them and their unit tests pass; DESIGN 7's three alerts are
there as specified; every alert is documented, linked to its playbook and unit-tested both ways;
and the unit tests pin the thresholds (a rule with a moved threshold fails them)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from support.cli import REPO

from .tools import ALERTS_DIR, RULE_FILE, RULE_TESTS, Rule, rules, tool

DESIGN_ALERTS = {"HighStageLatency": "page", "RiskCooldownTooLong": "warn",
                 "DrawdownNearLimit": "warn"}


def by_name() -> dict[str, Rule]:
    found = rules()
    names = [r.alert for r in found]
    assert len(names) == len(set(names)), f"duplicate alert names: {names}"
    return {r.alert: r for r in found}


def promtool(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("promtool"), *(str(a) for a in args)], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)


def test_promtool_check_rules() -> None:
    proc = promtool("check", "rules", RULE_FILE.relative_to(REPO))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    m = re.search(r"SUCCESS: (\d+) rules found", proc.stdout)
    assert m is not None, proc.stdout
    # the file reader of these tests saw every rule promtool saw
    assert int(m.group(1)) == len(rules())


def test_promtool_test_rules() -> None:
    assert len(RULE_TESTS) >= 3
    proc = promtool("test", "rules", *(p.relative_to(REPO) for p in RULE_TESTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(RULE_TESTS)


def test_design_alerts() -> None:
    alerts = by_name()
    for name, severity in DESIGN_ALERTS.items():
        assert alerts[name].labels["severity"] == severity
    latency = alerts["HighStageLatency"]
    assert latency.for_ == "5m"
    expr = " ".join(latency.expr.split())
    assert expr.startswith("histogram_quantile(0.95,")
    assert "rate(stage_latency_seconds_bucket[5m])" in expr
    assert re.search(r"by \([^)]*\ble\b[^)]*\)", expr)
    assert re.search(r"by \([^)]*\bstage\b[^)]*\)", expr)
    assert expr.endswith("> 0.25")
    cool = alerts["RiskCooldownTooLong"]
    assert cool.for_ == "30m"
    assert cool.expr == 'risk_state{state="COOL"} == 1'
    drawdown = alerts["DrawdownNearLimit"]
    assert drawdown.for_ == "10m"
    assert drawdown.expr == "drawdown_ratio > on(job, instance) (0.9 * drawdown_cap_ratio)"


def test_every_alert_documented_and_linked() -> None:
    metrics_doc = (REPO / "docs" / "metrics.md").read_text()
    for rule in rules():
        assert rule.labels.get("severity") in ("page", "warn"), rule.alert
        assert rule.annotations.get("summary"), rule.alert
        assert len(rule.annotations.get("description", "")) > 40, rule.alert
        # the playbook is the runbook section named after the alert
        assert rule.annotations["runbook_url"] == f"docs/RUNBOOK.md#{rule.alert.lower()}"
        assert f"`{rule.alert}`" in metrics_doc, f"{rule.alert} missing from docs/metrics.md"


def test_every_alert_unit_tested_firing_and_silent() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TESTS:
        text = path.read_text()
        assert "- ../weltklassebot.rules.yml" in text, path.name
        for m in re.finditer(r"alertname: (\w+)\n\s*exp_alerts:(.*)", text):
            (silent if m.group(2).strip().startswith("[]") else firing).add(m.group(1))
    names = set(by_name())
    assert firing == names, f"never shown firing: {names - firing}"
    assert silent == names, f"never shown silent: {names - silent}"


# A moved threshold or duration must break the unit tests: they pin each edge.
MUTATIONS = [
    ("0.25 histogram bound", ") > 0.25", ") > 0.3"),
    ("latency for", "for: 5m\n        labels:\n          severity: page",
     "for: 4m\n        labels:\n          severity: page"),
    ("cooldown for", "for: 30m", "for: 20m"),
    ("drawdown factor", "(0.9 * drawdown_cap_ratio)", "(0.8 * drawdown_cap_ratio)"),
    ("drawdown for", "for: 10m\n        labels:\n          severity: warn\n        annotations:\n"
     "          summary: \"Drawdown", "for: 5m\n        labels:\n          severity: warn\n"
     "        annotations:\n          summary: \"Drawdown"),
    ("disk threshold", "< 1073741824", "<= 1073741824"),
    ("duplicates now", "duplicate_fills_total > 0\n", "duplicate_fills_total > 5\n"),
    ("duplicates 1h", "increase(duplicate_fills_total[1h]) > 0",
     "increase(duplicate_fills_total[1h]) > 5"),
    ("down", 'up{job="weltklassebot"} == 0', 'up{job="weltklassebot"} == 2'),
    ("halted", 'risk_state{state="HALTED"} == 1', 'risk_state{state="HALTED"} == 0'),
    ("snapshots", '{snapshot_sha256!=""}', ""),
]


@pytest.mark.parametrize(("what", "old", "new"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_unit_tests_catch_a_moved_threshold(tmp_path: Path, what: str, old: str,
                                            new: str) -> None:
    exe = tool("promtool")
    text = RULE_FILE.read_text()
    assert text.count(old) == 1, f"{what}: {old!r} not found once in the rule file"
    (tmp_path / RULE_FILE.name).write_text(text.replace(old, new))
    shutil.copytree(ALERTS_DIR / "tests", tmp_path / "tests")
    proc = subprocess.run([exe, "test", "rules", *sorted(p.name for p in RULE_TESTS)],
                          cwd=tmp_path / "tests", capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode != 0, f"{what}: the unit tests still pass with {new!r}"
    assert "FAILED" in proc.stdout + proc.stderr
