"""Facts about the software running a job, for manifests: versions and the git commit."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from weltklassebot import __version__

KEY_DEPENDENCIES = ("numpy", "pyarrow", "pydantic", "click", "rich", "structlog",
                    "prometheus-client")


def dependency_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0], "weltklassebot": __version__}
    for name in KEY_DEPENDENCIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def git_commit() -> str | None:
    """The commit of the checkout the package runs from, when it runs from one."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / ".git").exists():
            try:
                done = subprocess.run(
                    ["git", "-C", str(parent), "rev-parse", "HEAD"],
                    capture_output=True, text=True, timeout=5, check=False,
                )
            except (OSError, subprocess.SubprocessError):
                return None
            commit = done.stdout.strip()
            if done.returncode != 0 or not commit:
                return None
            dirty = subprocess.run(
                ["git", "-C", str(parent), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True, text=True, timeout=5, check=False,
            ).stdout.strip()
            return commit + ("-dirty" if dirty else "")
    return None


def platform_facts() -> dict[str, str]:
    return {"system": platform.system(), "machine": platform.machine(),
            "implementation": platform.python_implementation()}
