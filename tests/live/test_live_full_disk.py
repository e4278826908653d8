"""A state directory that fills up while the service trades: trading halts at once, the failure is
counted in ``state_store_write_errors_total``, nothing crashes, and once space is freed the
writes that waited are made and the run completes with every event in its outputs."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pyarrow.parquet as pq

from support.live import log_events, metric, sample_slice, scrape, start_live, wait_ready
from support.tmpfs import mounted_tmpfs


def _fill(directory: Path) -> Path:
    """Take every free byte of the file system under ``directory``."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_a_full_state_directory_halts_trading_and_recovers_when_space_returns(
        tmp_path: Path) -> None:
    snapshot = sample_slice(tmp_path / "btc.parquet", 1500)
    with mounted_tmpfs(tmp_path / "state", "size=4m") as state:
        out, log = tmp_path / "run", tmp_path / "live.log"
        proc = start_live(state, "--data-snapshot", snapshot, "--exit-at-end", out=out,
                          speed="900000", log=log)
        try:
            info = wait_ready(state, proc)
            time.sleep(0.5)
            filler = _fill(state)
            deadline = time.monotonic() + 20
            text = ""
            while time.monotonic() < deadline:
                text = scrape(info["port"])
                if (metric(text, "state_store_write_errors_total") or 0) > 0:
                    break
                time.sleep(0.1)
            assert (metric(text, "state_store_write_errors_total") or 0) > 0, text
            assert metric(text, "risk_state", 'state="HALTED"') == 1.0
            assert proc.poll() is None, "the service died on a full disk"
            os.unlink(filler)
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode in (0, None)
    events = log_events(log)
    names = [e["event"] for e in events]
    assert "state_store_write_failed" in names
    assert "state_store_writes_again" in names
    summary = json.loads((out / "summary.json").read_text())
    assert summary["risk_state"] == "HALTED"
    assert [t["reason"] for t in summary["risk_transitions"]] == ["store_write_failed"]
    assert pq.read_table(out / "equity.parquet").num_rows == 1500, "events were lost"
