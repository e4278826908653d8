"""Shared helpers of the ops tests: external tools, and the rule and dashboard files read as data.

The rule files are YAML and the test environment has no YAML library, so ``rules()`` reads the
small, regular subset they are written in (one ``- alert:`` item per rule, ``expr:`` on one line or
as a ``|`` block, ``for:``, ``labels:``, ``annotations:`` with one-line or ``>-`` folded values). It
is strict: anything it does not understand fails the test, and ``test_alert_rules`` checks that it
found as many rules as ``promtool check rules`` did.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from support.cli import REPO

OPS = REPO / "ops"
ALERTS_DIR = OPS / "alerts"
RULE_FILE = ALERTS_DIR / "weltklassebot.rules.yml"
RULE_TESTS = sorted((ALERTS_DIR / "tests").glob("*.yml"))
DASHBOARD = OPS / "grafana" / "weltklassebot.json"


def tool(name: str) -> str:
    """The path of an external tool; a missing one fails under CI and skips elsewhere."""
    found = shutil.which(name)
    if found:
        return found
    message = (f"{name} is not installed (Debian/Ubuntu: apt-get install prometheus, which brings "
               f"prometheus and promtool)")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; CI must run this test")
    pytest.skip(message)


@dataclass
class Rule:
    alert: str
    expr: str = ""
    for_: str = "0s"
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _block(lines: list[str], start: int, indent: int) -> tuple[list[str], int]:
    """The lines after ``start`` indented deeper than ``indent`` (blank lines kept)."""
    out = []
    i = start
    while i < len(lines):
        line = lines[i]
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        out.append(line.strip())
        i += 1
    while out and not out[-1]:
        out.pop()
    return out, i


def rules(path: Path = RULE_FILE) -> list[Rule]:
    lines = [ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#")]
    found: list[Rule] = []
    section: dict[str, str] | None = None
    section_indent = -1
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        i += 1
        if not stripped:
            continue
        if section is not None and indent <= section_indent:
            section = None
        m = re.fullmatch(r"(- )?([A-Za-z_]+):\s*(.*)", stripped)
        if m is None:
            raise AssertionError(f"{path.name}: cannot read line {line!r}")
        dash, key, value = m.groups()
        key_indent = indent + (2 if dash else 0)
        if key in ("groups", "rules"):
            continue
        if key == "name" and dash:
            continue
        if key == "alert":
            found.append(Rule(alert=value.strip()))
            section = None
            continue
        if not found:
            raise AssertionError(f"{path.name}: {key!r} outside an alert rule")
        rule = found[-1]
        if value in ("|", ">-", ">"):
            body, i = _block(lines, i, key_indent)
            text = "\n".join(body) if value == "|" else " ".join(b for b in body if b)
        else:
            text = _unquote(value)
        if section is not None:
            section[key] = text
        elif key == "expr":
            rule.expr = text
        elif key == "for":
            rule.for_ = text
        elif key in ("labels", "annotations") and not value:
            section = rule.labels if key == "labels" else rule.annotations
            section_indent = key_indent
        else:
            raise AssertionError(f"{path.name}: unexpected key {key!r} in rule {rule.alert}")
    return found


def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def panels(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in doc["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def dashboard_queries(doc: dict[str, Any]) -> list[str]:
    queries = [t["expr"] for p in panels(doc) for t in p.get("targets", []) if "expr" in t]
    for var in doc["templating"]["list"]:
        if var["type"] == "query":
            q = var["query"]
            text = q["query"] if isinstance(q, dict) else q
            # Grafana's label_values(SELECTOR, LABEL): only the selector is PromQL.
            m = re.fullmatch(r"label_values\((.*),\s*\w+\)", text.strip())
            queries.append(m.group(1) if m else text)
    return queries


# -- metric names in PromQL ------------------------------------------------------------------

_KEYWORDS = frozenset({
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "inf", "nan",
})
_TOKEN = re.compile(
    r'"(?:\\.|[^"\\])*"'            # string literal
    r"|'(?:\\.|[^'\\])*'"
    r"|\{[^}]*\}"                    # label matchers
    r"|\[[^\]]*\]"                   # range or subquery
    r"|(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"  # label lists
    r"|\$\{?\w+\}?"                  # Grafana variables
    r"|(?:\d+(?:ms|[smhdwy]))+\b"     # durations (offset 5m)
    r"|\d+(?:\.\d*)?(?:e[+-]?\d+)?"  # numbers
    r"|[A-Za-z_:][A-Za-z0-9_:]*(?=\s*\()"  # function names
    r"|(?:sum|min|max|avg|group|stddev|stdvar|count|count_values|bottomk|topk|quantile)"
    r"(?=\s*(?:by|without)\s*\()"  # aggregation with its grouping first
    r"|(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)",
    re.IGNORECASE,
)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (``label_values(up{...}, x)`` counts ``up``)."""
    names = set()
    for m in _TOKEN.finditer(expr):
        name = m.group("name")
        if name and name.lower() not in _KEYWORDS:
            names.add(name)
    return names
