"""Reads the package's own imports with ``ast``: every import statement, at module level, inside
functions and under ``if TYPE_CHECKING:`` alike (a type-only import still couples the layers)."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "weltklassebot"


@dataclass(frozen=True)
class Import:
    """``importer`` imports ``target`` at ``path:line`` (module names, dotted); ``type_only``
    when the import sits under ``if TYPE_CHECKING:``."""

    importer: str
    target: str
    path: str
    line: int
    type_only: bool = False


def module_name(root: Path, path: Path) -> str:
    """``src/weltklassebot/engine/backtest.py`` -> ``weltklassebot.engine.backtest``."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def read_sources(root: Path) -> dict[str, tuple[str, str]]:
    """Module name -> (path shown in messages, source text) for every module under ``root``."""
    return {module_name(root, p): (str(p.relative_to(root.parent.parent)), p.read_text("utf-8"))
            for p in sorted(root.rglob("*.py"))}


def imports_of(sources: Mapping[str, tuple[str, str]]) -> Iterator[Import]:
    """Every import of a ``weltklassebot`` module, resolved to the module it names.

    ``from weltklassebot.x import y`` names ``weltklassebot.x.y`` when that is a module, else
    ``weltklassebot.x``; relative imports are resolved against the importer's package.
    """
    for importer, (path, text) in sources.items():
        is_package = path.endswith("__init__.py")
        tree = ast.parse(text, filename=path)
        type_only = {id(inner) for node in ast.walk(tree)
                     if isinstance(node, ast.If) and _is_type_checking(node.test)
                     for stmt in node.body for inner in ast.walk(stmt)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(importer, is_package, node.module, node.level)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in sources else base
                           for a in node.names]
            else:
                continue
            for target in dict.fromkeys(targets):
                if target == PACKAGE or target.startswith(PACKAGE + "."):
                    yield Import(importer, target, path, node.lineno, id(node) in type_only)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _absolute(importer: str, is_package: bool, module: str | None, level: int) -> str:
    if level == 0:
        return module or ""
    parts = importer.split(".")
    if not is_package:
        parts.pop()
    parts = parts[: len(parts) - (level - 1)]
    return ".".join([*parts, module] if module else parts)


def unit_of(module: str) -> str:
    """The top-level unit a module belongs to: ``weltklassebot.risk.engine`` -> ``risk``; the
    package root itself is ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def cycles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (import cycles), sorted."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)
