"""Generated damage to the state store: never OK, repair keeps every intact record, risk is the
truth or fail-safe HALTED (the classes and checks are in ``faults.py``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .faults import Tally, last_records_exhaustive, run

SEEDS = int(os.environ.get("WELTKLASSE_FAULT_SEEDS", "4"))


def test_generated_faults_are_detected_and_repaired_without_losing_intact_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tally = Tally()
    run(tmp_path, range(SEEDS), tally)
    assert tally.detected == tally.tried == tally.repaired
    with capsys.disabled():
        print("\n" + tally.line())


def test_every_byte_and_offset_of_the_last_records_is_detected_and_repaired(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tally = Tally()
    last_records_exhaustive(tmp_path, tally)
    assert tally.detected == tally.tried == tally.repaired > 100
    with capsys.disabled():
        print("\n" + tally.line())
