"""``python -m cli state ...`` as operators run it: exit codes, output, and never a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from weltklassebot.state.codec import SCHEMA_VERSION

from .support import CountingState, config, fill_records, open_store, segment_files

REPO = Path(__file__).resolve().parents[2]
CFG = config(max_segment_bytes=700, retain_segments=10)


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WELTKLASSE_")}
    env.update(extra)
    return env


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "cli", "state", *args],
        cwd=REPO,
        env=environment(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert "Traceback" not in done.stdout, done.stdout
    return done


def one_paragraph(stderr: str) -> str:
    assert stderr.startswith("error: "), stderr
    assert stderr.count("\n") == 1, stderr
    return stderr


def build(directory: Path, n: int = 14) -> int:
    store, state = open_store(directory, cfg=CFG)
    fill_records(store, state, n)
    store.close()
    return store.next_seq


def damage_line(path: Path, line: int) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    lines[line - 1] = lines[line - 1].replace(b'"n":', b'"N":')
    path.write_bytes(b"".join(lines))


def test_verify_with_clean_store_exits_zero_and_reports(store_dir: Path) -> None:
    next_seq = build(store_dir)
    text = cli("verify", str(store_dir))
    assert text.returncode == 0, text.stderr
    assert "OK" in text.stdout
    assert f"next sequence: {next_seq}" in text.stdout
    assert "torn tail: none" in text.stdout

    report = json.loads(cli("verify", str(store_dir), "--json").stdout)
    assert report["status"] == "ok"
    assert report["last_seq"] == next_seq - 1
    assert report["first_seq"] == 1
    assert report["records"] == next_seq - 1
    assert len(report["segments"]) == len(segment_files(store_dir))
    assert report["torn_tail"] is None
    assert report["kinds"]["fill"] == 14


def test_verify_with_torn_tail_exits_zero_and_reports_it(store_dir: Path) -> None:
    next_seq = build(store_dir)
    newest = segment_files(store_dir)[-1]
    newest.write_bytes(newest.read_bytes() + b'{"kind":"fill","pay')
    done = cli("verify", str(store_dir), "--json")
    assert done.returncode == 0
    torn = json.loads(done.stdout)["torn_tail"]
    assert torn["seq"] == next_seq
    assert torn["file"] == newest.name
    assert "drops it at its next start" in cli("verify", str(store_dir)).stdout


def test_verify_with_damaged_record_exits_one_naming_file_line_and_repair(
    store_dir: Path,
) -> None:
    build(store_dir)
    middle = segment_files(store_dir)[1]
    damage_line(middle, 2)
    done = cli("verify", str(store_dir))
    assert done.returncode == 1
    message = one_paragraph(done.stderr)
    assert middle.name in message
    assert "line 2" in message
    assert f"`python -m cli state repair {store_dir}`" in message
    assert "--truncate-at" not in message  # the default repair keeps every intact record

    as_json = cli("verify", str(store_dir), "--json")
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert report["status"] == "corrupt"
    assert (report["file"], report["line"]) == (middle.name, 2)
    assert report["repair"] == f"python -m cli state repair {store_dir}"
    assert [p["file"] for p in report["problems"]] == [middle.name]


def test_verify_on_a_directory_without_a_store_says_so(tmp_path: Path) -> None:
    done = cli("verify", str(tmp_path))
    assert done.returncode == 2
    assert "there is no state store here" in one_paragraph(done.stderr)
    assert "OK" not in done.stdout
    as_json = cli("verify", str(tmp_path), "--json")
    assert json.loads(as_json.stdout)["status"] == "absent"


def test_verify_with_missing_directory_exits_two(tmp_path: Path) -> None:
    done = cli("verify", str(tmp_path / "nope"))
    assert done.returncode == 2
    assert "does not exist" in one_paragraph(done.stderr)
    assert cli("verify", str(tmp_path / "nope"), "--json").returncode == 2


def test_verify_with_future_schema_exits_two(store_dir: Path) -> None:
    build(store_dir)
    newest = segment_files(store_dir)[-1]
    with newest.open("a") as handle:
        handle.write(json.dumps({"v": SCHEMA_VERSION + 1, "seq": 99}) + "\n")
    done = cli("verify", str(store_dir))
    assert done.returncode == 2
    assert f"schema version {SCHEMA_VERSION + 1}" in one_paragraph(done.stderr)


def test_verify_without_directory_uses_environment_then_config(
    store_dir: Path, tmp_path: Path
) -> None:
    build(store_dir)
    assert cli("verify", WELTKLASSE_STATE_DIR=str(store_dir)).returncode == 0
    toml = tmp_path / "weltklasse.toml"
    toml.write_text(f'[state]\ndir = "{store_dir}"\n')
    assert cli("verify", "--config", str(toml)).returncode == 0
    assert cli("verify", WELTKLASSE_CONFIG=str(toml)).returncode == 0
    if not Path("/var/lib/weltklassebot/state").exists():  # the service's default
        fallback = cli("verify")
        assert fallback.returncode == 2
        assert "/var/lib/weltklassebot/state" in one_paragraph(fallback.stderr)


def test_tail_prints_last_records_as_text_and_json(store_dir: Path) -> None:
    next_seq = build(store_dir)
    text = cli("tail", str(store_dir), "-n", "3")
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert [int(line.split()[0]) for line in lines] == [next_seq - 3, next_seq - 2, next_seq - 1]
    assert all(line.split()[2] in {"fill", "checkpoint"} for line in lines)

    records = [
        json.loads(line) for line in cli("tail", str(store_dir), "--json").stdout.splitlines()
    ]
    assert len(records) == 10
    assert records[-1]["seq"] == next_seq - 1
    assert set(records[-1]) == {"seq", "ts_ns", "ts", "kind", "payload", "v"}


@pytest.mark.timeout(60)
def test_tail_follow_prints_new_records_across_rotation_until_interrupted(
    store_dir: Path,
) -> None:
    store, state = open_store(store_dir, cfg=config(max_segment_bytes=500, retain_segments=100))
    fill_records(store, state, 2)
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "state",
            "tail",
            str(store_dir),
            "-n",
            "1",
            "--follow",
            "--interval",
            "0.05",
            "--json",
        ],
        cwd=REPO,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        first = json.loads(follower.stdout.readline())
        assert first["seq"] == store.next_seq - 1
        fill_records(store, state, 12)
        rotations = store.rotations
        expected = list(range(first["seq"] + 1, store.next_seq))
        seen = [json.loads(follower.stdout.readline())["seq"] for _ in expected]
        assert seen == expected
        assert rotations > 1
    finally:
        store.close()
        follower.send_signal(signal.SIGINT)
        _out, err = follower.communicate(timeout=30)
    assert follower.returncode == 130
    assert "Traceback" not in err
    assert "interrupted" in err


def test_repair_with_damaged_store_quarantines_one_record_and_verify_passes(
    store_dir: Path,
) -> None:
    next_seq = build(store_dir)
    middle = segment_files(store_dir)[1]
    damage_line(middle, 3)
    seq = json.loads(cli("verify", str(store_dir), "--json").stdout)["seq"]

    done = cli("repair", str(store_dir), "--yes", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "repaired"
    assert [(r["first_seq"], r["through"]) for r in report["removals"]] == [(seq, seq)]
    assert report["after"]["last_seq"] == next_seq - 1  # every later record is kept
    assert report["after"]["risk_state"] == "ACTIVE"  # an old fill: a later checkpoint covers it
    backup = Path(report["backup"])
    assert backup.parent == store_dir
    assert backup.name.startswith(f"repair-backup-{seq}-")
    assert (backup / middle.name).exists()
    assert (backup / "repair.json").exists()

    verified = cli("verify", str(store_dir), "--json")
    assert verified.returncode == 0
    shown = json.loads(verified.stdout)
    assert shown["last_seq"] == next_seq - 1
    assert [(q["first_seq"], q["through"]) for q in shown["quarantined"]] == [(seq, seq)]
    store, _ = open_store(store_dir, CountingState(), cfg=CFG)
    assert store.recovery.next_seq == next_seq
    store.close()


def test_repair_text_output_shows_plan_then_backup(store_dir: Path) -> None:
    next_seq = build(store_dir)
    done = cli("repair", str(store_dir), "--truncate-at", str(next_seq - 1), "--yes")
    assert done.returncode == 0, done.stderr
    assert "repair plan" in done.stdout
    assert f"sequence {next_seq - 1} (1 record)" in done.stdout
    assert "backup: " in done.stdout
    assert "risk recovers HALTED" in done.stdout  # an intact acknowledged record was removed


def test_repair_of_a_clean_store_changes_nothing(store_dir: Path) -> None:
    build(store_dir)
    before = {p.name: p.read_bytes() for p in segment_files(store_dir)}
    done = cli("repair", str(store_dir))
    assert done.returncode == 0
    assert "nothing to repair" in done.stdout
    assert {p.name: p.read_bytes() for p in segment_files(store_dir)} == before


def test_repair_refusals_exit_two_or_three_and_change_nothing(store_dir: Path) -> None:
    next_seq = build(store_dir)
    middle = segment_files(store_dir)[1]
    damage_line(middle, 2)
    before = {p.name: p.read_bytes() for p in segment_files(store_dir)}

    unconfirmed = cli("repair", str(store_dir))  # no terminal and no --yes
    assert unconfirmed.returncode == 2
    assert "--yes" in one_paragraph(unconfirmed.stderr)
    assert "nothing was changed" in one_paragraph(unconfirmed.stderr)
    assert "will remove" in unconfirmed.stdout
    dry = cli("repair", str(store_dir), "--dry-run", "--yes")
    assert dry.returncode == 0
    assert "will remove" in dry.stdout
    too_far = cli("repair", str(store_dir), "--truncate-at", str(next_seq + 5), "--yes")
    assert too_far.returncode == 2
    assert cli("repair", str(store_dir), "--truncate-at", "0").returncode == 2

    damage_line(middle, 2)  # idempotent edit: restore the same damaged bytes
    store_lock_holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
            "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(30)",
            str(store_dir / "store.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert store_lock_holder.stdout is not None
        assert store_lock_holder.stdout.readline() == "locked\n"
        locked = cli("repair", str(store_dir), "--yes")
        assert locked.returncode == 3
        assert "locked" in one_paragraph(locked.stderr)
    finally:
        store_lock_holder.kill()
        store_lock_holder.communicate()
    assert {p.name: p.read_bytes() for p in segment_files(store_dir)} == before
    assert not list(store_dir.glob("repair-backup-*"))


@pytest.mark.parametrize("sub", ["verify", "tail", "repair"])
def test_every_subcommand_accepts_json_and_config(sub: str) -> None:
    done = cli(sub, "--help")
    assert done.returncode == 0
    assert "--json" in done.stdout
    assert "--config" in done.stdout


def test_state_help_lists_subcommands() -> None:
    done = cli("--help")
    assert done.returncode == 0
    for sub in ("verify", "tail", "repair"):
        assert sub in done.stdout
