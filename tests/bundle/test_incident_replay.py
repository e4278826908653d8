"""From an alert to MATCH or the first divergence: a live run with stochastic slippage, latency,
risk limits and an operator halt and resume is bundled mid-run and after its end, and each bundle
replays to MATCH in a fresh process from another directory; edited records give DIVERGED naming
the point, a broken checksum a refusal; the service bundles itself on HALTED, and a bundle that
cannot be written is counted without touching the halt."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import time
from pathlib import Path
from typing import Any

from support.cli import run_cli
from support.live import metric, sample_slice, scrape, start_live, stop, wait_ready
from support.tmpfs import mounted_tmpfs
from weltklassebot.service.bundle_archive import extract_bundle, write_bundle

CONFIG = """
seed = 5
[strategy]
name = "sma_cross"
params = { fast = 4, slow = 15 }
[execution]
initial_cash = 40000
slippage = { model = "stochastic", max_bps = 8 }
latency = { delay = "1s", jitter = "20m" }
[risk]
max_position = 2
max_consecutive_losses = 3
cooldown = "12h"
[service]
checkpoint_seconds = 0.5
"""


def _risk(state: Path, *args: str) -> dict[str, Any]:
    done = run_cli("risk", *args, "--state-dir", state, "--wait", "10", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(done.stdout))


def _replay_elsewhere(bundle: Path, where: Path, *args: str) -> Any:
    where.mkdir(parents=True)
    moved = where / bundle.name
    shutil.copy2(bundle, moved)
    return run_cli("replay", moved, "--json", *args)


def _repack(bundle: Path, out: Path, edit: dict[str, Any]) -> Path:
    """The same bundle with members or manifest fields edited, its checksums made to fit."""
    with extract_bundle(bundle) as extracted:
        manifest = {k: v for k, v in extracted.manifest.items()
                    if k not in ("schema", "kind", "members")}
        manifest.update(edit.get("manifest", {}))
        members: list[tuple[str, Path | bytes]] = []
        for info in extracted.info.members:
            data = extracted.path(info.name).read_bytes()
            change = edit.get("members", {}).get(info.name)
            members.append((info.name, change(data) if change else data))
        write_bundle(out, manifest, members)
    return out


def test_live_run_bundled_mid_run_and_after_the_end_replays_to_match(tmp_path: Path) -> None:
    snapshot = sample_slice(tmp_path / "btc.parquet", 2400, offset=8000)
    config = tmp_path / "live.toml"
    config.write_text(CONFIG)
    state, out, log = tmp_path / "state", tmp_path / "run", tmp_path / "live.log"
    proc = start_live(state, "--config", config, "--data-snapshot", snapshot, out=out,
                      speed="600000", log=log)
    info = wait_ready(state, proc)
    time.sleep(0.5)
    assert _risk(state, "halt", "--reason", "drill")["ack"]["state"] == "HALTED"
    time.sleep(0.4)
    assert _risk(state, "resume", "--reason", "drill over")["ack"]["state"] == "ACTIVE"
    time.sleep(0.4)
    mid = run_cli("bundle", state, "--out", tmp_path / "mid.tar.gz", "--json")
    assert mid.returncode == 0, mid.stdout + mid.stderr
    assert metric(scrape(info["port"]), "bundles_written_total") == 1.0  # the auto one
    assert stop(proc) == 0
    # Mid-run: the spool so far, the two commands at their cursors.
    result = _replay_elsewhere(tmp_path / "mid.tar.gz", tmp_path / "elsewhere1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["verdict"] == "MATCH"
    # The rest of the run, then a bundle of the ended run (its run directory inside).
    proc = start_live(state, "--config", config, "--data-snapshot", snapshot, "--exit-at-end",
                      out=out, speed="max", log=log)
    assert proc.wait(120) == 0
    end = run_cli("bundle", state, "--out", tmp_path / "end.tar.gz", "--with-snapshot")
    assert end.returncode == 0, end.stderr
    with tarfile.open(tmp_path / "end.tar.gz") as archive:
        names = {m.name for m in archive.getmembers()}
    assert {"bundle.json", "run/manifest.json", "run/fills.parquet"} <= names
    assert any(n.startswith("state/segment-") for n in names)
    assert any(n.startswith("snapshot/") for n in names)
    snapshot.unlink()  # the bundle carries it
    result = _replay_elsewhere(tmp_path / "end.tar.gz", tmp_path / "elsewhere2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["verdict"] == "MATCH"
    auto = list((tmp_path / "bundles" / "auto").glob("*-halted.tar.gz"))
    assert len(auto) == 1
    assert run_cli("bundle", "verify", auto[0]).returncode == 0


def test_edited_records_diverge_at_that_point_and_a_broken_checksum_is_refused(
        tmp_path: Path) -> None:
    snapshot = sample_slice(tmp_path / "btc.parquet", 1500, offset=8000)
    config = tmp_path / "live.toml"
    config.write_text(CONFIG)
    state = tmp_path / "state"
    proc = start_live(state, "--config", config, "--data-snapshot", snapshot, speed="400000")
    wait_ready(state, proc)
    time.sleep(0.5)
    _risk(state, "halt", "--reason", "drill")
    time.sleep(0.3)
    _risk(state, "resume")
    time.sleep(0.6)
    assert stop(proc) == 0
    bundle = tmp_path / "b.tar.gz"
    assert run_cli("bundle", state, "--out", bundle).returncode == 0

    def price_edit(data: bytes) -> bytes:
        lines = data.decode().splitlines(keepends=True)
        fill = json.loads(lines[3])
        fill[5] += 1  # one tick on the fourth fill's price
        lines[3] = json.dumps(fill, separators=(",", ":")) + "\n"
        return "".join(lines).encode()

    edited = _repack(bundle, tmp_path / "fill.tar.gz", {"members": {"spool/fills.jsonl":
                                                                    price_edit}})
    result = _replay_elsewhere(edited, tmp_path / "e1")
    assert result.returncode == 1, result.stdout + result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["verdict"] == "DIVERGED"
    assert verdict["first_difference"]["kind"] == "fill"
    assert verdict["first_difference"]["index"] == 3

    with extract_bundle(bundle) as extracted:
        commands = extracted.manifest["operator_commands"]
    assert [c["command"]["action"] for c in commands] == ["halt", "resume"]
    moved = [dict(commands[0], cursor=commands[0]["cursor"] + 40), commands[1]]
    edited = _repack(bundle, tmp_path / "cursor.tar.gz",
                     {"manifest": {"operator_commands": moved}})
    result = _replay_elsewhere(edited, tmp_path / "e2")
    assert result.returncode == 1, result.stdout + result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["verdict"] == "DIVERGED"
    # The halt taken 40 events later: at the least its risk transition moves.
    assert verdict["first_difference"]["kind"] in ("fill", "order state", "equity point") or (
        verdict["first_difference"]["recorded"]["event"] == "risk_transition")

    broken = tmp_path / "broken.tar.gz"
    raw = bytearray(bundle.read_bytes())
    raw[len(raw) // 2] ^= 0x55
    broken.write_bytes(bytes(raw))
    result = run_cli("replay", broken)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "replay refused" in result.stderr or "bundle" in result.stderr


def test_a_halt_bundles_itself_and_a_full_disk_only_counts_the_failure(tmp_path: Path) -> None:
    snapshot = sample_slice(tmp_path / "btc.parquet", 3000)
    with mounted_tmpfs(tmp_path / "tiny", "size=64k") as tiny:
        filler = tiny / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass  # the disk is full
        finally:
            os.close(fd)
        config = tmp_path / "live.toml"
        config.write_text(f'[service]\nbundles_dir = "{tiny}"\n')
        state = tmp_path / "state"
        proc = start_live(state, "--config", config, "--data-snapshot", snapshot,
                          speed="36000")
        try:
            info = wait_ready(state, proc)
            assert _risk(state, "halt", "--reason", "drill")["ack"]["state"] == "HALTED"
            deadline = time.monotonic() + 20
            text = ""
            while time.monotonic() < deadline:
                text = scrape(info["port"])
                if (metric(text, "bundle_write_failures_total") or 0) >= 1:
                    break
                time.sleep(0.1)
            assert metric(text, "bundle_write_failures_total") == 1.0, text
            assert metric(text, "bundles_written_total") == 0.0
            assert metric(text, "risk_state", 'state="HALTED"') == 1.0
            assert proc.poll() is None
        finally:
            assert stop(proc) == 0
        left = [p for p in tiny.rglob("*") if p.is_file() and p != filler]
        assert not left, f"a half-written bundle: {left}"
