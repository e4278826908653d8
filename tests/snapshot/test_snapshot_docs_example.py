"""The worked repair example of docs/snapshots.md runs as written and ends with verify OK."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from .snapshot_support import clean_env

ROOT = Path(__file__).resolve().parents[2]


def test_worked_repair_example_runs(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "snapshots.md").read_text(encoding="utf-8")
    section = text[text.index("## Repair"):text.index("## How the importer reads")]
    script = re.search(r"```sh\n(.*?)```\n\n```\n(.*?)```", section, re.S)
    assert script is not None
    commands = [line for line in script.group(1).splitlines()
                if line.strip() and not line.startswith("#")]
    env = clean_env(TMPDIR=str(tmp_path),
                    PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    codes = []
    printed: list[list[str]] = []  # each command's lines
    for command in commands:
        wrapped = f"D=$(cat {tmp_path}/dir 2>/dev/null); {command}; echo \"$D\" > {tmp_path}/dir"
        result = subprocess.run(["bash", "-c", wrapped], cwd=ROOT, env=env, text=True,
                                capture_output=True, timeout=120, check=False)
        assert "Traceback" not in result.stderr
        codes.append((command.split("#")[0].strip(), result.returncode, result.stdout))
        printed.append(result.stdout.splitlines() + result.stderr.splitlines())
    verify_codes = [code for command, code, _ in codes if "snapshot verify" in command]
    assert verify_codes == [1, 0], codes
    assert all(code == 0 for command, code, _ in codes if "snapshot verify" not in command), codes
    assert "OK:" in codes[-1][2]
    # The output shown below the commands, command after command (stdout and stderr of one
    # command in either order); times and the parts shortened to ... vary.
    wild = re.compile(r"(\.\.\.|\d{8}T\d{6}\.\d{6}Z)")
    at = 0
    for shown in script.group(2).splitlines():
        pattern = re.compile("".join(".*?" if wild.fullmatch(part) else re.escape(part)
                                     for part in wild.split(shown)))
        later = [i for i in range(at, len(printed))
                 if any(pattern.fullmatch(line) for line in printed[i])]
        assert later, f"the page shows {shown!r}; the commands printed {printed[at:]}"
        at = later[0]
    quarantine = Path((tmp_path / "dir").read_text().strip()) / "quarantine"
    assert len(list(quarantine.iterdir())) == 3
