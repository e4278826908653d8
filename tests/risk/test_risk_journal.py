"""Risk transitions through the real state store: persisted before effect, restored after a
restart, and a store that cannot write (a full tmpfs, a seam) halts trading at once."""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from support.tmpfs import mounted_tmpfs
from weltklassebot.risk import RiskConfig, RiskEngine, RiskState
from weltklassebot.risk.recovery import recover_risk
from weltklassebot.service.risk_journal import RiskJournal
from weltklassebot.state.config import StoreConfig
from weltklassebot.state.jsonl_store import JsonlStore, StoreWriteError

SCALE = 2
CONFIG = RiskConfig(drawdown_cap="0.1")  # type: ignore[arg-type]


def _open(directory: Path, risk_box: dict[str, RiskEngine]) -> JsonlStore:
    def checkpoint() -> dict[str, Any]:
        risk = risk_box.get("risk")
        return {"risk": None if risk is None else risk.snapshot()}

    return JsonlStore.open(directory, StoreConfig(max_segment_bytes=1 << 20), checkpoint)


def _engine(journal: RiskJournal) -> RiskEngine:
    return RiskEngine(CONFIG, initial_equity=100_000, money_scale=SCALE, persist=journal.persist)


def test_transition_is_persisted_before_it_takes_effect_and_survives_restart(
        tmp_path: Path) -> None:
    box: dict[str, RiskEngine] = {}
    store = _open(tmp_path, box)
    journal = RiskJournal(store)
    risk = box["risk"] = _engine(journal)
    journal.guard(risk, 10, lambda: risk.on_equity(10, 95_000))
    before = risk.state
    journal.guard(risk, 20, lambda: risk.on_equity(20, 90_000))  # 10 % down: the cap
    assert (before, risk.state) == (RiskState.ACTIVE, RiskState.HALTED)
    store.close()

    reopened = _open(tmp_path, {})
    recovered = recover_risk(reopened.recovery.checkpoint, reopened.recovery.records)
    assert recovered.state is RiskState.HALTED
    transition = recovered.last_transition
    assert transition is not None
    assert (transition.ts_ns, transition.reason) == (20, "drawdown_cap")
    reopened.close()


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    with mounted_tmpfs(tmp_path / "mnt") as target:
        yield target


def test_full_disk_halts_at_once_and_the_halt_is_written_when_space_returns(
        tiny_tmpfs: Path) -> None:
    box: dict[str, RiskEngine] = {}
    store = _open(tiny_tmpfs / "state", box)
    journal = RiskJournal(store)
    risk = box["risk"] = _engine(journal)
    ballast = tiny_tmpfs / "ballast"
    free = shutil.disk_usage(tiny_tmpfs).free
    ballast.write_bytes(b"\0" * max(free - 512, 0))

    def fill_what_is_left() -> None:
        for ts in range(10_000):
            store.append("order", {"pad": "x" * 200}, ts)

    with pytest.raises(StoreWriteError):
        fill_what_is_left()
    # The next risk transition cannot be written: the halt takes effect anyway.
    journal.guard(risk, 20_000, lambda: risk.halt("kill switch", 20_000))
    assert risk.state is RiskState.HALTED
    assert journal.write_failures == 1
    assert journal.last_error is not None
    assert journal.last_error.errno == errno.ENOSPC
    assert [t.reason for t in risk.pending_transitions] == ["store_write_failed"]
    # Nothing risk-increasing passes while halted.
    assert risk.drawdown == Fraction(0)
    assert not journal.retry(risk)  # still full
    ballast.unlink()
    assert journal.retry(risk)
    assert risk.pending_transitions == []
    store.close()
    recovery = _open(tiny_tmpfs / "state", {}).recovery
    recovered = recover_risk(recovery.checkpoint, recovery.records)
    assert recovered.state is RiskState.HALTED
    assert recovered.last_transition is not None
    assert recovered.last_transition.reason == "store_write_failed"


def test_write_failure_through_the_seam_halts(tmp_path: Path) -> None:
    failures = {"left": 1}

    def persist(_transition: object) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise StoreWriteError("append to", tmp_path / "segment.jsonl",
                                  OSError(errno.EACCES, "Permission denied"), seq=7)

    journal = RiskJournal.__new__(RiskJournal)
    journal.write_failures = 0
    journal.last_error = None
    risk = RiskEngine(CONFIG, initial_equity=100_000, money_scale=SCALE, persist=persist)
    journal.guard(risk, 5, lambda: risk.on_equity(5, 80_000))
    assert risk.state is RiskState.HALTED
    assert risk.transitions[-1].reason == "store_write_failed"
    assert journal.last_error is not None
    assert journal.last_error.errno == errno.EACCES
    assert journal.retry(risk)  # the store works again: the pending halt is written


def test_plain_os_errors_are_not_mistaken_for_store_failures() -> None:
    def persist(_transition: object) -> None:
        raise OSError(errno.EIO, "bug elsewhere")

    journal = RiskJournal.__new__(RiskJournal)
    journal.write_failures = 0
    journal.last_error = None
    risk = RiskEngine(CONFIG, initial_equity=100_000, money_scale=SCALE, persist=persist)
    with pytest.raises(OSError, match="bug elsewhere"):
        journal.guard(risk, 1, lambda: risk.halt("x", 1))
    assert risk.state is RiskState.ACTIVE
