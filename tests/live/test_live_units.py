"""The service's parts on their own: settings, restart decisions, the spool, the resend fault and
systemd's notify protocol."""

from __future__ import annotations

import os
import socket
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from weltklassebot.config.service import LiveSettings, parse_speed
from weltklassebot.engine.costs import FeeModel, SlippageModel
from weltklassebot.model.enums import Liquidity
from weltklassebot.model.instrument import Instrument, MoneySpec
from weltklassebot.model.records import Fill
from weltklassebot.runs.live_record import read_resume, resending_venue, restart_reason
from weltklassebot.runs.spool import RunSpool, SpoolDamaged
from weltklassebot.service.notify import Notifier
from weltklassebot.state.codec import Record

IDENTITY = {"snapshot_sha256": "a" * 64, "engine_state_version": 1, "code_hash": "c",
            "strategy": "sma_cross", "config_sha256": "f", "seed": 1}


@pytest.mark.parametrize(("text", "factor"), [
    ("realtime", 1.0), ("max", None), ("60", 60.0), ("2.5x", 2.5), (" MAX ", None)])
def test_speed_parses(text: str, factor: float | None) -> None:
    assert parse_speed(text) == factor


@pytest.mark.parametrize("text", ["0", "-3", "fast", "nan", "inf", ""])
def test_a_bad_speed_is_refused_with_the_choices(text: str) -> None:
    with pytest.raises(ValueError, match=r"realtime|factor"):
        parse_speed(text)


def test_service_settings_refuse_unknown_keys() -> None:
    with pytest.raises(ValueError, match="bnid"):
        LiveSettings.model_validate({"service": {"bnid": "0.0.0.0"}})


@pytest.mark.parametrize(("change", "reason"), [
    ({}, None),
    ({"snapshot_sha256": "b" * 64}, "new_snapshot"),
    ({"engine_state_version": 2}, "engine_version_changed"),
    ({"code_hash": "d"}, "code_changed"),
    ({"strategy": "donchian_breakout"}, "code_changed"),
    ({"config_sha256": "g"}, "config_changed"),
    ({"seed": 2}, "config_changed"),
    ({"snapshot_sha256": "b" * 64, "seed": 2}, "new_snapshot"),
])
def test_restart_reason_names_what_changed(change: dict[str, Any], reason: str | None) -> None:
    assert restart_reason(IDENTITY, {**IDENTITY, **change}) == reason


def _record(seq: int, kind: str, payload: dict[str, Any]) -> Record:
    return Record(seq=seq, ts_ns=seq, kind=kind, payload=payload)


def test_read_resume_takes_the_last_engine_state_and_what_followed_it() -> None:
    started = {**IDENTITY, "run_id": "r1"}
    records = [
        _record(1, "run_started", started),
        _record(2, "fill", {"fill": [1]}),
        _record(3, "engine_state", {"cursor": 10, "commands": [{"cursor": 4}]}),
        _record(4, "fill", {"fill": [2]}),
        _record(5, "cursor", {"cursor": 12}),
    ]
    found = read_resume(records, None)
    assert found.identity == started
    assert found.status == "active"
    assert found.engine == {"cursor": 10, "commands": [{"cursor": 4}]}
    assert [r.seq for r in found.after] == [4, 5]
    assert found.commands == [{"cursor": 4}]


def test_read_resume_sees_an_ended_run_and_a_checkpoint_alone() -> None:
    closed = read_resume([_record(9, "run_closed", {"reason": "end_of_feed"})],
                         {"run": IDENTITY, "run_status": "active", "engine": {"cursor": 3}})
    assert closed.status == "closed"
    assert closed.closed == {"reason": "end_of_feed"}
    only = read_resume([], {"run": IDENTITY, "run_status": "active", "engine": {"cursor": 3},
                            "commands": []})
    assert only.engine == {"cursor": 3}
    assert only.after == []
    assert read_resume([], None).identity is None


def _fill(fill_id: int) -> Fill:
    return Fill(fill_id, fill_id, 1_000 * fill_id, "BTC", 1, 100, 1, 1, 100, Liquidity.TAKER)


def test_the_spool_is_cut_back_to_a_checkpoint_and_written_again(tmp_path: Path) -> None:
    spool = RunSpool(tmp_path / "s", None)
    spool.add_fills([_fill(1), _fill(2)])
    spool.add_equity([1, 2], [10, 11], [5, 5])
    offsets = spool.offsets()
    spool.add_fills([_fill(3)])
    spool.add_equity([3], [12], [5])
    spool.flush()
    spool.close()
    # A restart from the checkpoint: what followed it is gone, the rest kept byte for byte.
    again = RunSpool(tmp_path / "s", offsets)
    assert [f.fill_id for batch in again.fills() for f in batch] == [1, 2]
    again.add_fills([_fill(3)])
    assert [f.fill_id for batch in again.fills() for f in batch] == [1, 2, 3]
    (ts_out, equity, cash), = again.equity()
    assert ts_out.tolist() == [1, 2]
    assert equity.tolist() == [10, 11]
    assert cash.tolist() == [5, 5]
    again.close()


def test_a_spool_shorter_than_its_checkpoint_is_damage(tmp_path: Path) -> None:
    spool = RunSpool(tmp_path / "s", None)
    spool.add_fills([_fill(1)])
    offsets = spool.offsets()
    spool.close()
    (tmp_path / "s" / "fills.jsonl").write_bytes(b"")
    with pytest.raises(SpoolDamaged, match=r"fills\.jsonl holds 0 bytes"):
        RunSpool(tmp_path / "s", offsets)


def test_the_resend_fault_depends_on_seed_and_fill_id_only() -> None:
    money = MoneySpec("USD", Decimal("0.01"))
    instrument = Instrument("BTC", Decimal("0.01"), Decimal("1"), money)

    def deliveries(seed: int) -> list[int]:
        got: list[int] = []
        factory = resending_venue(0.5, seed)
        fees = FeeModel(Decimal(0), Decimal(0), 0, 1)
        venue = factory({"BTC": instrument}, fees, SlippageModel(),
                        lambda fill: got.append(fill.fill_id))
        deliver = venue.on_fill  # type: ignore[attr-defined]
        for fill_id in range(1, 201):
            deliver(_fill(fill_id))
        return got

    first, again, other = deliveries(3), deliveries(3), deliveries(4)
    assert first == again
    assert first != other
    assert 60 < len(first) - 200 < 140  # about half resent
    assert sorted(set(first)) == list(range(1, 201))


def test_notify_speaks_systemds_protocol_on_its_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(2)
    try:
        notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000",
                             "WATCHDOG_PID": str(os.getpid())})
        assert notifier.ready("run r1 running")
        message = server.recv(4096).decode()
        assert "READY=1" in message
        assert "STATUS=run r1 running" in message
        assert notifier.keepalive(now_s=100.0)
        assert server.recv(4096) == b"WATCHDOG=1"
        assert not notifier.keepalive(now_s=100.5)  # within half the period: nothing sent
        assert notifier.keepalive(now_s=101.1)
        assert server.recv(4096) == b"WATCHDOG=1"
        assert notifier.stopping()
        assert server.recv(4096).startswith(b"STOPPING=1")
        notifier.close()
    finally:
        server.close()
    outside = Notifier({})
    assert not outside.enabled
    assert not outside.ready("x")
    assert not outside.keepalive()
