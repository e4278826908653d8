"""The run's collector spacing: set inside the block, what was there before restored after."""

from __future__ import annotations

import gc

import pytest

from weltklassebot.runs.collector import MIDDLE, OLD, YOUNG, spaced_collections


@pytest.fixture(autouse=True)
def _keep_thresholds() -> object:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_thresholds_inside_and_restored_after() -> None:
    gc.set_threshold(700, 10, 10)
    with spaced_collections():
        assert gc.get_threshold() == (YOUNG, MIDDLE, OLD)
    assert gc.get_threshold() == (700, 10, 10)


def _failing_run() -> None:
    with spaced_collections():
        with spaced_collections():
            assert gc.get_threshold() == (YOUNG, MIDDLE, OLD)
        assert gc.get_threshold() == (YOUNG, MIDDLE, OLD)
        raise RuntimeError("strategy failed")


def test_restored_after_an_exception_and_when_nested() -> None:
    gc.set_threshold(123, 4, 5)
    with pytest.raises(RuntimeError, match="strategy failed"):
        _failing_run()
    assert gc.get_threshold() == (123, 4, 5)


def test_cycles_are_still_collected_inside() -> None:
    class Node:
        def __init__(self) -> None:
            self.other: Node | None = None

    with spaced_collections():
        a, b = Node(), Node()
        a.other, b.other = b, a
        del a, b
        assert gc.collect() >= 2  # an explicit collection still finds the cycle
