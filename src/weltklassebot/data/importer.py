"""Turn a CSV export (plain, gzip or single-member zip) into a validated Parquet snapshot.

The importer fixes what is unambiguous and says so (sorting, identical duplicate rows, end-of-bar
times, which volume column was taken, empty bars), warns about what is suspicious with the rows
named (runs of bars copied from another time), and refuses what is contradictory (one timestamp
with two different bars) or under-specified (times without a zone and no ``--tz``). The result is
written to a temporary file beside the target, fsync'd, validated with the same rules as
``snapshot validate`` and only then renamed into place: on any failure nothing is left behind.

Rows are named by their physical line in the source file (1-based, counting banner and header
lines).
"""

from __future__ import annotations

from pathlib import Path

from weltklassebot.data.catalog.naming import check_name
from weltklassebot.data.formats import FORMAT_AUTO, FORMATS, sniff
from weltklassebot.data.importing.anomalies import COPIED_RUN_MIN
from weltklassebot.data.importing.bars import build_bars
from weltklassebot.data.importing.context import MAX_NAMED_ROWS, ImportContext
from weltklassebot.data.importing.source import HEAD_BYTES, open_source, read_head
from weltklassebot.data.importing.trades import build_trades
from weltklassebot.data.importing.writer import (
    ROW_GROUP_ROWS,
    ImportResult,
    json_loads,
    write_snapshot,
)
from weltklassebot.data.importing.zones import check_tz
from weltklassebot.data.schema import KIND_BARS
from weltklassebot.errors import UnusableInput, UsageError
from weltklassebot.fsutil import sha256_file

__all__ = [
    "COPIED_RUN_MIN",
    "HEAD_BYTES",
    "MAX_NAMED_ROWS",
    "ROW_GROUP_ROWS",
    "ImportResult",
    "check_name",
    "default_output",
    "import_csv",
    "json_loads",
]


def default_output(staging_dir: Path, name: str) -> Path:
    return staging_dir / f"{name}.parquet"


def import_csv(src: Path, *, name: str, out: Path, symbol: str | None = None,
               fmt: str = FORMAT_AUTO, tz: str | None = None,
               overwrite: bool = False) -> ImportResult:
    """Import ``src`` and write a validated snapshot at ``out`` (a file path)."""
    check_name(name)
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    src = Path(src)
    if not src.exists():
        raise UnusableInput(f"source file {src} does not exist. Check the path.")
    if src.is_dir():
        raise UnusableInput(f"source {src} is a directory; pass one CSV file.")
    try:
        size = src.stat().st_size
    except OSError as exc:
        raise UnusableInput(f"source file {src} cannot be read: {exc.strerror}.") from exc
    if size == 0:
        raise UnusableInput(f"source file {src} is empty (0 bytes). Download or export it again.")
    if out.exists() and not overwrite:
        raise UsageError(
            f"{out} already exists and was left untouched. Choose another --out or --name, or "
            "pass --force to replace it."
        )
    if tz is not None:
        check_tz(tz)
    try:
        opener, compression = open_source(src)
    except PermissionError as exc:
        raise UnusableInput(f"source file {src} cannot be read: permission denied.") from exc
    head = read_head(opener, src)
    try:
        layout = sniff(head, fmt)
    except UnusableInput as exc:
        raise UnusableInput(f"{src}: {exc.message}") from exc
    ctx = ImportContext(src=src, layout=layout, first_line=layout.skip_lines + 1)
    if compression != "none":
        ctx.fixes.append(f"read {compression}-compressed input")
    if layout.banner:
        ctx.fixes.append(f"skipped {len(layout.banner)} banner line(s) above the "
                         f"{'header' if layout.header else 'data'}: "
                         + " | ".join(repr(b.strip()[:80]) for b in layout.banner))
    ctx.fixes.extend(layout.notes)
    ctx.extra["format"] = layout.format
    ctx.extra["source_sha256"] = sha256_file(src)

    if layout.kind == KIND_BARS:
        table, symbols = build_bars(opener, ctx, symbol, tz)
    else:
        table, symbols = build_trades(opener, ctx, symbol, tz)
    return write_snapshot(table, ctx, out, name=name, symbols=symbols, overwrite=overwrite)

