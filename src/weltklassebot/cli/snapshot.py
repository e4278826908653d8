"""``python -m cli snapshot``: import, validate, promote, list, rollback, prune, verify, repair,
history.

Every sub-command takes ``--dir`` (the snapshot directory), ``--config`` and ``--json``. The
snapshot directory resolves as ``--dir`` > ``WELTKLASSE_SNAPSHOT_DIR`` > ``[snapshots]
snapshot_dir`` in the TOML config (``--config`` or ``WELTKLASSE_CONFIG``) > the default
``/var/lib/weltklassebot/snapshots/``. Heavy modules are imported inside the command bodies.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from weltklassebot.errors import InvalidSnapshot, VerdictFailed

F = TypeVar("F", bound=Callable[..., Any])


def _dir_option(func: F) -> F:
    return click.option(
        "--dir", "snapshot_dir", metavar="DIR", default=None,
        help="Snapshot directory (default: $WELTKLASSE_SNAPSHOT_DIR, the config's "
             "[snapshots] snapshot_dir, else /var/lib/weltklassebot/snapshots/).",
    )(func)


def _common(func: F) -> F:
    func = click.option("--json", "as_json", is_flag=True,
                        help="Print a JSON document instead of text.")(func)
    func = click.option("--config", "config", metavar="FILE", default=None,
                        help="TOML config file (default: $WELTKLASSE_CONFIG).")(func)
    return _dir_option(func)


def _lock_option(func: F) -> F:
    return click.option(
        "--lock-timeout", "lock_timeout", type=float, default=None, metavar="SECONDS",
        help="How long to wait for another promote/rollback/prune to finish (default 30; "
             "$WELTKLASSE_LOCK_TIMEOUT; [snapshots] lock_timeout_s).",
    )(func)


def _command_line() -> str:
    argv = sys.argv[1:]
    return shlex.join(["python", "-m", "cli", *argv])


def _emit_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=True, default=str))


def _note(text: str) -> None:
    click.echo(f"note: {text}", err=True)


def _warn(text: str) -> None:
    click.echo(f"warning: {text}", err=True)


def _catalog(settings: Any) -> Any:
    from weltklassebot.data.catalog import Catalog

    return Catalog(settings.snapshot_dir, origin=settings.snapshot_dir_from,
                   command=_command_line(), on_wait=_note)


def _missing_parents(target: Path) -> list[Path]:
    """The folders above ``target`` that do not exist yet (the importer creates them)."""
    missing = []
    for parent in target.absolute().parents:
        if parent.exists():
            break
        missing.append(parent)
    return list(reversed(missing))


def _adopt_created(folders: list[Path], file: Path) -> None:
    """Give what this command created the owner of the folder that holds it.

    Run as root in a directory that belongs to the service's user, the staging folder and the
    snapshot would otherwise be root's and the service could not replace them.
    """
    from weltklassebot.fsutil import adopt_directory_owner

    for folder in folders:
        if folder.exists():
            adopt_directory_owner(folder)
    if file.exists():
        adopt_directory_owner(file)


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "-"


def _ref_text(ref: dict[str, Any] | None) -> str:
    if not ref:
        return "(none)"
    return f"{ref.get('file')} (sha256 {ref.get('sha256') or 'unknown'})"


@click.group(name="snapshot", help="Manage market-data snapshots (import, validate, promote, "
                                   "list, rollback, prune, verify, repair, history).")
def command() -> None:
    pass


# ---- import ----------------------------------------------------------------------------------


@command.command(name="import")
@click.argument("src", metavar="SRC")
@click.option("--name", required=True, help="Snapshot name (letters, digits, '.', '_', '-').")
@click.option("--symbol", default=None,
              help="Instrument; written as a symbol column (default: the file's symbol "
                   "column, else the file name's first word, e.g. BTCUSDT-1m.csv -> BTCUSDT).")
@click.option("--format", "fmt", default="auto", show_default=True,
              type=click.Choice(["auto", "ohlcv-csv", "binance-klines", "ninjatrader",
                                 "trades-csv"]),
              help="Source layout.")
@click.option("--sep", default=None, metavar="CHAR",
              help="Column separator: ',' ';' '|' or 'tab' (default: detected).")
@click.option("--decimal", default=None, type=click.Choice([".", ","]),
              help="Decimal mark of the numbers (default: detected).")
@click.option("--dayfirst", is_flag=True,
              help="Read dates like 01/02/2024 as day/month/year (dd.mm.yyyy needs no flag).")
@click.option("--date-format", "date_format", default=None, metavar="FORMAT",
              help="Layout of the times in strftime codes, e.g. '%d.%m.%Y %H:%M' "
                   "(default: detected).")
@click.option("--price-increment", "price_increment", default=None, metavar="STEP",
              help="Price increment for the metadata, e.g. 0.01 (default: from the prices' "
                   "decimals).")
@click.option("--tz", default=None, metavar="ZONE",
              help="Zone of zone-less times (IANA name, e.g. UTC, America/New_York).")
@click.option("--out", default=None, metavar="PATH",
              help="Output file or folder (default: the staging folder).")
@click.option("--force", is_flag=True, help="Replace an existing output file.")
@_common
def import_(src: str, name: str, symbol: str | None, fmt: str, sep: str | None,
            decimal: str | None, dayfirst: bool, date_format: str | None,
            price_increment: str | None, tz: str | None, out: str | None, force: bool,
            snapshot_dir: str | None, config: str | None, as_json: bool) -> None:
    """Turn a CSV (plain, .gz or single-file .zip) into a validated Parquet snapshot.

    The snapshot goes to the staging folder (./staging/, or $WELTKLASSE_STAGING_DIR, or the
    config's [snapshots] staging_dir; with --dir: DIR/staging/) unless --out says otherwise.
    Prints the written path.
    """
    from weltklassebot.data.catalog import resolve_settings
    from weltklassebot.data.importer import check_name, import_csv

    check_name(name)
    settings = resolve_settings(config=config)
    if out is not None:
        target = Path(out)
        if target.is_dir() or out.endswith(("/", "\\")):
            target = target / f"{name}.parquet"
    elif snapshot_dir is not None:
        target = Path(snapshot_dir) / "staging" / f"{name}.parquet"
    else:
        target = settings.staging_dir / f"{name}.parquet"
    made = _missing_parents(target)
    result = import_csv(Path(src), name=name, out=target, symbol=symbol, fmt=fmt, tz=tz,
                        overwrite=force, sep=sep, decimal=decimal, dayfirst=dayfirst,
                        date_format=date_format, price_increment=price_increment)
    _adopt_created(made, Path(result.path))
    if as_json:
        _emit_json(result.to_json_dict())
        return
    for fix in result.fixes:
        _note(fix)
    for warning in result.warnings:
        _warn(warning)
    click.echo(f"imported {result.rows:,} {result.kind} ({result.format}) from {src}; "
               f"sha256 {result.sha256}", err=True)
    click.echo(str(result.path))


# ---- validate --------------------------------------------------------------------------------


@command.command(name="validate")
@click.argument("path", required=False, metavar="PATH")
@click.option("--gap-intervals", default=3, show_default=True, type=click.IntRange(min=1),
              help="Warn about gaps longer than this many bar intervals.")
@click.option("--max-examples", default=5, show_default=True, type=click.IntRange(min=1),
              help="Rows shown per broken rule.")
@_common
def validate(path: str | None, gap_intervals: int, max_examples: int,
             snapshot_dir: str | None, config: str | None, as_json: bool) -> None:
    """Check a snapshot against every rule; list all violations, counts and first rows.

    PATH defaults to latest.parquet in the snapshot directory. Exit 0 valid, 1 invalid,
    2 unusable (missing, not Parquet, zone-less ts, ...).
    """
    from weltklassebot.core.timeutil import format_duration, ns_to_iso
    from weltklassebot.data.catalog import LATEST, resolve_settings
    from weltklassebot.data.validate import inspect_snapshot

    if path is None:
        settings = resolve_settings(snapshot_dir=snapshot_dir, config=config)
        target = settings.snapshot_dir / LATEST
    else:
        target = Path(path)
        if snapshot_dir is not None and not target.exists() and "/" not in path:
            target = Path(snapshot_dir) / path
    report = inspect_snapshot(target, max_examples=max_examples, gap_intervals=gap_intervals)
    resolved = target.resolve() if target.is_symlink() else target
    if as_json:
        document = report.to_json_dict()
        document["resolved_path"] = str(resolved)
        _emit_json(document)
    else:
        verdict = "VALID" if report.ok else "INVALID"
        click.echo(f"{verdict}: {target}" + (f" -> {resolved}" if resolved != target else ""))
        click.echo(f"  kind: {report.kind}   rows: {report.rows:,}   symbols: "
                   f"{', '.join(report.symbols) or '(single instrument, no symbol column)'}")
        if report.ts_min_ns is not None and report.ts_max_ns is not None:
            click.echo(f"  time range: {ns_to_iso(report.ts_min_ns)} .. "
                       f"{ns_to_iso(report.ts_max_ns)}")
        if report.interval_ns:
            click.echo("  bar interval: " + ", ".join(
                f"{format_duration(v)}" + (f" ({k})" if k != "-" else "")
                for k, v in sorted(report.interval_ns.items())))
        for violation in report.violations:
            click.echo(f"  VIOLATION {violation.rule}: {violation.description}: "
                       f"{violation.counted()}; first: {violation.where()}")
        for warning in report.warnings:
            click.echo(f"  warning: {warning}")
        if report.facts.get("metadata_unknown_keys"):
            click.echo("  metadata keys not read (kept as provenance): "
                       + ", ".join(report.facts["metadata_unknown_keys"]))
    if not report.ok:
        first = report.violations[0]
        raise InvalidSnapshot(
            f"snapshot {target} is invalid: {len(report.violations)} rule(s) broken, first "
            f"'{first.rule}' ({first.description}) in {first.counted()}, at {first.where(1)}. "
            "Fix the source and re-import it with `python -m cli snapshot import`."
        )


# ---- promote ---------------------------------------------------------------------------------


@command.command(name="promote")
@click.argument("path", metavar="PATH")
@click.option("--name", default=None,
              help="Snapshot name (default: the file's metadata, else its file name).")
@_lock_option
@_common
def promote(path: str, name: str | None, lock_timeout: float | None, snapshot_dir: str | None,
            config: str | None, as_json: bool) -> None:
    """Validate PATH, copy it into the snapshot directory and point latest.parquet at it."""
    from weltklassebot.data.catalog import resolve_settings

    settings = resolve_settings(snapshot_dir=snapshot_dir, config=config,
                                lock_timeout_s=lock_timeout)
    change = _catalog(settings).promote(Path(path), name=name,
                                        timeout_s=settings.lock_timeout_s)
    if as_json:
        _emit_json({"dir": str(settings.snapshot_dir), **change.to_json_dict()})
        return
    for note in change.notes:
        _note(note)
    for warning in change.details.get("validation_warnings", []):
        _warn(warning)
    if not change.changed:
        click.echo(f"unchanged: latest.parquet -> {_ref_text(change.new)}")
        return
    new = change.new or {}
    click.echo(f"promoted {path} -> {settings.snapshot_dir / str(new.get('file'))} "
               f"({change.details.get('rows', 0):,} rows)")
    click.echo(f"latest.parquet: {_ref_text(change.old)} -> {_ref_text(change.new)}")


# ---- list ------------------------------------------------------------------------------------


@command.command(name="list")
@_common
def list_(snapshot_dir: str | None, config: str | None, as_json: bool) -> None:
    """Table of snapshots: file, created, rows, symbols, time range, SHA-256, latest."""
    from weltklassebot.data.catalog import resolve_settings

    settings = resolve_settings(snapshot_dir=snapshot_dir, config=config)
    catalog = _catalog(settings)
    catalog.require_dir(writable=False)
    state = catalog.latest()
    rows = []
    for entry in catalog.entries():
        info = catalog.describe(entry)
        info["latest"] = state.entry is not None and state.entry.file == entry.file
        rows.append(info)
    if as_json:
        _emit_json({"dir": str(settings.snapshot_dir), "latest": state.target,
                    "latest_kind": state.kind, "latest_description": state.describe(),
                    "latest_ok": state.entry is not None and state.sidecar_problem() is None,
                    "snapshots": rows})
        return
    if not rows:
        click.echo(f"no snapshots in {settings.snapshot_dir}")
    else:
        table = [("", "FILE", "CREATED", "ROWS", "SYMBOLS", "FROM", "TO", "SHA256")]
        for info in rows:
            table.append((
                "*" if info["latest"] else "",
                info["file"],
                info["created"],
                f"{info['rows']:,}" if "rows" in info else "?",
                ",".join(info.get("symbols") or []) or "-",
                info.get("ts_min") or "-",
                info.get("ts_max") or "-",
                _short(info.get("sha256")),
            ))
        widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
        for r in table:
            click.echo("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip())
        for info in rows:
            if "error" in info:
                _warn(f"{info['file']}: {info['error']}")
    if state.entry is not None:
        click.echo(f"* latest.parquet -> {state.target}")
        sidecar = state.sidecar_problem()
        if sidecar:
            _warn(f"{sidecar}; `python -m cli snapshot verify` checks every snapshot")
    elif state.exists:
        _warn(f"{state.describe()}; repair with `python -m cli snapshot rollback --to FILE` "
              "(anything found in its place is moved to quarantine/, not deleted)")
    elif rows:
        _warn(f"latest.parquet does not exist although {len(rows)} snapshot(s) are here; "
              "`python -m cli snapshot rollback --to FILE` sets it")
    else:
        click.echo("latest.parquet: not set (no snapshot promoted yet)")


# ---- rollback --------------------------------------------------------------------------------


@command.command(name="rollback")
@click.option("--to", "to", default=None, metavar="FILE",
              help="Snapshot file to point latest.parquet at (default: the one before it).")
@_lock_option
@_common
def rollback(to: str | None, lock_timeout: float | None, snapshot_dir: str | None,
             config: str | None, as_json: bool) -> None:
    """Point latest.parquet back to the previous (or the named) snapshot, atomically."""
    from weltklassebot.data.catalog import resolve_settings

    settings = resolve_settings(snapshot_dir=snapshot_dir, config=config,
                                lock_timeout_s=lock_timeout)
    change = _catalog(settings).rollback(to=to, timeout_s=settings.lock_timeout_s)
    if as_json:
        _emit_json({"dir": str(settings.snapshot_dir), **change.to_json_dict()})
        return
    for note in change.notes:
        _note(note)
    if not change.changed:
        click.echo(f"unchanged: latest.parquet -> {_ref_text(change.new)}")
        return
    click.echo(f"rolled back latest.parquet: {_ref_text(change.old)} -> {_ref_text(change.new)}")


# ---- prune -----------------------------------------------------------------------------------


@command.command(name="prune")
@click.option("--keep", required=True, type=int, metavar="N",
              help="Previous snapshots to keep (at least 3).")
@click.option("--dry-run", is_flag=True, help="Show what would be deleted; delete nothing.")
@_lock_option
@_common
def prune(keep: int, dry_run: bool, lock_timeout: float | None, snapshot_dir: str | None,
          config: str | None, as_json: bool) -> None:
    """Delete the oldest snapshots beyond N previous ones; never latest or anything newer."""
    from weltklassebot.data.catalog import resolve_settings

    settings = resolve_settings(snapshot_dir=snapshot_dir, config=config,
                                lock_timeout_s=lock_timeout)
    change = _catalog(settings).prune(keep=keep, timeout_s=settings.lock_timeout_s,
                                      dry_run=dry_run)
    if as_json:
        _emit_json({"dir": str(settings.snapshot_dir), **change.to_json_dict()})
        return
    for note in change.notes:
        _note(note)
    verb = "would delete" if dry_run else "deleted"
    unverified = change.details.get("unverified") or []
    if not change.removed:
        click.echo(f"nothing to prune: at most {keep} snapshot(s) older than latest.parquet "
                   f"({_ref_text(change.new)})")
        return
    for ref in change.removed:
        click.echo(f"{verb} {ref['file']} (sha256 {ref.get('sha256') or 'unknown'})")
    click.echo(f"{verb} {len(change.removed)} snapshot(s); kept latest.parquet "
               f"({(change.new or {}).get('file')}), everything newer and {keep} previous "
               "verified snapshot(s)"
               + (f"; {len(unverified)} unverified left in place" if unverified else ""))


# ---- verify ----------------------------------------------------------------------------------


@command.command(name="verify")
@_common
def verify(snapshot_dir: str | None, config: str | None, as_json: bool) -> None:
    """Re-hash every snapshot against its sidecar; check latest.parquet and the history.

    Exit 0 when every snapshot matches its sidecar, latest.parquet links to one of them and
    the history is whole (no edited, torn or removed records); 1 otherwise, naming the repair.
    """
    from weltklassebot.data.catalog import resolve_settings

    settings = resolve_settings(snapshot_dir=snapshot_dir, config=config)
    result = _catalog(settings).verify()
    if as_json:
        _emit_json(result)
    else:
        for info in result["files"]:
            click.echo(f"{info['status']:<11} {info['file']}  {_short(info['sha256'])}")
        latest = result["latest"]
        if latest["ok"]:
            click.echo(f"latest.parquet -> {latest['target']}")
        elif latest["ok"] is not None:
            click.echo(f"{latest['description']}  (BROKEN)")
        for problem, fix in zip(result["problems"], result["fixes"], strict=True):
            click.echo(f"PROBLEM: {problem}  [fix: {fix}]")
        for warning in result["warnings"]:
            _warn(warning)
        if result["quarantine"]:
            _note(f"{len(result['quarantine'])} item(s) kept in "
                  f"{settings.snapshot_dir / 'quarantine'} (inspect, then delete by hand)")
        if result["ok"]:
            click.echo(f"OK: {len(result['files'])} snapshot(s) in {settings.snapshot_dir} match "
                       "their recorded SHA-256; latest.parquet and the history are intact")
    if not result["ok"]:
        problems = result["problems"]
        fixes = list(dict.fromkeys(result["fixes"]))
        raise VerdictFailed(
            f"verify found {len(problems)} problem(s) in {settings.snapshot_dir}, first: "
            f"{problems[0]}. Repair: " + " and ".join(f"`{fix}`" for fix in fixes)
            + " (docs/snapshots.md, Repair); nothing is deleted, damaged items go to "
            "quarantine/."
        )


# ---- repair ----------------------------------------------------------------------------------


@command.command(name="repair")
@click.option("--yes", is_flag=True, help="Do it without asking (needed off a terminal).")
@click.option("--dry-run", is_flag=True, help="Only print what would be done.")
@_lock_option
@_common
def repair(yes: bool, dry_run: bool, lock_timeout: float | None, snapshot_dir: str | None,
           config: str | None, as_json: bool) -> None:
    """Move whatever makes verify fail to quarantine/ and record it; delete nothing.

    Cuts a torn final history line into quarantine/, moves a damaged history (starting a new
    one that names it), a regular file at latest.parquet, stray sidecars and every snapshot
    that fails its check except the one in use. Prints the plan first; asks on a terminal.
    """
    from weltklassebot.data.catalog import resolve_settings
    from weltklassebot.errors import UsageError

    settings = resolve_settings(snapshot_dir=snapshot_dir, config=config,
                                lock_timeout_s=lock_timeout)
    catalog = _catalog(settings)
    plan = catalog.repair_plan()
    if not as_json:
        if not plan:
            click.echo(f"nothing to repair in {settings.snapshot_dir}")
        for step in plan:
            click.echo(f"plan: {step}")
    if dry_run or not plan:
        if as_json:
            _emit_json({"dir": str(settings.snapshot_dir), "plan": plan, "done": False})
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("snapshot repair changes the directory and is not on a terminal "
                             "to ask; read the plan (`--dry-run`) and add --yes to go ahead.")
        if not click.confirm("go ahead?", default=False, err=True):
            raise UsageError("repair not confirmed; nothing was changed.")
    change = catalog.repair(timeout_s=settings.lock_timeout_s)
    result = catalog.verify()
    if as_json:
        _emit_json({"dir": str(settings.snapshot_dir), "plan": plan, "done": True,
                    **change.to_json_dict(), "verify": result})
    else:
        for note in change.notes:
            click.echo(f"done: {note}")
        if result["ok"]:
            click.echo(f"OK: {settings.snapshot_dir} verifies")
        for problem, fix in zip(result["problems"], result["fixes"], strict=True):
            click.echo(f"still needed: {problem}  [fix: {fix}]")
    if not result["ok"]:
        raise VerdictFailed(
            f"repair kept everything it moved in quarantine/, but {len(result['problems'])} "
            f"problem(s) need an operator's choice, first: {result['problems'][0]}. Run "
            f"`{result['fixes'][0]}`."
        )


# ---- history ---------------------------------------------------------------------------------


@command.command(name="history")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Show only the last N records.")
@_common
def history(limit: int | None, snapshot_dir: str | None, config: str | None,
            as_json: bool) -> None:
    """Every promote, rollback and prune: who, when, old -> new (append-only)."""
    from weltklassebot.data.catalog import resolve_settings

    settings = resolve_settings(snapshot_dir=snapshot_dir, config=config)
    catalog = _catalog(settings)
    catalog.require_dir(writable=False)
    records = catalog.history()
    if limit is not None:
        records = records[-limit:]
    if as_json:
        _emit_json({"dir": str(settings.snapshot_dir), "records": records})
        return
    if not records:
        click.echo(f"no history in {settings.snapshot_dir}")
        return
    for record in records:
        action = record.get("action", "?")
        head = f"{record.get('when', '?')}  {record.get('who', '?')}@{record.get('host', '?')}  " \
               f"{action}"
        if action == "unreadable":
            click.echo(f"line {record.get('line')}: unreadable record")
            continue
        if action in ("repair", "history_restart"):
            moved = record.get("quarantined") or []
            click.echo(f"{head}  " + ("; ".join(
                f"{q.get('file')} -> {q.get('to')}" for q in moved)
                or "; ".join(record.get("notes") or [])))
            continue
        if action == "prune":
            removed = record.get("removed") or []
            click.echo(f"{head}  removed {len(removed)}: "
                       + ", ".join(str(r.get('file')) for r in removed)
                       + f"  (latest {(record.get('new') or {}).get('file')})")
            continue
        click.echo(f"{head}  {_ref_text(record.get('old'))} -> {_ref_text(record.get('new'))}")
