"""Save the engine state at a random cut, restore it in another process, run to the end: the
fills, orders, denials and equity curve (so the equity hash) equal the uninterrupted run's.

Random configurations: every built-in and example strategy, a strategy using every order
type, time in force and linked order (with and without save/load hooks: the second is
restored by re-running the feed), latency with jitter, fixed and stochastic slippage, a
volume cap, risk limits on and off, one and two symbols, chunk sizes from 1 bar up, cuts from
0 to the end. One long-lived worker process restores every state. CI runs a bounded number
of examples; ``WELTKLASSE_RESUME_EXAMPLES=N`` runs more.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.resume import STRATEGIES, Spec, run_to, run_whole

TESTS = Path(__file__).resolve().parents[1]
EXAMPLES = int(os.environ.get("WELTKLASSE_RESUME_EXAMPLES", "40"))


class Worker:
    """``python -m support.resume`` kept running: one request and one answer per line."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(TESTS), os.environ.get("PYTHONPATH", "")])}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "support.resume"], cwd=TESTS, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def resume(self, spec: Spec, state: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"spec": asdict(spec), "state": state}) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        assert "error" not in answer, answer.get("error")
        outputs: dict[str, Any] = answer["outputs"]
        return outputs

    def close(self) -> None:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    started = Worker()
    yield started
    started.close()


specs = st.builds(
    Spec,
    strategy=st.sampled_from(sorted(STRATEGIES)),
    symbols=st.sampled_from([1, 2]),
    chunk=st.sampled_from([1, 3, 7, 50, 400]),
    latency=st.booleans(),
    slippage=st.sampled_from(["none", "fixed", "stochastic"]),
    participation=st.booleans(),
    risk=st.booleans(),
    seed=st.integers(0, 2**32),
)


def joined(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {key: before[key] + after[key] for key in before}


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=specs, where=st.floats(0, 1))
def test_resumed_in_another_process_equals_uninterrupted(worker: Worker, spec: Spec,
                                                         where: float) -> None:
    whole = run_whole(spec)
    _engine, chunks = spec.build()
    cut = round(where * len(chunks))
    before, state = run_to(spec, cut)
    after = worker.resume(spec, state)
    assert joined(before, after) == whole


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
@pytest.mark.parametrize("cut", ["start", "middle", "end"])
def test_every_strategy_resumes_at_the_ends_and_inside_an_instant(
        worker: Worker, strategy: str, cut: str) -> None:
    # two symbols, one bar per step: the middle cut falls between two symbols' bars of an
    # instant, with close events still due
    spec = Spec(strategy, 2, 1, True, "stochastic", True, True, 5)
    whole = run_whole(spec)
    _engine, chunks = spec.build()
    k = {"start": 0, "middle": len(chunks) // 2 + 1, "end": len(chunks)}[cut]
    before, state = run_to(spec, k)
    if cut == "middle":
        assert state["closes"], "the cut must leave close events due"
    assert joined(before, worker.resume(spec, state)) == whole
    assert whole["fills"]
