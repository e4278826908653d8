"""The layer contract, checked on every test run (DESIGN: one pure core, edges around it).

    cli -> sweep -> fastpath -> runs -> engine -> strategy | risk -> portfolio | indicators
        -> model -> core

A unit may import the units below it, never one above it; ``strategy`` and ``risk`` are
siblings and do not import each other. The edges (``data``, ``state``, ``config``, ``logs``,
``filelock``, ``fsutil``, ``service``) touch the world: the core never imports them, they may
import the core and each other, and neither they nor the core import ``runs`` or ``cli``.
``errors`` and the package root (the version) are shared by all and import nothing of ours.

Every import counts, including those inside functions and under ``if TYPE_CHECKING:``: a
type-only import is still a dependency, and a cycle hidden behind one is still a cycle; the core
has no type-only imports of its own modules at all. Written
with ``ast`` rather than import-linter so the contract needs no extra dependency and names the
file and line of each offending import.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from architecture.imports import cycles, imports_of, read_sources, unit_of

SRC = Path(__file__).resolve().parents[2] / "src" / "weltklassebot"

CORE_LAYERS: tuple[tuple[str, ...], ...] = (
    ("engine",), ("strategy", "risk"), ("portfolio", "indicators"), ("model",), ("core",),
)
ORCHESTRATION: tuple[str, ...] = ("sweep", "fastpath", "runs")
"""Units that put runs together, top first: each may import those after it, never before."""
CORE_RANK = {unit: rank for rank, units in enumerate(CORE_LAYERS) for unit in units}
EDGES = frozenset({"data", "state", "config", "logs", "filelock", "fsutil", "service"})
SHARED = frozenset({"", "errors"})
CLASSIFIED = frozenset({"cli", *ORCHESTRATION}) | EDGES | SHARED | frozenset(CORE_RANK)


def rule_broken(importer: str, target: str) -> str | None:
    """Why unit ``importer`` may not import unit ``target``; ``None`` when it may."""
    for unit in (importer, target):
        if unit not in CLASSIFIED:
            return f"unit {unit!r} has no place in the layers: add it to tests/architecture"
    if importer == target or target in SHARED:
        return None
    if importer in SHARED:
        return "shared modules (errors, the package root) import nothing of ours"
    if importer == "cli":
        return None
    if target == "cli":
        return "nothing imports the CLI"
    if importer in ORCHESTRATION and target in ORCHESTRATION:
        if ORCHESTRATION.index(target) > ORCHESTRATION.index(importer):
            return None
        return f"{importer} may not import {target}: cli -> {' -> '.join(ORCHESTRATION)}"
    if importer in ORCHESTRATION:
        return None
    if target in ORCHESTRATION:
        return f"only the CLI and the units above it import {target}"
    if importer in EDGES:
        return None
    if target in EDGES:
        return f"the core ({importer}) does not import the edge {target}"
    if CORE_RANK[target] == CORE_RANK[importer]:
        return f"{importer} and {target} are siblings and do not import each other"
    if CORE_RANK[target] < CORE_RANK[importer]:
        return f"{importer} sits below {target} and may not import it"
    return None


def violations(sources: Mapping[str, tuple[str, str]]) -> list[str]:
    found = []
    for imp in imports_of(sources):
        why = rule_broken(unit_of(imp.importer), unit_of(imp.target))
        if why is None and imp.type_only and unit_of(imp.importer) in CORE_RANK:
            why = ("the core imports nothing of ours under TYPE_CHECKING: a real dependency is "
                   "imported, a hidden one (a cycle, a concrete class) is designed away")
        if why is not None:
            found.append(f"{imp.path}:{imp.line}: {imp.importer} imports {imp.target}: {why}")
    return found


def core_cycles(sources: Mapping[str, tuple[str, str]]) -> list[list[str]]:
    edges = [(i.importer, i.target) for i in imports_of(sources)
             if unit_of(i.importer) in CORE_RANK and unit_of(i.target) in CORE_RANK]
    return cycles(edges)


def test_every_unit_has_a_place_in_the_layers() -> None:
    units = {unit_of(module) for module in read_sources(SRC)}
    assert units <= CLASSIFIED, f"unclassified: {sorted(units - CLASSIFIED)}"
    assert set(CORE_RANK) <= units, "a core layer named here does not exist any more"


def test_imports_follow_the_layers() -> None:
    found = violations(read_sources(SRC))
    assert not found, "layer contract broken:\n" + "\n".join(found)


def test_the_core_has_no_import_cycle() -> None:
    found = core_cycles(read_sources(SRC))
    assert not found, f"import cycles in the core (TYPE_CHECKING imports included): {found}"


def _fake(modules: dict[str, str]) -> dict[str, tuple[str, str]]:
    out = {}
    for name, text in modules.items():
        leaf = "__init__" if name.count(".") == 1 else name.rsplit(".", 1)[1]
        out[name] = (f"src/{name.replace('.', '/')}/{leaf}.py" if leaf == "__init__"
                     else f"src/{name.replace('.', '/')}.py", text)
    return out


def test_the_checker_finds_each_kind_of_breach() -> None:
    """The contract can fail: type-only, function-level, relative and sibling imports."""
    sources = _fake({
        "weltklassebot.engine": "",
        "weltklassebot.engine.loop": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from weltklassebot.data.reader import SnapshotFile\n"
            "from weltklassebot.engine import gate\n"),
        "weltklassebot.engine.gate": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from weltklassebot.engine.loop import Engine\n"),
        "weltklassebot.risk.rules": "def f():\n    import weltklassebot.strategy.base\n",
        "weltklassebot.portfolio.ledger": "from ..engine import loop\n",
        "weltklassebot.model.records": "from weltklassebot import state\n",
        "weltklassebot.state": "",
        "weltklassebot.data.reader": "from weltklassebot.runs import backtest\n",
        "weltklassebot.runs.backtest": "from weltklassebot.cli import main\n",
        "weltklassebot.errors": "from weltklassebot.core import clock\n",
        "weltklassebot.metrics": "",
    })
    found = "\n".join(violations(sources))
    for expected in (
        "loop.py:3: weltklassebot.engine.loop imports weltklassebot.data.reader: the core",
        "rules.py:2: weltklassebot.risk.rules imports weltklassebot.strategy.base: risk and "
        "strategy are siblings",
        "ledger.py:1: weltklassebot.portfolio.ledger imports weltklassebot.engine.loop: "
        "portfolio sits below engine",
        "records.py:1: weltklassebot.model.records imports weltklassebot.state: the core (model)"
        " does not import the edge state",
        "reader.py:1: weltklassebot.data.reader imports weltklassebot.runs.backtest: only the CLI",
        "backtest.py:1: weltklassebot.runs.backtest imports weltklassebot.cli: nothing",
        "errors/__init__.py:1: weltklassebot.errors imports weltklassebot.core: shared modules",
    ):
        assert expected in found, f"{expected!r} not reported in:\n{found}"
    assert "unit 'metrics' has no place" not in found  # only imports are judged here...
    assert rule_broken("metrics", "core") is not None  # ...and unknown units are refused
    assert "gate.py:3: weltklassebot.engine.gate imports weltklassebot.engine.loop: the core "\
        "imports nothing of ours under TYPE_CHECKING" in found
    assert core_cycles(sources) == [["weltklassebot.engine.gate", "weltklassebot.engine.loop"]]


def test_import_resolution() -> None:
    sources = _fake({
        "weltklassebot.risk": "from weltklassebot.risk.engine import RiskEngine\n",
        "weltklassebot.risk.engine": "from . import rules\nfrom .rules import x\n",
        "weltklassebot.risk.rules": "import os\nfrom weltklassebot.risk import engine as e\n",
    })
    got = sorted((i.importer, i.target, i.line) for i in imports_of(sources))
    assert got == [
        ("weltklassebot.risk", "weltklassebot.risk.engine", 1),
        ("weltklassebot.risk.engine", "weltklassebot.risk.rules", 1),
        ("weltklassebot.risk.engine", "weltklassebot.risk.rules", 2),
        ("weltklassebot.risk.rules", "weltklassebot.risk.engine", 2),
    ]
