"""``python -m cli bundle verify``: OK, damage (exit 1), unusable (exit 2), --json; and the
group hands ``bundle PATH`` to its default write sub-command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from support.cli import run_cli
from weltklassebot.cli import bundle as bundle_cli
from weltklassebot.service.bundle_archive import write_bundle

from .archives import CREATED, read_entries, rewrite


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "incident.tar.gz"
    write_bundle(path, {"created": CREATED, "run_id": "20250304T050607.000000Z-abcdef12"},
                 [("state/segment-000001.jsonl", b'{"seq": 1}\n'), ("metrics.txt", b"up 1\n")])
    return path


def test_verify_prints_ok_with_count_time_and_run(good: Path) -> None:
    done = run_cli("bundle", "verify", good)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"OK {good}: 2 members, 16 bytes, created {CREATED}, run "
                                  "20250304T050607.000000Z-abcdef12")
    assert done.stderr == ""


def test_verify_json_lists_every_file(good: Path) -> None:
    done = run_cli("bundle", "verify", good, "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["status"] == "ok"
    assert document["members"] == 2
    assert document["created"] == CREATED
    assert document["run_id"] == "20250304T050607.000000Z-abcdef12"
    assert document["manifest"]["kind"] == "weltklassebot-bundle"
    assert "members" not in document["manifest"]
    assert [f["name"] for f in document["files"]] == ["metrics.txt", "state/segment-000001.jsonl"]
    assert document["archive_bytes"] == good.stat().st_size


def test_a_damaged_bundle_exits_1_naming_the_member(good: Path, tmp_path: Path) -> None:
    entries = read_entries(good)
    damaged = [(info, b"up 0\n" if info.name == "metrics.txt" else data)
               for info, data in entries]
    path = rewrite(tmp_path / "damaged.tar.gz", damaged)
    done = run_cli("bundle", "verify", path)
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert "damaged: member 'metrics.txt' has SHA-256" in done.stderr
    done = run_cli("bundle", "verify", path, "--json")
    assert done.returncode == 1
    document: dict[str, Any] = json.loads(done.stdout)
    assert document["status"] == "damaged"
    assert document["member"] == "metrics.txt"


def test_a_truncated_bundle_exits_1(good: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(good.read_bytes()[:-20])
    done = run_cli("bundle", "verify", cut)
    assert done.returncode == 1, done.stderr
    assert "ends early" in done.stderr, done.stderr


def test_a_missing_or_foreign_file_exits_2(tmp_path: Path) -> None:
    done = run_cli("bundle", "verify", tmp_path / "absent.tar.gz", "--json")
    assert done.returncode == 2
    assert json.loads(done.stdout)["status"] == "unusable"
    assert "cannot be opened" in done.stderr
    text = tmp_path / "notes.txt"
    text.write_text("not a bundle\n")
    done = run_cli("bundle", "verify", text)
    assert done.returncode == 2, done.stderr
    assert "not a gzip file" in done.stderr, done.stderr


def test_bad_options_are_usage_errors(good: Path) -> None:
    done = run_cli("bundle", "verify", good, "--max-bytes", "lots")
    assert done.returncode == 2
    assert "is not a size" in done.stderr
    done = run_cli("bundle", "verify")
    assert done.returncode == 2
    assert "Missing argument" in done.stderr


def test_help_names_both_forms() -> None:
    done = run_cli("bundle", "--help")
    assert done.returncode == 0
    assert "RUN_DIR|STATE_DIR" in done.stdout
    assert "verify" in done.stdout


def test_a_path_goes_to_the_default_write_command(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(bundle_cli.write_command, "callback",
                        lambda **kwargs: calls.append(kwargs))
    runner = CliRunner()
    for args in (["/srv/state", "--out", "x.tar.gz"], ["--out", "x.tar.gz", "/srv/state"]):
        result = runner.invoke(bundle_cli.command, args)
        assert result.exit_code == 0, result.output
    assert [(c["source"], c["out"]) for c in calls] == [(Path("/srv/state"), Path("x.tar.gz"))] * 2
    assert runner.invoke(bundle_cli.command, ["./verify"]).exit_code == 0
    assert calls[-1]["source"] == Path("verify")
