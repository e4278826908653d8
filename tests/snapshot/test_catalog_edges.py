"""What every command says and does about a damaged catalog, through the real CLI.

A regular file at ``latest.parquet``, a link leaving the directory, a missing sidecar, damaged
snapshots before prune, a truncated history, ``backtest`` through the catalog, and the owner of
what a command run as root creates in a directory that belongs to the service's user.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from weltklassebot.core.clock import SimClock
from weltklassebot.data.catalog import HISTORY, QUARANTINE, Catalog
from weltklassebot.fsutil import sha256_file

from .snapshot_support import COINBASE_CSV, CliRunner, clean_env, make_bars


def _promote_many(snapdir: Path, tmp_path: Path, count: int) -> list[str]:
    clock = SimClock(1_790_000_000 * 10**9)
    catalog = Catalog(snapdir, clock=clock, command="test")
    files = []
    for i in range(count):
        clock.advance_to(clock.now_ns() + 60 * 10**9)
        change = catalog.promote(make_bars(tmp_path / f"s{i}.parquet", seed=i), name=f"s{i}",
                                 timeout_s=1)
        assert change.new is not None
        files.append(change.new["file"])
    return files


def _backtest(snapshot: Path, out: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "cli", "backtest", "--data-snapshot", str(snapshot), "--out",
         str(out)], env=clean_env(), capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in result.stderr
    return result


def _flip(path: Path, at: int = 200) -> None:
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def test_regular_file_latest_is_named_and_never_deleted(cli: CliRunner, tmp_path: Path,
                                                        snapdir: Path) -> None:
    files = _promote_many(snapdir, tmp_path, 4)
    link = snapdir / "latest.parquet"
    link.unlink()
    link.write_bytes((snapdir / files[3]).read_bytes())
    original = link.read_bytes()

    listed = cli("list", "--dir", snapdir)
    assert listed.returncode == 0
    assert "latest.parquet is a regular file" in listed.stderr
    assert "not set" not in listed.stdout
    verified = cli("verify", "--dir", snapdir)
    assert verified.returncode == 1
    assert "is a regular file" in verified.stdout
    pruned = cli("prune", "--keep", "3", "--dir", snapdir)
    assert pruned.returncode == 1
    assert "is a regular file" in pruned.stderr
    assert "does not exist" not in pruned.stderr
    ran = _backtest(link, tmp_path / "run")
    assert ran.returncode == 1
    assert "is a regular file" in ran.stderr
    assert "snapshot rollback" in ran.stderr
    assert not (tmp_path / "run").exists()
    previous = cli("rollback", "--dir", snapdir)
    assert previous.returncode == 2
    assert "is a regular file" in previous.stderr
    assert "--to FILE" in previous.stderr
    assert link.read_bytes() == original  # refused before touching anything

    rolled = cli("rollback", "--to", files[2], "--dir", snapdir, "--json")
    assert rolled.returncode == 0, rolled.stderr
    change = json.loads(rolled.stdout)
    moved = [q for q in change["quarantined"] if q["file"] == "latest.parquet"]
    assert len(moved) == 1
    assert (snapdir / moved[0]["to"]).read_bytes() == original
    assert os.readlink(link) == files[2]
    records = Catalog(snapdir).history()
    assert any(q["file"] == "latest.parquet" for r in records for q in r.get("quarantined", []))
    assert records[-1]["new"]["file"] == files[2]
    assert cli("verify", "--dir", snapdir).returncode == 0


def test_promote_over_a_regular_file_keeps_it(tmp_path: Path, snapdir: Path) -> None:
    _promote_many(snapdir, tmp_path, 1)
    link = snapdir / "latest.parquet"
    link.unlink()
    link.write_bytes(b"hand-made copy")
    change = Catalog(snapdir).promote(make_bars(tmp_path / "n.parquet", seed=5), name="n",
                                      timeout_s=1)
    assert change.new is not None
    assert change.new["file"].endswith("_n.parquet")
    kept = [q for q in change.quarantined if q.file == "latest.parquet"]
    assert (snapdir / kept[0].to).read_bytes() == b"hand-made copy"
    assert Catalog(snapdir).verify()["ok"]


def test_link_outside_the_directory_is_not_called_dangling(cli: CliRunner, tmp_path: Path,
                                                           snapdir: Path) -> None:
    files = _promote_many(snapdir, tmp_path, 2)
    outside = tmp_path / "elsewhere.parquet"
    outside.write_bytes((snapdir / files[1]).read_bytes())
    link = snapdir / "latest.parquet"
    link.unlink()
    link.symlink_to("../elsewhere.parquet")
    for args in (("list",), ("verify",)):
        result = cli(*args, "--dir", snapdir)
        text = result.stdout + result.stderr
        assert "points outside the snapshot directory" in text
        assert "(which exists)" in text
        assert "dangling" not in text
    ran = _backtest(link, tmp_path / "run")
    assert ran.returncode == 1
    assert "points outside the snapshot directory" in ran.stderr


def test_missing_sidecar_is_not_called_damage(cli: CliRunner, tmp_path: Path,
                                              snapdir: Path) -> None:
    files = _promote_many(snapdir, tmp_path, 3)
    (snapdir / (files[2] + ".sha256")).unlink()
    (snapdir / (files[1] + ".sha256")).unlink()
    listed = cli("list", "--dir", snapdir)
    assert "sidecar" in listed.stderr
    assert "is missing" in listed.stderr
    verified = cli("verify", "--dir", snapdir)
    assert verified.returncode == 1
    assert "is missing, so its bytes cannot be checked" in verified.stdout
    assert "differs" not in verified.stdout
    assert "damaged or was changed" not in verified.stdout
    ran = _backtest(snapdir / "latest.parquet", tmp_path / "run")
    assert ran.returncode == 1
    assert "is missing" in ran.stderr
    back = cli("rollback", "--dir", snapdir)
    assert back.returncode == 1
    assert "is missing" in back.stderr
    assert "differs" not in back.stderr


def test_backtest_checks_the_sidecar(tmp_path: Path, snapdir: Path) -> None:
    files = _promote_many(snapdir, tmp_path, 2)
    good = _backtest(snapdir / "latest.parquet", tmp_path / "ok")
    assert good.returncode == 0, good.stderr
    manifest = json.loads((tmp_path / "ok" / "manifest.json").read_text())
    assert sha256_file(snapdir / files[1]) in json.dumps(manifest)
    _flip(snapdir / files[0])
    direct = _backtest(snapdir / files[0], tmp_path / "direct")
    assert direct.returncode == 1
    assert files[0] in direct.stderr
    assert "snapshot verify" in direct.stderr
    _flip(snapdir / files[1])
    through = _backtest(snapdir / "latest.parquet", tmp_path / "bad")
    assert through.returncode == 1
    assert "differs from" in through.stderr
    assert "snapshot rollback" in through.stderr
    assert not (tmp_path / "bad").exists()


def test_prune_counts_only_verified_snapshots(cli: CliRunner, tmp_path: Path,
                                              snapdir: Path) -> None:
    files = _promote_many(snapdir, tmp_path, 7)  # latest = files[6]; six older
    _flip(snapdir / files[5])
    (snapdir / (files[4] + ".sha256")).unlink()
    result = cli("prune", "--keep", "3", "--dir", snapdir, "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    # verified older: files[0..3]; the newest three of them stay, files[0] goes
    assert [r["file"] for r in doc["removed"]] == [files[0]]
    assert sorted(doc["unverified"]) == [files[4], files[5]]
    assert [e.file for e in Catalog(snapdir).entries()] == files[1:]
    text = cli("prune", "--keep", "3", "--dir", snapdir)
    assert "not counted and not deleted" in text.stderr
    _flip(snapdir / files[6])
    refused = cli("prune", "--keep", "3", "--dir", snapdir)
    assert refused.returncode == 1
    assert "deleted nothing" in refused.stderr
    assert len(Catalog(snapdir).entries()) == 6


def test_truncated_history_detected_and_repaired(cli: CliRunner, tmp_path: Path,
                                                 snapdir: Path) -> None:
    _promote_many(snapdir, tmp_path, 3)
    history = snapdir / HISTORY
    lines = history.read_bytes().splitlines(keepends=True)
    history.write_bytes(b"".join(lines[:-1]))
    verified = cli("verify", "--dir", snapdir)
    assert verified.returncode == 1
    assert "the last 1 record(s) were removed" in verified.stdout
    assert "snapshot repair" in verified.stderr
    no_tty = cli("repair", "--dir", snapdir)
    assert no_tty.returncode == 2
    assert "--yes" in no_tty.stderr
    dry = cli("repair", "--dir", snapdir, "--dry-run")
    assert dry.returncode == 0
    assert "plan:" in dry.stdout
    repaired = cli("repair", "--dir", snapdir, "--yes")
    assert repaired.returncode == 0, repaired.stderr
    assert "OK:" in repaired.stdout
    kept = sorted((snapdir / QUARANTINE).iterdir())
    assert any(p.read_bytes() == b"".join(lines[:-1]) for p in kept)
    first = Catalog(snapdir).history()[0]
    assert first["action"] == "history_restart"
    assert "removed" in " ".join(first["restarted_from"]["problems"])
    assert cli("verify", "--dir", snapdir).returncode == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="only root creates files for another owner")
def test_files_created_as_root_belong_to_the_directory_owner(cli: CliRunner, tmp_path: Path,
                                                             snapdir: Path) -> None:
    uid = gid = 65534
    os.chown(snapdir, uid, gid)
    sources = [make_bars(tmp_path / f"o{i}.parquet", seed=i) for i in range(5)]
    for src in sources:
        assert cli("promote", src, "--dir", snapdir).returncode == 0
    assert cli("rollback", "--dir", snapdir).returncode == 0
    assert cli("prune", "--keep", "3", "--dir", snapdir).returncode == 0
    link = snapdir / "latest.parquet"
    target = os.readlink(link)
    link.unlink()
    link.write_bytes(b"copy")  # a regular file and a stray sidecar, for quarantine/
    stray = snapdir / "20200101T000000.000000Z_gone.parquet.sha256"
    stray.write_text("x\n")
    for made in (link, stray):
        os.chown(made, uid, gid)
    assert cli("rollback", "--to", target, "--dir", snapdir).returncode == 0
    imported = cli("import", COINBASE_CSV, "--name", "cb", "--dir", snapdir)
    assert imported.returncode == 0, imported.stderr
    assert (snapdir / QUARANTINE).is_dir()
    wrong = [str(p.relative_to(snapdir)) for p in [*snapdir.rglob("*")]
             if (os.lstat(p).st_uid, os.lstat(p).st_gid) != (uid, gid)]
    assert not wrong, wrong
