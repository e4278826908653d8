"""docs/state-store.md: its Python example runs, and its worked repair example is what the
commands print."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from weltklassebot.risk.state import RiskState, RiskTransition
from weltklassebot.state.jsonl_store import JsonlStore, StoreConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "state-store.md"
T0 = 1_764_504_000_000_000_000
MINUTE = 60_000_000_000


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_python_example_runs() -> None:
    code = blocks("python")[0]  # the usage example; the record-format block is a formula
    namespace: dict[str, object] = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    store = namespace["store"]
    assert isinstance(store, JsonlStore)
    assert namespace["positions"] == {"BTC-USD": "0.5"}


def build_example(directory: Path) -> None:
    """The store of the worked example: four fills, a halt, five fills; small segments."""
    risk: dict[str, object] = {"state": "ACTIVE", "transitions": []}

    def snapshot() -> dict[str, object]:
        return {"risk": {**risk, "equity": 0, "peak_equity": 0}}

    config = StoreConfig(max_segment_bytes=600, max_segment_age_ns=None, retain_segments=10)
    store = JsonlStore.open(directory, config, snapshot)
    for i in range(4):
        store.append("fill", {"fill_id": i + 1, "qty": "0.5"}, T0 + i * MINUTE)
    halt = RiskTransition(
        ts_ns=T0 + 5 * MINUTE, from_state=RiskState.ACTIVE, to_state=RiskState.HALTED,
        reason="kill_switch", detail="operator halt", source="operator",
    )
    store.append("risk_transition", halt.to_payload(), T0 + 5 * MINUTE)
    risk.update(state="HALTED", transitions=[halt.to_payload()])
    for i in range(4, 9):
        store.append("fill", {"fill_id": i + 1, "qty": "0.5"}, T0 + i * MINUTE)
    store.close()
    first = directory / "segment-00000000000000000001.jsonl"
    data = bytearray(first.read_bytes())
    data[data.index(b'"qty":"0.5"') + 9] = ord("9")  # one byte of an old fill
    first.write_bytes(bytes(data))


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WELTKLASSE_LOG_LEVEL": "ERROR"}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=cwd, env=env, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=120, check=False,
    )


def test_worked_repair_example_prints_what_the_doc_shows(tmp_path: Path) -> None:
    (console,) = blocks("console")
    build_example(tmp_path / "state")

    verify = run(tmp_path, "state", "verify", "state")
    assert verify.returncode == 1
    shown_error = console.split("$ python -m cli state verify state\n")[1].split("\n$ ")[0]
    assert verify.stderr.strip() == " ".join(shown_error.split("\n"))

    repair = run(tmp_path, "state", "repair", "state", "--yes")
    assert repair.returncode == 0, repair.stderr
    shown_repair = console.split("$ python -m cli state repair state --yes\n")[1].split("\n$ ")[0]
    stamp = re.compile(r"\d{8}T\d{6}Z")
    assert stamp.sub("STAMP", repair.stdout.strip()) == stamp.sub("STAMP", shown_repair.strip())

    after = run(tmp_path, "state", "verify", "state")
    assert after.returncode == 0
    shown_tail = console.split("| tail -3\n")[1].split("\n```")[0].strip()
    tail = "\n".join(after.stdout.strip().splitlines()[-3:])
    assert stamp.sub("STAMP", tail) == stamp.sub("STAMP", shown_tail)
