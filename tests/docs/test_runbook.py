"""The project's runbook covers what operators rely on: a playbook section for every alert the
rules define (the alerts link to it by anchor), the runbook's commands verbatim, and only
sub-commands that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from support.cli import run_cli

REPO = Path(__file__).resolve().parents[2]
RUNBOOK = REPO / "docs" / "RUNBOOK.md"
RULES = REPO / "ops" / "alerts" / "weltklassebot.rules.yml"


def _sections() -> set[str]:
    return {m[1] for m in re.finditer(r"^### (\S+)\s*$", RUNBOOK.read_text(), re.M)}


def test_every_alert_has_a_playbook_section_its_link_points_to() -> None:
    rules = RULES.read_text()
    alerts = re.findall(r"^\s*- alert: (\S+)", rules, re.M)
    links = re.findall(r"runbook_url: (\S+)", rules)
    assert len(alerts) == len(links) >= 3
    sections = _sections()
    for alert, link in zip(alerts, links, strict=True):
        assert alert in sections, f"docs/RUNBOOK.md has no '### {alert}' section"
        assert link == f"docs/RUNBOOK.md#{alert.lower()}", (alert, link)
    for name in ("HighStageLatency", "RiskCooldownTooLong", "DrawdownNearLimit"):
        assert name in alerts


def test_the_runbooks_commands_are_there_verbatim() -> None:
    text = RUNBOOK.read_text()
    for command in ("systemctl start weltklassebot", "systemctl status weltklassebot",
                    "systemctl stop weltklassebot", "systemctl restart weltklassebot",
                    "curl -sf http://localhost:${WELTKLASSE_METRICS_PORT:-9000}/metrics | head",
                    "python -m cli backtest --seed 123 --data-snapshot "
                    "/var/lib/weltklassebot/snapshots/latest.parquet"):
        assert command in text, command


@pytest.mark.parametrize("words", sorted({
    tuple(m[1].split()) for m in re.finditer(
        r"python -m cli ((?:[a-z]+)(?: (?:status|halt|resume|verify|list|promote|rollback|"
        r"install|uninstall))?)", RUNBOOK.read_text())}))
def test_every_sub_command_the_runbook_names_exists(words: tuple[str, ...]) -> None:
    done = run_cli(*words, "--help")
    assert done.returncode == 0, done.stderr
