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
    from weltklassebot.state.errors import (
        StoreCorrupt,
        StoreIncompatible,
        StoreUnusable,
        repair_command,
    )
    from weltklassebot.state.recovery import recover

    path = resolve_state_dir(directory, config_file)
    try:
        result = recover(path, kinds=None)
    except StoreCorrupt as exc:
        problems = exc.problems or ()
        if as_json:
            print_json(
                {
                    "status": "corrupt",
                    "directory": str(path),
                    "file": exc.path.name,
                    "line": exc.line,
                    "seq": exc.seq,
                    "reason": exc.reason,
                    "problems": [
                        {"file": p.path.name, "line": p.line, "seq": p.seq, "reason": p.reason}
                        for p in problems
                    ],
                    "repair": repair_command(path),
                    "error": exc.message,
                }
            )
        else:
            for problem in problems[1:]:
                click.echo(
                    f"also: {problem.path.name} line {problem.line} (sequence {problem.seq}): "
                    f"{problem.reason}",
                    err=True,
                )
        raise
    except (StoreIncompatible, StoreUnusable) as exc:
        if as_json:
            print_json({"status": "unusable", "directory": str(path), "error": exc.message})
        raise
    if not result.segments and result.mark_seq is None and not (path / "store.mark").exists():
        absent = StoreUnusable(
            path,
            "there is no state store here (no segment files and no store.mark)",
            "Check the path (or WELTKLASSE_STATE_DIR, or [state] dir in the config); the service "
            "creates the store on its first start",
        )
        if as_json:
            print_json({"status": "absent", "directory": str(path), "error": absent.message})
        raise absent
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
    default=None,
    type=click.IntRange(1),
    help="Also remove record SEQ and every record after it (intact ones too).",
)
@click.option("--yes", is_flag=True, help="Apply without asking (needed without a terminal).")
@click.option("--dry-run", is_flag=True, help="Show what the repair would do; change nothing.")
@json_option
@config_option
def repair(
    directory: Path | None,
    truncate_at: int | None,
    yes: bool,
    dry_run: bool,
    as_json: bool,
    config_file: Path | None,
) -> None:
    """Quarantine exactly the damaged or missing records of the store in DIR.

    Shows first what it will remove (sequence numbers, record kinds, loudly any risk transition
    or operator command) and the state that results, then asks (or takes --yes). Intact records
    stay where they are; each removed run is replaced by one `quarantined` record, and a full
    copy of every changed segment goes to DIR/repair-backup-<SEQ>-<UTC time>/ with a
    repair.json. Stop the service first: the repair takes the store's lock.
    """
    from weltklassebot.errors import UsageError
    from weltklassebot.state import repair as store_repair
    from weltklassebot.state.lock import StoreLock

    path = resolve_state_dir(directory, config_file)
    StoreLock.acquire(path, 0o640).release()  # a running service: say so before any plan
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    plan = store_repair.plan_repair(path, stamp, truncate_at=truncate_at)
    report = _plan_report(plan)
    if not plan.needed:
        if as_json:
            print_json({**report, "status": "clean", "applied": False})
        else:
            click.echo(f"state store {path}: nothing to repair; every record verifies.")
        return
    if not as_json:
        _print_plan(report)
    if dry_run:
        if as_json:
            print_json({**report, "status": "planned", "applied": False})
        return
    if not yes:
        if not sys.stdin.isatty():
            if as_json:
                print_json({**report, "status": "planned", "applied": False})
            raise UsageError(
                f"state store {path}: the repair above was not applied (nothing was changed): "
                "there is no terminal to confirm on. Read the plan, then run the same command "
                "with --yes."
            )
        if not click.confirm("Apply this repair?", default=False):
            raise UsageError(f"state store {path}: repair declined; nothing was changed.")
    result = store_repair.apply_repair(plan)
    after = result.after
    if as_json:
        print_json(
            {
                **report,
                "status": "repaired",
                "applied": True,
                "backup": None if result.backup is None else str(result.backup),
                "files": list(result.files),
                "verified": True,
            }
        )
        return
    click.echo(f"backup: {result.backup}")
    click.echo(
        f"repaired and verified: the store now ends at sequence {after.last_seq}; the service "
        f"continues at {after.next_seq}"
    )


def _plan_report(plan: Any) -> dict[str, Any]:
    from weltklassebot.state.repair import removal_json

    before, after = plan.before.result, plan.after.result
    return {
        "directory": str(plan.directory),
        "truncate_at": plan.truncate_at,
        "problems": [
            {"file": p.path.name, "line": p.line, "seq": p.seq, "reason": p.reason}
            for p in plan.before.problems
        ],
        "removals": [removal_json(r) for r in plan.removals],
        "attention": [removal_json(r) for r in plan.attention],
        "backup": str(plan.directory / plan.backup_name),
        "before": {
            "last_seq": before.last_seq,
            "mark_seq": plan.before.mark.seq,
            "risk_state": _risk_state(before, corrupt=bool(plan.before.problems)),
        },
        "after": {
            "last_seq": after.last_seq,
            "next_seq": after.next_seq,
            "mark_seq": plan.mark_seq,
            "checkpoint_seq": after.checkpoint_seq,
            "lost_after_checkpoint": [
                {"first_seq": q.first_seq, "through": q.through} for q in after.lost
            ],
            "state_uncertain": after.state_uncertain,
            "risk_state": _risk_state(after, corrupt=False),
        },
    }


def _risk_state(result: RecoveryResult, *, corrupt: bool) -> str:
    """The risk state a store's records give, as ``risk status`` would show it."""
    from weltklassebot.risk.recovery import recover_risk

    try:
        recovered = recover_risk(
            result.checkpoint, result.records, checkpoint_ts_ns=result.checkpoint_ts_ns
        )
    except (ValueError, KeyError, TypeError):
        return "unknown (the risk records do not parse)"
    state = str(recovered.state.value)
    if result.state_uncertain and state != "HALTED":
        # Records the state depends on were lost: the store recovers fail-safe.
        return "HALTED"
    if corrupt:
        return f"{state} as far as the intact records go (the store refuses to open)"
    return state


def _print_plan(report: dict[str, Any]) -> None:
    echo = click.echo
    echo(f"state store {report['directory']}: repair plan (nothing is changed until you confirm)")
    for problem in report["problems"]:
        echo(f"  found: {problem['file']} line {problem['line']} (sequence {problem['seq']}): "
             f"{problem['reason']}")
    echo("will remove:")
    for r in report["removals"]:
        if r["first_seq"] is None:
            what = f"{r['lines']} line(s), {r['bytes']} bytes, standing for no sequence number"
        elif r["first_seq"] == r["through"]:
            what = f"sequence {r['first_seq']} (1 record)"
        else:
            what = f"sequences {r['first_seq']}..{r['through']} ({r['records']} records)"
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(r["kinds"].items()))
        if r["unknown_kinds"]:
            kinds = (kinds + ", " if kinds else "") + f"{r['unknown_kinds']} of unknown kind"
        where = r["segment"] + (f" line {r['line']}" if r["line"] else "")
        label = "kinds" if r["kinds_verified"] or not kinds else "kinds as read (unverified)"
        echo(f"  - {what} in {where}: {r['reason']}; {label}: {kinds or '-'}")
    for r in report["attention"]:
        echo(
            f"  !!! ATTENTION: {r['segment']} sequence {r['first_seq']}: a RISK TRANSITION or "
            "OPERATOR COMMAND is (or may be) among the removed records"
        )
    before, after = report["before"], report["after"]
    echo("after the repair:")
    echo(f"  the store ends at sequence {after['last_seq']}; the service continues at "
         f"{after['next_seq']} (high-water mark {before['mark_seq']} -> {after['mark_seq']})")
    if after["checkpoint_seq"] is not None:
        echo(f"  last checkpoint: sequence {after['checkpoint_seq']}")
    if after["state_uncertain"]:
        lost = ", ".join(
            f"{q['first_seq']}..{q['through']}" for q in after["lost_after_checkpoint"]
        )
        echo(
            "  !!! records the recovered state depends on are lost"
            + (f" ({lost})" if lost else "")
            + ": the state after them cannot be known, so risk recovers HALTED (fail safe) "
            "until an operator checks positions and runs `risk resume`"
        )
    echo(f"  risk state: {after['risk_state']} (before: {before['risk_state']})")
    echo(f"  backup of everything changed: {report['backup']}")


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
        "mark_seq": result.mark_seq,
        "quarantined": [
            {
                "first_seq": q.first_seq,
                "through": q.through,
                "reason": q.reason,
                "backup": q.backup,
                "after_checkpoint": q.after_checkpoint,
                "checkpoint_only": q.checkpoint_only,
            }
            for q in result.quarantined
        ],
        "state_uncertain": result.state_uncertain,
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
    for q in report["quarantined"]:
        span = str(q["first_seq"]) if q["first_seq"] == q["through"] else (
            f"{q['first_seq']}..{q['through']}"
        )
        echo(f"quarantined by an earlier repair: sequence {span}: {q['reason']} "
             f"(backup: {q['backup']})")
    if report["state_uncertain"]:
        echo("note: records the recovered state depends on were lost; risk recovers HALTED "
             "until an operator checks positions and runs `risk resume`")
    echo(f"acknowledged up to: sequence {report['mark_seq']} (high-water mark)")
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
