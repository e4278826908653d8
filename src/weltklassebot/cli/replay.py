"""``replay``: verify a recorded run (a run directory or an incident bundle), re-run it and say
MATCH (exit 0) or DIVERGED (exit 1).

A record that does not match itself (edited, truncated or missing files, a bundle whose checksums
fail or that is unsafe to extract) is refused with exit 2 before any re-run; ``--force`` never
bypasses that check.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from weltklassebot.cli.options import json_option, print_json


@click.command("replay")
@click.argument("run_dir", metavar="RUN_DIR|BUNDLE", type=click.Path(path_type=Path))
@click.option("--data-snapshot", "snapshot", type=click.Path(dir_okay=False, path_type=Path),
              default=None,
              help="For a bundle without its snapshot: the snapshot to use (checked against the "
                   "recorded SHA-256).")
@click.option("--force", is_flag=True,
              help="Replay even when the snapshot's SHA-256 or the strategy code changed "
                   "(never when the record itself does not verify).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the replayed run directory here (default: a temporary one).")
@json_option
def command(run_dir: Path, snapshot: Path | None, force: bool, out: Path | None,
            as_json: bool) -> int:
    """Verify RUN_DIR, re-run it from its manifest and compare with the record.

    The record is checked first: the manifest's checksum, each run file's size and SHA-256, and
    the equity hash recomputed from fills.parquet and equity.parquet. A record that does not
    match is refused with exit 2, naming what differs. Then fills, equity points, orders and
    events of the re-run are compared with the record.
    """
    from weltklassebot.runs.replay import replay

    if run_dir.is_file():
        from weltklassebot.runs.bundle import replay_bundle

        result = replay_bundle(run_dir, snapshot=snapshot, force=force)
    else:
        result = replay(run_dir, force=force, out=out, snapshot=snapshot)
    if as_json:
        print_json(result.to_json_dict())
    else:
        for warning in result.warnings:
            sys.stderr.write(f"warning: {warning}\n")
        sys.stdout.write(f"{result.verdict}\n")
        sys.stdout.write(f"record verified       {', '.join(result.checks)}\n")
        sys.stdout.write(f"recorded equity hash  {result.recorded_hash}\n")
        sys.stdout.write(f"replayed equity hash  {result.replayed_hash}\n")
        diff = result.difference
        if diff is not None:
            sys.stdout.write(f"first difference: {diff.get('kind')} #{diff.get('index')}\n")
            sys.stdout.write(f"  recorded: {diff.get('recorded')}\n")
            sys.stdout.write(f"  replayed: {diff.get('replayed')}\n")
    return 0 if result.verdict == "MATCH" else 1
