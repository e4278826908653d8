"""The worked repair example of docs/snapshots.md runs as written and ends with verify OK."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from snapshot_support import clean_env

ROOT = Path(__file__).resolve().parents[2]


def test_worked_repair_example_runs(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "snapshots.md").read_text(encoding="utf-8")
    section = text[text.index("## Repair"):text.index("## How the importer reads")]
    script = re.search(r"```sh\n(.*?)```", section, re.S)
    assert script is not None
    commands = [line for line in script.group(1).splitlines()
                if line.strip() and not line.startswith("#")]
    env = clean_env(TMPDIR=str(tmp_path),
                    PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    codes = []
    for command in commands:
        wrapped = f"D=$(cat {tmp_path}/dir 2>/dev/null); {command}; echo \"$D\" > {tmp_path}/dir"
        result = subprocess.run(["bash", "-c", wrapped], cwd=ROOT, env=env, text=True,
                                capture_output=True, timeout=120, check=False)
        assert "Traceback" not in result.stderr
        codes.append((command.split("#")[0].strip(), result.returncode, result.stdout))
    verify_codes = [code for command, code, _ in codes if "snapshot verify" in command]
    assert verify_codes == [1, 0], codes
    assert all(code == 0 for command, code, _ in codes if "snapshot verify" not in command), codes
    assert "OK:" in codes[-1][2]
    quarantine = Path((tmp_path / "dir").read_text().strip()) / "quarantine"
    assert len(list(quarantine.iterdir())) == 3
