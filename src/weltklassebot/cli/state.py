"""``state verify|tail|repair``: inspect and repair a state directory (docs/state-store.md).

The state directory is the DIR argument, else ``WELTKLASSE_STATE_DIR``, else ``[state] dir`` (or
``state_dir``) in the TOML file given by ``--config`` or ``WELTKLASSE_CONFIG``, else
``/var/lib/weltklassebot/state`` (as for ``risk``). ``verify`` and ``tail`` only read and take no
lock, so they are safe while the service runs; ``repair`` takes the store's lock and refuses
while the service holds it.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from weltklassebot.cli.options import (
    config_option,
    json_option,
    print_json,
    resolve_state_dir,
)

if TYPE_CHECKING:
    from weltklassebot.state.codec import Record
    from weltklassebot.state.recovery import RecoveryResult

_DIR_ARGUMENT = click.argument("directory", required=False, type=click.Path(path_type=Path))


@click.group(name="state", help="Inspect and repair a state directory (verify, tail, repair).")
def command() -> None:
    """Group of the state store's operator commands."""


@command.command("verify")
@_DIR_ARGUMENT
@json_option
@config_option
def verify(directory: Path | None, as_json: bool, config_file: Path | None) -> None:
    """Check every record of the store in DIR: exit 0 clean, 1 corrupt, 2 unusable.

    A torn final record (a write cut short by a crash) is reported but is not corruption: the
    service drops it at its next start.
    """
    from weltklassebot.state.codec import KNOWN_KINDS
    from weltklassebot.state.errors import StoreCorrupt, StoreIncompatible, StoreUnusable
    from weltklassebot.state.recovery import recover

    path = resolve_state_dir(directory, config_file)
    try:
        result = recover(path, kinds=None)
    except StoreCorrupt as exc:
        if as_json:
            print_json(
                {
                    "status": "corrupt",
                    "directory": str(path),
                    "file": exc.path.name,
                    "line": exc.line,
                    "seq": exc.seq,
                    "reason": exc.reason,
                    "repair": f"python -m cli state repair {path} --truncate-at {exc.seq}",
                    "error": exc.message,
                }
            )
        raise
    except (StoreIncompatible, StoreUnusable) as exc:
        if as_json:
            print_json({"status": "unusable", "directory": str(path), "error": exc.message})
        raise
    report = _verify_report(path, result, KNOWN_KINDS)
    if as_json:
        print_json(report)
        return
    _print_verify_text(report)


@command.command("tail")
@_DIR_ARGUMENT
@click.option("-n", "--lines", "count", default=10, show_default=True, type=click.IntRange(0))
@click.option("-f", "--follow", is_flag=True, help="Keep printing new records, across rotations.")
@click.option(
    "--interval",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0.01),
    help="Seconds between polls with --follow.",
)
@json_option
@config_option
def tail(
    directory: Path | None,
    count: int,
    follow: bool,
    interval: float,
    as_json: bool,
    config_file: Path | None,
) -> None:
    """Print the last records of the store in DIR (one JSON object per line with --json)."""
    from weltklassebot.state.segment import list_directory
    from weltklassebot.state.tail import SegmentFollower, last_records

    path = resolve_state_dir(directory, config_file)
    result = last_records(path, count)
    for record in result.records:
        _print_record(record, as_json)
    if result.incomplete is not None:
        click.echo(f"note: incomplete final line skipped ({result.incomplete})", err=True)
    if not follow:
        return
    if result.records:
        after = result.records[-1].seq
    else:
        segments = list_directory(path).segments
        after = _last_seq(path) if segments else 0
    follower = SegmentFollower(path, after)
    skipped = 0
    while True:
        for record in follower.poll():
            _print_record(record, as_json)
        sys.stdout.flush()
        if follower.skipped != skipped:
            click.echo(
                f"note: {follower.skipped - skipped} record(s) were removed by retention before "
                "they could be shown",
                err=True,
            )
            skipped = follower.skipped
        time.sleep(interval)


@command.command("repair")
@_DIR_ARGUMENT
@click.option(
    "--truncate-at",
    "truncate_at",
    required=True,
    type=click.IntRange(1),
    help="First sequence number to remove; the store then ends at SEQ - 1.",
)
@json_option
@config_option
def repair(
    directory: Path | None, truncate_at: int, as_json: bool, config_file: Path | None
) -> None:
    """Remove record SEQ and everything after it, keeping a backup inside DIR.

    The removed bytes (a full copy of the segment that is cut, and every later segment) go to
    DIR/repair-backup-<SEQ>-<UTC time>/ with a repair.json manifest; the store is then verified.
    Stop the service first: the repair takes the store's lock.
    """
    from weltklassebot.state import repair as store_repair

    path = resolve_state_dir(directory, config_file)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    result = store_repair.truncate_at(path, truncate_at, stamp)
    after = result.after
    if as_json:
        print_json(
            {
                "status": "repaired",
                "directory": str(path),
                "truncate_at": truncate_at,
                "last_seq": after.last_seq,
                "next_seq": after.next_seq,
                "backup": str(result.backup),
                "removed_lines": result.removed_lines,
                "files": [
                    {
                        "name": f.name,
                        "action": f.action,
                        "original_bytes": f.original_bytes,
                        "kept_bytes": f.kept_bytes,
                        "removed_lines": f.removed_lines,
                        "sha256": f.sha256,
                    }
                    for f in result.files
                ],
                "verified": True,
            }
        )
        return
    click.echo(f"state store {path}: cut at sequence {truncate_at}")
    for f in result.files:
        click.echo(
            f"  {f.name}: {f.action}, {f.removed_lines} line(s) removed "
            f"({f.original_bytes - f.kept_bytes} bytes)"
        )
    click.echo(f"backup: {result.backup}")
    click.echo(
        f"verified: last record is sequence {after.last_seq}; the service continues at "
        f"{after.next_seq}"
    )


def _last_seq(path: Path) -> int:
    from weltklassebot.state.recovery import recover

    return recover(path, kinds=None).last_seq


def _verify_report(path: Path, result: RecoveryResult, known: frozenset[str]) -> dict[str, Any]:
    from weltklassebot.core.timeutil import ns_to_iso

    torn = result.torn
    last_ts = result.records[-1].ts_ns if result.records else result.checkpoint_ts_ns
    written_ns: int | None = None
    if result.segments:
        try:
            written_ns = (path / result.segments[-1].name).stat().st_mtime_ns
        except OSError:  # removed by the running service's retention since it was read
            written_ns = None
    return {
        "status": "ok",
        "directory": str(path),
        "segments": [
            {
                "name": s.name,
                "first_seq": s.first_seq,
                "last_seq": s.last_seq,
                "records": s.records,
                "bytes": s.size,
            }
            for s in result.segments
        ],
        "records": result.record_count,
        "first_seq": result.first_seq,
        "last_seq": result.last_seq if result.record_count else None,
        "next_seq": result.next_seq,
        "checkpoint_seq": result.checkpoint_seq,
        "checkpoint_ts": None
        if result.checkpoint_ts_ns is None
        else ns_to_iso(result.checkpoint_ts_ns),
        "records_after_checkpoint": len(result.records),
        "last_record_ts": None if last_ts is None else ns_to_iso(last_ts),
        "newest_segment_written": None if written_ns is None else ns_to_iso(written_ns),
        "newest_segment_written_seconds_ago": None
        if written_ns is None
        else round((time.time_ns() - written_ns) / 1e9, 3),
        "kinds": result.kind_counts,
        "unregistered_kinds": sorted(set(result.kind_counts) - known),
        "torn_tail": None
        if torn is None
        else {
            "file": torn.path.name,
            "line": torn.line,
            "seq": torn.seq,
            "bytes": torn.dropped_bytes,
            "reason": torn.reason,
        },
        "leftover_temporaries": [p.name for p in result.temporaries],
        "other_files": list(result.other_files),
    }


def _print_verify_text(report: dict[str, Any]) -> None:
    echo = click.echo
    echo(f"state store {report['directory']}: OK")
    segments = report["segments"]
    echo(f"segments: {len(segments)}")
    for s in segments:
        span = f"{s['first_seq']}..{s['last_seq']}" if s["records"] else "no complete record"
        echo(f"  {s['name']}  sequences {span}  ({s['records']} records, {s['bytes']} bytes)")
    if report["records"]:
        echo(f"records: {report['records']}, sequences {report['first_seq']}..{report['last_seq']}")
    else:
        echo("records: 0 (empty store)")
    if report["checkpoint_seq"] is not None:
        echo(
            f"last checkpoint: sequence {report['checkpoint_seq']} at {report['checkpoint_ts']} "
            f"(record time), {report['records_after_checkpoint']} record(s) after it; last "
            f"record at {report['last_record_ts']}"
        )
    if report["newest_segment_written"] is not None:
        echo(
            f"newest segment last written: {report['newest_segment_written']} "
            f"({report['newest_segment_written_seconds_ago']:.0f} s ago, wall clock)"
        )
    kinds = ", ".join(f"{k} {n}" for k, n in report["kinds"].items())
    echo(f"kinds: {kinds or '-'}")
    if report["unregistered_kinds"]:
        echo(f"note: kinds outside the product registry: {', '.join(report['unregistered_kinds'])}")
    torn = report["torn_tail"]
    if torn is None:
        echo("torn tail: none")
    else:
        echo(
            f"torn tail: {torn['file']} line {torn['line']} (sequence {torn['seq']}, "
            f"{torn['bytes']} bytes): {torn['reason']}; the service drops it at its next start"
        )
    if report["leftover_temporaries"]:
        echo(
            "leftover files from an interrupted rotation (removed at the next start): "
            + ", ".join(report["leftover_temporaries"])
        )
    echo(f"next sequence: {report['next_seq']}")


def _print_record(record: Record, as_json: bool) -> None:
    from weltklassebot.core.timeutil import ns_to_iso

    payload = json.dumps(record.payload, sort_keys=True, separators=(",", ":"))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "seq": record.seq,
                    "ts_ns": record.ts_ns,
                    "ts": ns_to_iso(record.ts_ns),
                    "kind": record.kind,
                    "payload": record.payload,
                    "v": record.version,
                },
                sort_keys=True,
                separators=(",", ":"),
            )
        )
    else:
        click.echo(f"{record.seq:>10}  {ns_to_iso(record.ts_ns)}  {record.kind:<16}  {payload}")
