"""promote, list, rollback, prune, verify, history and validate through the real CLI."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from support.tmpfs import mounted_tmpfs
from weltklassebot.core.clock import SimClock
from weltklassebot.data.catalog import Catalog, resolve_settings
from weltklassebot.errors import RuntimeFailure, UsageError
from weltklassebot.fsutil import sha256_file

from .snapshot_support import MSFT_CSV, CliRunner, clean_env, make_bars

NAME_RE = re.compile(r"^\d{8}T\d{6}\.\d{6}Z_[A-Za-z0-9._-]+\.parquet$")


def _promote_many(snapdir: Path, tmp_path: Path, count: int) -> list[str]:
    """Promote ``count`` distinct snapshots in-process (fast); returns their file names."""
    clock = SimClock(1_790_000_000 * 10**9)
    catalog = Catalog(snapdir, clock=clock, command="test")
    files = []
    for i in range(count):
        clock.advance_to(clock.now_ns() + 60 * 10**9)
        src = make_bars(tmp_path / f"s{i}.parquet", seed=i)
        change = catalog.promote(src, name=f"s{i}", timeout_s=1)
        assert change.new is not None
        files.append(change.new["file"])
    return files


def test_promote_list_history_verify(cli: CliRunner, tmp_path: Path, snapdir: Path) -> None:
    first = make_bars(tmp_path / "first.parquet", seed=1)
    second = make_bars(tmp_path / "second.parquet", seed=2)
    one = cli("promote", first, "--dir", snapdir)
    assert one.returncode == 0, one.stderr
    two = cli("promote", second, "--dir", snapdir, "--name", "fresh", "--json")
    assert two.returncode == 0, two.stderr
    change = json.loads(two.stdout)
    old, new = change["old"], change["new"]
    assert NAME_RE.match(old["file"])
    assert old["file"].endswith("_first.parquet")
    assert NAME_RE.match(new["file"])
    assert new["file"].endswith("_fresh.parquet")
    assert new["sha256"] == sha256_file(second)
    assert f"sha256 {old['sha256']}" in one.stdout.replace("(none) -> ", "")

    latest = snapdir / "latest.parquet"
    assert latest.is_symlink()
    assert os.readlink(latest) == new["file"]
    for name in (old["file"], new["file"]):
        path = snapdir / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o444
        sidecar = (snapdir / (name + ".sha256")).read_text()
        assert sidecar == f"{sha256_file(path)}  {name}\n"

    listed = cli("list", "--dir", snapdir, "--json")
    assert listed.returncode == 0
    doc = json.loads(listed.stdout)
    assert [s["file"] for s in doc["snapshots"]] == [old["file"], new["file"]]
    assert [s["latest"] for s in doc["snapshots"]] == [False, True]
    snap = doc["snapshots"][1]
    assert snap["rows"] == 50
    assert snap["symbols"] == ["TEST"]
    assert snap["ts_min"] == "2023-11-14T22:13:20Z"
    assert snap["sha256"] == new["sha256"]
    text = cli("list", "--dir", snapdir).stdout
    assert "*" in text
    assert new["sha256"][:12] in text
    assert "ROWS" in text

    history = cli("history", "--dir", snapdir, "--json")
    records = json.loads(history.stdout)["records"]
    assert [r["action"] for r in records] == ["promote", "promote"]
    assert records[1]["old"] == old
    assert records[1]["new"] == new
    assert records[1]["who"]
    assert records[1]["when"].endswith("Z")
    assert "promote" in records[1]["command"]
    assert "promote" in cli("history", "--dir", snapdir).stdout

    verified = cli("verify", "--dir", snapdir)
    assert verified.returncode == 0
    assert "OK: 2 snapshot(s)" in verified.stdout


def test_promote_same_bytes_again_is_a_no_op(cli: CliRunner, tmp_path: Path,
                                             snapdir: Path) -> None:
    src = make_bars(tmp_path / "a.parquet")
    assert cli("promote", src, "--dir", snapdir).returncode == 0
    again = cli("promote", src, "--dir", snapdir)
    assert again.returncode == 0
    assert "unchanged" in again.stdout
    assert len([p for p in snapdir.iterdir() if p.suffix == ".parquet"]) == 2  # + latest


def test_promote_invalid_file_changes_nothing(cli: CliRunner, tmp_path: Path,
                                              snapdir: Path) -> None:
    good = make_bars(tmp_path / "good.parquet")
    assert cli("promote", good, "--dir", snapdir).returncode == 0
    before = sorted(p.name for p in snapdir.iterdir())
    bad = make_bars(tmp_path / "bad.parquet", bad_high_at=7)
    result = cli("promote", bad, "--dir", snapdir)
    assert result.returncode == 1
    assert "high_ge_open_close" in result.stderr
    assert "bad.parquet" in result.stderr
    csv = cli("promote", MSFT_CSV, "--dir", snapdir)
    assert csv.returncode == 2
    assert "not a readable Parquet file" in csv.stderr
    missing = cli("promote", tmp_path / "nope.parquet", "--dir", snapdir)
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
    assert sorted(p.name for p in snapdir.iterdir()) == before


def test_rollback_previous_named_and_errors(cli: CliRunner, tmp_path: Path,
                                            snapdir: Path) -> None:
    files = _promote_many(snapdir, tmp_path, 3)
    back = cli("rollback", "--dir", snapdir)
    assert back.returncode == 0, back.stderr
    assert f"{files[2]}" in back.stdout
    assert f"-> {files[1]}" in back.stdout
    assert os.readlink(snapdir / "latest.parquet") == files[1]
    back = cli("rollback", "--dir", snapdir, "--json")
    assert json.loads(back.stdout)["new"]["file"] == files[0]
    oldest = cli("rollback", "--dir", snapdir)
    assert oldest.returncode == 2
    assert "nothing older" in oldest.stderr
    forward = cli("rollback", "--dir", snapdir, "--to", snapdir / files[2])
    assert forward.returncode == 0
    assert os.readlink(snapdir / "latest.parquet") == files[2]
    unknown = cli("rollback", "--dir", snapdir, "--to", "20990101T000000.000000Z_x.parquet")
    assert unknown.returncode == 2
    assert "no snapshot" in unknown.stderr
    actions = [r["action"] for r in Catalog(snapdir).history()]
    assert actions == ["promote"] * 3 + ["rollback"] * 3


def test_rollback_refuses_a_corrupt_target(cli: CliRunner, tmp_path: Path,
                                           snapdir: Path) -> None:
    files = _promote_many(snapdir, tmp_path, 2)
    victim = snapdir / files[0]
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    result = cli("rollback", "--dir", snapdir)
    assert result.returncode == 1
    assert "SHA-256" in result.stderr
    assert os.readlink(snapdir / "latest.parquet") == files[1]
    verified = cli("verify", "--dir", snapdir, "--json")
    assert verified.returncode == 1
    doc = json.loads(verified.stdout)
    assert doc["ok"] is False
    assert [f["status"] for f in doc["files"]] == ["MISMATCH", "ok"]
    assert any("writable" in w for w in doc["warnings"])


def test_prune_keeps_latest_newer_and_n_previous(cli: CliRunner, tmp_path: Path,
                                                 snapdir: Path) -> None:
    files = _promote_many(snapdir, tmp_path, 7)
    catalog = Catalog(snapdir)
    catalog.rollback(to=files[5], timeout_s=1)  # latest = files[5]; files[6] is newer
    refused = cli("prune", "--keep", "2", "--dir", snapdir)
    assert refused.returncode == 2
    assert "at least 3" in refused.stderr
    dry = cli("prune", "--keep", "3", "--dir", snapdir, "--dry-run")
    assert dry.returncode == 0
    assert "would delete" in dry.stdout
    assert len(catalog.entries()) == 7
    result = cli("prune", "--keep", "3", "--dir", snapdir, "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [r["file"] for r in doc["removed"]] == files[:2]
    assert [e.file for e in catalog.entries()] == files[2:]
    assert not any((snapdir / (f + ".sha256")).exists() for f in files[:2])
    again = cli("prune", "--keep", "3", "--dir", snapdir)
    assert again.returncode == 0
    assert "nothing to prune" in again.stdout
    record = catalog.history()[-1]
    assert record["action"] == "prune"
    assert len(record["removed"]) == 2
    assert "prune" in cli("history", "--dir", snapdir).stdout


def test_dangling_latest_is_reported_and_repaired(cli: CliRunner, tmp_path: Path,
                                                  snapdir: Path) -> None:
    files = _promote_many(snapdir, tmp_path, 4)
    target = snapdir / files[3]
    target.unlink()
    (snapdir / (files[3] + ".sha256")).unlink()
    listed = cli("list", "--dir", snapdir)
    assert listed.returncode == 0
    assert "dangling" in listed.stderr
    verified = cli("verify", "--dir", snapdir)
    assert verified.returncode == 1
    assert "dangling" in verified.stdout
    pruned = cli("prune", "--keep", "3", "--dir", snapdir)
    assert pruned.returncode == 1
    assert "does not exist" in pruned.stderr
    validated = cli("validate", "--dir", snapdir)
    assert validated.returncode == 2
    assert "dangling" in validated.stderr
    repaired = cli("rollback", "--dir", snapdir)
    assert repaired.returncode == 0, repaired.stderr
    assert os.readlink(snapdir / "latest.parquet") == files[2]
    assert cli("verify", "--dir", snapdir).returncode == 0


def test_verify_detects_missing_sidecar_and_history_tampering(
        cli: CliRunner, tmp_path: Path, snapdir: Path) -> None:
    files = _promote_many(snapdir, tmp_path, 2)
    assert cli("verify", "--dir", snapdir).returncode == 0
    history = snapdir / "history.jsonl"
    lines = history.read_text().splitlines()
    lines[0] = lines[0].replace('"action":"promote"', '"action":"promote" ')
    history.write_text("\n".join(lines) + "\n")
    tampered = cli("verify", "--dir", snapdir)
    assert tampered.returncode == 1
    assert "history was edited" in tampered.stdout
    (snapdir / (files[0] + ".sha256")).unlink()
    missing = cli("verify", "--dir", snapdir, "--json")
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["files"][0]["status"] == "no sidecar"


def test_hand_made_symlink_change_is_reconciled(tmp_path: Path, snapdir: Path) -> None:
    files = _promote_many(snapdir, tmp_path, 2)
    link = snapdir / "latest.parquet"
    link.unlink()
    link.symlink_to(files[0])
    catalog = Catalog(snapdir)
    assert any("last history record" in w for w in catalog.verify()["warnings"])
    catalog.promote(make_bars(tmp_path / "n.parquet", seed=99), name="n", timeout_s=1)
    actions = [r["action"] for r in catalog.history()]
    assert actions == ["promote", "promote", "reconcile", "promote"]
    assert catalog.history()[2]["new"]["file"] == files[0]
    assert catalog.verify()["ok"]


def test_directory_resolution_and_errors(cli: CliRunner, tmp_path: Path,
                                         snapdir: Path) -> None:
    src = make_bars(tmp_path / "a.parquet")
    by_env = cli("promote", src, env=clean_env(WELTKLASSE_SNAPSHOT_DIR=str(snapdir)))
    assert by_env.returncode == 0, by_env.stderr
    config = tmp_path / "wk.toml"
    other = tmp_path / "other"
    other.mkdir()
    config.write_text(f'[snapshots]\nsnapshot_dir = "{other}"\n\n[backtest]\nseed = 1\n')
    by_config = cli("list", "--config", config, "--json")
    assert json.loads(by_config.stdout)["dir"] == str(other)
    by_config_env = cli("list", "--json", env=clean_env(WELTKLASSE_CONFIG=str(config)))
    assert json.loads(by_config_env.stdout)["dir"] == str(other)
    env_beats_config = cli("list", "--config", config, "--json",
                           env=clean_env(WELTKLASSE_SNAPSHOT_DIR=str(snapdir)))
    assert json.loads(env_beats_config.stdout)["dir"] == str(snapdir)
    flag_beats_env = cli("list", "--dir", other, "--json",
                         env=clean_env(WELTKLASSE_SNAPSHOT_DIR=str(snapdir)))
    assert json.loads(flag_beats_env.stdout)["dir"] == str(other)

    config.write_text('[snapshots]\nsnapshot_directory = "/x"\n')
    unknown = cli("list", "--config", config)
    assert unknown.returncode == 2
    assert "snapshot_directory" in unknown.stderr
    missing_cfg = cli("list", "--config", tmp_path / "none.toml")
    assert missing_cfg.returncode == 2
    assert "does not exist" in missing_cfg.stderr
    missing = cli("promote", src, "--dir", tmp_path / "absent")
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
    assert "mkdir -p" in missing.stderr
    if not Path("/var/lib/weltklassebot/snapshots").exists():
        default = cli("list")
        assert default.returncode == 2
        assert "/var/lib/weltklassebot/snapshots" in default.stderr
    not_dir = cli("verify", "--dir", src)
    assert not_dir.returncode == 2
    assert "not a directory" in not_dir.stderr


def test_unwritable_directory_refused(tmp_path: Path, snapdir: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    src = make_bars(tmp_path / "a.parquet")
    real_access = os.access

    def no_write(path: object, mode: int, *args: object, **kwargs: object) -> bool:
        if Path(str(path)) == snapdir and mode & os.W_OK:
            return False
        return real_access(path, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "access", no_write)
    with pytest.raises(UsageError, match="not writable"):
        Catalog(snapdir).promote(src, name=None, timeout_s=1)
    assert list(snapdir.iterdir()) == []


def test_unwritable_directory_refused_cli(cli: CliRunner, tmp_path: Path,
                                          snapdir: Path) -> None:
    """Not writable: a mode-0555 directory, or, for root (who ignores modes), a read-only
    tmpfs mounted for the test."""
    src = make_bars(tmp_path / "a.parquet")
    if os.geteuid() == 0:
        with mounted_tmpfs(tmp_path / "read-only", "ro,size=64k") as target:
            result = cli("promote", src, "--dir", target)
    else:
        snapdir.chmod(0o555)
        try:
            result = cli("promote", src, "--dir", snapdir)
        finally:
            snapdir.chmod(0o755)
    assert result.returncode == 2
    assert "not writable" in result.stderr
    assert "Traceback" not in result.stderr


def test_free_space_checked_before_copying(tmp_path: Path, snapdir: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(10**9, 10**9, 1000))
    with pytest.raises(RuntimeFailure, match="not enough free space"):
        Catalog(snapdir).promote(make_bars(tmp_path / "a.parquet"), name="a", timeout_s=1)
    assert [p.name for p in snapdir.iterdir()] == [".lock"]


def test_settings_precedence_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_settings().snapshot_dir == Path("/var/lib/weltklassebot/snapshots")
    monkeypatch.setenv("WELTKLASSE_LOCK_TIMEOUT", "2.5")
    assert resolve_settings().lock_timeout_s == 2.5
    assert resolve_settings(lock_timeout_s=1).lock_timeout_s == 1
    monkeypatch.setenv("WELTKLASSE_LOCK_TIMEOUT", "soon")
    with pytest.raises(UsageError):
        resolve_settings()


def test_validate_reports_all_violations(cli: CliRunner, tmp_path: Path) -> None:
    good = make_bars(tmp_path / "good.parquet", n=200)
    ok = cli("validate", good)
    assert ok.returncode == 0
    assert ok.stdout.startswith("VALID")
    assert "rows: 200" in ok.stdout
    assert "bar interval: 1m" in ok.stdout
    table = pq.read_table(good)
    high = table.column("high").to_numpy().copy()
    high[[3, 9, 11]] = 0.5
    volume = table.column("volume").to_numpy().copy()
    volume[[4, 5]] = 0.0
    bad = table.set_column(2, "high", pa.array(high)).set_column(5, "volume", pa.array(volume))
    ts = bad.column("ts").to_pylist()
    ts[20] = ts[19]
    bad = bad.set_column(0, "ts", pa.array(ts, type=pa.timestamp("ns", tz="UTC")))
    path = tmp_path / "bad.parquet"
    pq.write_table(bad, path)
    result = cli("validate", path)
    assert result.returncode == 1
    assert "INVALID" in result.stdout
    assert "high_ge_open_close" in result.stdout
    assert "3 row(s)" in result.stdout
    assert "row 3" in result.stdout
    assert "ts_unique" in result.stdout
    assert "2 zero-volume bar(s)" in result.stdout
    as_json = json.loads(cli("validate", path, "--json").stdout)
    assert as_json["ok"] is False
    assert {v["rule"] for v in as_json["violations"]} >= {"high_ge_open_close", "ts_unique"}


def test_validate_unusable_inputs(cli: CliRunner, tmp_path: Path) -> None:
    missing = cli("validate", tmp_path / "nope.parquet")
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
    csv = cli("validate", MSFT_CSV)
    assert csv.returncode == 2
    assert "snapshot import" in csv.stderr
    naive = tmp_path / "naive.parquet"
    pq.write_table(pa.table({"ts": pa.array([1, 2], type=pa.timestamp("ns")),
                             "open": [1.0, 1.0], "high": [1.0, 1.0], "low": [1.0, 1.0],
                             "close": [1.0, 1.0], "volume": [1.0, 1.0]}), naive)
    zoneless = cli("validate", naive)
    assert zoneless.returncode == 2
    assert "--tz UTC" in zoneless.stderr
