"""A backtest of a time range with a warm-up replays to MATCH (replay re-runs the recorded range,
not the whole snapshot)."""

from __future__ import annotations

from pathlib import Path

from support.cli import run_cli


def test_a_ranged_run_with_warmup_replays_to_match(tmp_path: Path) -> None:
    run = tmp_path / "ranged"
    done = run_cli("backtest", "--start", "2018-01-01", "--end", "2018-06-01", "--warmup", "40",
                   "--no-progress", "--no-report", "--out", run)
    assert done.returncode == 0, done.stderr
    replayed = run_cli("replay", run)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert replayed.stdout.startswith("MATCH")
