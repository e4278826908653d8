"""Run ``python -m cli`` in a subprocess, as a user would, with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The current environment without any ``WELTKLASSE_*`` setting (tests stay isolated)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WELTKLASSE_")}
    env["PYTHONHASHSEED"] = "0"
    env.pop("PYTHONPATH", None)
    if extra:
        env.update(extra)
    return env


def run_cli(*args: str | Path, cwd: Path = REPO, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *(str(a) for a in args)],
        cwd=cwd, env=cli_env(env), capture_output=True, text=True, timeout=timeout,
        check=False,
    )


def leftovers(directory: Path) -> list[str]:
    """Anything in ``directory`` that a failed run may have left (run or temporary dirs)."""
    if not directory.exists():
        return []
    return sorted(p.name for p in directory.iterdir()
                  if p.name.startswith(".incomplete") or (p / "manifest.json").exists()
                  or (p / "summary.json").exists())
