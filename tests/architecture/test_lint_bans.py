"""The core reads no wall clock, environment or global random state: ruff's banned-api list
(pyproject.toml) enforces it, and this test makes sure the bans bite where they must.

Each snippet is linted as if it were a file at a core path (through ``--stdin-filename``, so no
file is written into the source tree) and must be refused with TID251; at the edges that are
allowed the clock or the environment, the same snippets pass.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Banned name -> a snippet that uses it (in the spellings people write).
FORBIDDEN = {
    "time.time": "import time\nnow = time.time()\n",
    "time.time_ns": "import time\nnow = time.time_ns()\n",
    "time.monotonic": "import time\nnow = time.monotonic()\n",
    "time.monotonic_ns": "from time import monotonic_ns\nnow = monotonic_ns()\n",
    "time.perf_counter": "import time\nnow = time.perf_counter()\n",
    "time.perf_counter_ns": "import time as t\nnow = t.perf_counter_ns()\n",
    "datetime.datetime.now": "from datetime import datetime\nnow = datetime.now()\n",
    "os.environ": "import os\nhome = os.environ['HOME']\n",
    "os.getenv": "import os\nhome = os.getenv('HOME')\n",
    "random": "import random\nx = random.random()\n",
    "numpy.random": "import numpy as np\nx = np.random.default_rng()\n",
}
_NAME = re.compile(r"^`([^`]+)` is banned")

CORE_PATHS = [
    "src/weltklassebot/engine/backtest.py",
    "src/weltklassebot/engine/new_stage.py",
    "src/weltklassebot/strategy/base.py",
    "src/weltklassebot/risk/engine.py",
    "src/weltklassebot/portfolio/ledger.py",
    "src/weltklassebot/model/records.py",
    "src/weltklassebot/core/timeutil.py",
]


def banned(snippet: str, path: str) -> list[str]:
    """TID251 messages of ruff on ``snippet`` linted as ``path`` with the project's config."""
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "json",
         "--select", "TID251", "--stdin-filename", path, "-"],
        input=snippet, cwd=REPO, capture_output=True, text=True, check=False, timeout=60,
    )
    assert done.returncode in (0, 1), done.stderr
    return [f["message"] for f in json.loads(done.stdout) if f["code"] == "TID251"]


@pytest.mark.parametrize("path", CORE_PATHS)
def test_the_core_may_not_read_clock_environment_or_global_random(path: str) -> None:
    found = {m.group(1) for m in map(_NAME.match, banned("".join(FORBIDDEN.values()), path))
             if m is not None}
    missed = sorted(set(FORBIDDEN) - found)
    assert not missed, f"{path}: ruff lets these through: {missed}"
    assert not banned("import os\nsep = os.sep\n", path), "an allowed use is refused"


def test_a_wall_clock_read_added_to_the_engine_fails_the_lint() -> None:
    found = banned("import time\n\n\ndef stamp() -> float:\n    return time.time()\n",
                   "src/weltklassebot/engine/backtest.py")
    assert found == ["`time.time` is banned: the core reads no wall clock: take time from the "
                     "injected Clock"]


@pytest.mark.parametrize(("path", "names"), [
    ("src/weltklassebot/cli/main.py", ["time.time", "os.environ", "time.perf_counter"]),
    ("src/weltklassebot/service/operator.py", ["time.monotonic", "os.environ"]),
    ("src/weltklassebot/runs/backtest.py", ["time.time_ns", "time.perf_counter"]),
    ("src/weltklassebot/engine/probe.py", ["time.perf_counter_ns"]),
])
def test_edges_that_need_the_clock_or_environment_may(path: str, names: list[str]) -> None:
    refused = [name for name in names if banned(FORBIDDEN[name], path)]
    assert not refused, f"{path}: refused {refused}"


def test_mypy_checks_every_test_directory_and_the_examples() -> None:
    """The test command's mypy run covers what pyproject.toml lists: a new test directory or
    the examples left out would go unchecked without anyone noticing."""
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]["files"])
    wanted = {f"tests/{d.name}" for d in (REPO / "tests").iterdir()
              if d.is_dir() and any(d.glob("*.py"))} | {"examples", "src"}
    assert wanted <= listed, f"add to [tool.mypy] files: {sorted(wanted - listed)}"
