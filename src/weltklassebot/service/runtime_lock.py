"""The part of ``requirements.lock`` the service needs: the runtime dependencies and theirs.

The lock pins every dependency group in one file (runtime, dev, test, bench, ray) so that one
hashed set is valid everywhere. A production venv needs only ``[project].dependencies`` and what
they pull in; the rest (Ray, the test oracles, mypy, pytest, backtesting.py and their trees) is
hundreds of megabytes of code the service never imports. The lock's ``# via`` annotations (written
by ``uv pip compile``) say which packages require each pin, so the closure is read from the lock
itself: a pin is kept when a kept package requires it, starting from the project's own runtime
dependencies. Every kept entry is copied whole (version, environment marker, hashes), so pip still
installs with ``--require-hashes`` and refuses a dependency the subset lacks.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass

_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")
_VIA_ONE = re.compile(r"^\s*#\s*via\s+(\S.*)$")
_VIA_HEAD = re.compile(r"^\s*#\s*via\s*$")
_VIA_MORE = re.compile(r"^\s*#\s{2,}(\S.*)$")


class LockError(ValueError):
    """The lock cannot give the runtime subset (the message names what to do)."""


@dataclass(frozen=True, slots=True)
class Pin:
    """One entry of the lock: its package name, the lines as written, who requires it."""

    name: str
    text: str
    via: tuple[str, ...]


def canonical(name: str) -> str:
    """PEP 503 normalised name: ``Typing_Extensions`` and ``typing-extensions`` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_names(pyproject: str) -> list[str]:
    """The canonical names of ``[project].dependencies`` and ``[build-system].requires``.

    The build requirements are included because the package itself is installed into the venv
    without build isolation (no index access beyond the lock). Extras and markers are ignored.
    """
    toml = tomllib.loads(pyproject)
    specs = [*toml.get("project", {}).get("dependencies", []),
             *toml.get("build-system", {}).get("requires", [])]
    names = []
    for spec in specs:
        match = _NAME.match(spec.strip())
        if match is None:
            raise LockError(f"pyproject.toml: cannot read the dependency {spec!r}")
        names.append(canonical(match[1]))
    return names


def parse_lock(text: str) -> list[Pin]:
    """The lock's entries in file order; each keeps its own lines and ``# via`` parents."""
    pins: list[Pin] = []
    lines: list[str] = []
    name = ""

    def flush() -> None:
        if name:
            pins.append(Pin(name, "\n".join(lines) + "\n", _via(lines)))

    for line in text.splitlines():
        match = _NAME.match(line)
        if match is not None:
            flush()
            name, lines = canonical(match[1]), [line]
        elif name:
            lines.append(line)
    flush()
    return pins


def _via(lines: list[str]) -> tuple[str, ...]:
    parents: list[str] = []
    listing = False
    for line in lines:
        one = _VIA_ONE.match(line)
        if one is not None:
            parents.append(one[1])
            listing = False
        elif _VIA_HEAD.match(line):
            listing = True
        elif listing and (more := _VIA_MORE.match(line)) is not None:
            parents.append(more[1])
        elif not line.lstrip().startswith("#"):
            listing = False
    # "weltklassebot (pyproject.toml)" and "-r requirements.in" name a source, not a package
    return tuple(canonical(p) for p in parents if " (" not in p and not p.startswith("-"))


def runtime_subset(lock: str, pyproject: str) -> tuple[str, list[str]]:
    """The lock text restricted to the runtime closure, and the kept package names (sorted).

    Raises :class:`LockError` when the lock lacks ``# via`` annotations or a runtime dependency.
    """
    pins = parse_lock(lock)
    if not pins:
        raise LockError("requirements.lock pins nothing: regenerate it with the command in its "
                        "header")
    missing_via = [p.name for p in pins if not p.via and "# via" not in p.text]
    if missing_via:
        raise LockError(
            f"requirements.lock has no '# via' annotation for {', '.join(missing_via[:5])}: "
            "regenerate it with the command in its header (annotations on)")
    wanted = set(runtime_names(pyproject))
    absent = sorted(wanted - {p.name for p in pins})
    if absent:
        raise LockError(f"requirements.lock does not pin {', '.join(absent)}, which "
                        "pyproject.toml's dependencies or build need: regenerate it with the "
                        "command in its header")
    kept = set(wanted)
    grew = True
    while grew:  # a fixed point: a pin is kept when any package that requires it is kept
        grew = False
        for pin in pins:
            if pin.name not in kept and kept.intersection(pin.via):
                kept.add(pin.name)
                grew = True
    header = ("# The runtime part of requirements.lock (the project's dependencies and theirs),\n"
              "# selected by weltklassebot's service install from the lock's '# via' lines.\n")
    text = header + "".join(p.text for p in pins if p.name in kept)
    return text, sorted(kept)
