"""The service's venv gets the runtime part of the lock: complete, whole entries, nothing else."""

from __future__ import annotations

import importlib.metadata as md
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from weltklassebot.service.runtime_lock import (
    LockError,
    canonical,
    parse_lock,
    runtime_names,
    runtime_subset,
)

REPO = Path(__file__).resolve().parents[2]
LOCK = (REPO / "requirements.lock").read_text(encoding="utf-8")
PYPROJECT = (REPO / "pyproject.toml").read_text(encoding="utf-8")

SMALL_PYPROJECT = """
[build-system]
requires = ["setuptools>=75"]
[project]
name = "x"
dependencies = ["Numpy>=2", "pydantic[email]>=2 ; python_version >= '3.11'"]
[project.optional-dependencies]
test = ["pytest"]
"""
SMALL_LOCK = """# generated
numpy==2.4.6 ; python_full_version < '3.12' \\
    --hash=sha256:aa
    # via
    #   x (pyproject.toml)
    #   pandas
numpy==2.5.5 ; python_full_version >= '3.12' \\
    --hash=sha256:bb
    # via x (pyproject.toml)
pandas==3.0 \\
    --hash=sha256:cc
    # via pytest
pydantic==2.14 \\
    --hash=sha256:dd
    # via x (pyproject.toml)
pydantic-core==2.50 \\
    --hash=sha256:ee
    # via pydantic
Typing_Extensions==4.16 \\
    --hash=sha256:ff
    # via
    #   pydantic
    #   pydantic-core
pytest==9.2 \\
    --hash=sha256:gg
    # via x (pyproject.toml)
setuptools==84 \\
    --hash=sha256:hh
    # via x (pyproject.toml)
"""


def test_the_closure_follows_the_via_lines_and_keeps_whole_entries() -> None:
    text, kept = runtime_subset(SMALL_LOCK, SMALL_PYPROJECT)
    assert kept == ["numpy", "pydantic", "pydantic-core", "setuptools", "typing-extensions"]
    # both marker variants of numpy, each with its own hash; pandas (needed only by a test
    # dependency) and pytest are left out
    for line in ("numpy==2.4.6 ; python_full_version < '3.12' \\", "--hash=sha256:aa",
                 "numpy==2.5.5 ; python_full_version >= '3.12' \\", "--hash=sha256:bb",
                 "Typing_Extensions==4.16 \\", "--hash=sha256:ff", "--hash=sha256:hh"):
        assert line in text.splitlines() or f"    {line}" in text.splitlines(), line
    assert "pandas" not in text.replace("#   pandas", "")
    assert "pytest==" not in text


def test_names_are_normalised_and_sources_are_not_packages() -> None:
    assert canonical("Typing_Extensions") == canonical("typing.extensions") == "typing-extensions"
    assert runtime_names(SMALL_PYPROJECT) == ["numpy", "pydantic", "setuptools"]
    pins = {p.name: p for p in parse_lock(SMALL_LOCK)}
    assert pins["typing-extensions"].via == ("pydantic", "pydantic-core")
    assert pins["pydantic"].via == ()  # only the project itself requires it


def test_a_lock_without_annotations_or_without_a_dependency_is_refused() -> None:
    bare = "numpy==2.4.6 \\\n    --hash=sha256:aa\n"
    with pytest.raises(LockError, match="no '# via' annotation for numpy"):
        runtime_subset(bare, SMALL_PYPROJECT)
    without_pydantic = SMALL_LOCK.replace("pydantic==2.14", "other==1")
    with pytest.raises(LockError, match="does not pin pydantic"):
        runtime_subset(without_pydantic, SMALL_PYPROJECT)
    with pytest.raises(LockError, match="pins nothing"):
        runtime_subset("# empty\n", SMALL_PYPROJECT)


def test_the_real_lock_gives_a_complete_runtime_closure_without_the_extras() -> None:
    _, kept = runtime_subset(LOCK, PYPROJECT)
    assert set(runtime_names(PYPROJECT)) <= set(kept)
    for extra in ("ray", "pytest", "mypy", "hypothesis", "ta-lib", "pandas", "scipy",
                  "backtesting", "vectorbt", "matplotlib", "ipython"):
        assert extra not in kept, extra
    # the oracle: every requirement of every kept package, as its installed metadata states it
    # for this interpreter, is kept too
    for name in kept:
        for spec in md.requires(name) or []:
            requirement = Requirement(spec)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                assert canonical(requirement.name) in kept, f"{name} needs {requirement.name}"
