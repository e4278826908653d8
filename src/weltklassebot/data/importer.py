"""Turn a CSV export (plain, gzip or single-member zip) into a validated Parquet snapshot.

The importer fixes what is unambiguous and says so (the separator and decimal mark, sorting,
identical duplicate rows, end-of-bar times, which volume column was taken, empty bars, the symbol
from the file name, the price increment from the prices' decimals), warns about what is
suspicious with the rows named (runs of bars copied from another time), and refuses what is
contradictory (one timestamp with two different bars) or under-specified (times without a zone
and no ``--tz``, dates that read two ways). The result is written to a temporary file beside the
target, fsync'd, validated with the same rules as ``snapshot validate`` and only then renamed
into place: on any failure nothing is left behind.

Rows are named by their physical line in the source file (1-based, counting banner and header
lines).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa

from weltklassebot.data.catalog.naming import check_name
from weltklassebot.data.formats import FORMAT_AUTO, FORMATS
from weltklassebot.data.importing.anomalies import COPIED_RUN_MIN
from weltklassebot.data.importing.bars import build_bars
from weltklassebot.data.importing.context import MAX_NAMED_ROWS, ImportContext
from weltklassebot.data.importing.dialect import detect, parse_decimal, parse_sep, sniff_layout
from weltklassebot.data.importing.increment import infer_increment, parse_price_increment
from weltklassebot.data.importing.source import HEAD_BYTES, open_source, read_head
from weltklassebot.data.importing.times import check_date_format
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
               fmt: str = FORMAT_AUTO, tz: str | None = None, overwrite: bool = False,
               sep: str | None = None, decimal: str | None = None, dayfirst: bool = False,
               date_format: str | None = None,
               price_increment: str | Decimal | None = None) -> ImportResult:
    """Import ``src`` and write a validated snapshot at ``out`` (a file path).

    ``sep`` and ``decimal`` override the detected separator and decimal mark; ``dayfirst``
    reads ``01/02/2024`` as the 1st of February; ``date_format`` (strftime codes) replaces
    time-form detection; ``price_increment`` replaces the one inferred from the prices.
    """
    check_name(name)
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    sep = parse_sep(sep) if sep is not None else None
    decimal = parse_decimal(decimal) if decimal is not None else None
    if date_format is not None:
        if dayfirst:
            raise UsageError("--dayfirst and --date-format both say how to read dates; pass one "
                             "(the format's %d and %m already fix the order).")
        check_date_format(date_format)
    increment = parse_price_increment(str(price_increment)) if price_increment is not None \
        else None
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
    dialect = detect(head, sep=sep, decimal=decimal, fmt=fmt)
    try:
        layout = sniff_layout(head, fmt, dialect)
    except UnusableInput as exc:
        raise UnusableInput(f"{src}: {exc.message}") from exc
    ctx = ImportContext(src=src, layout=layout, first_line=layout.skip_lines + 1,
                        decimal=dialect.decimal, dayfirst=dayfirst, date_format=date_format)
    if compression != "none":
        ctx.fixes.append(f"read {compression}-compressed input")
    if (dialect.sep, dialect.decimal) != (",", ".") or dialect.sep_from != "detected" or \
            dialect.decimal_from != "detected":
        ctx.fixes.append(f"read as {dialect.describe()}")
    ctx.extra["separator"] = dialect.sep
    ctx.extra["decimal_mark"] = dialect.decimal
    if layout.banner:
        ctx.fixes.append(f"skipped {len(layout.banner)} banner line(s) above the "
                         f"{'header' if layout.header else 'data'}: "
                         + " | ".join(repr(b.strip()[:80]) for b in layout.banner))
    ctx.fixes.extend(layout.notes)
    ctx.extra["format"] = layout.format
    ctx.extra["source_sha256"] = sha256_file(src)

    if layout.kind == KIND_BARS:
        table, symbols = build_bars(opener, ctx, symbol, tz)
        prices = ["open", "high", "low", "close"]
    else:
        table, symbols = build_trades(opener, ctx, symbol, tz)
        prices = ["price"]
    increment_text = _settle_increment(table, prices, ctx, increment)
    return write_snapshot(table, ctx, out, name=name, symbols=symbols, overwrite=overwrite,
                          price_increment=increment_text)


def _settle_increment(table: pa.Table, columns: list[str], ctx: ImportContext,
                      given: Decimal | None) -> str | None:
    """The price increment for the metadata: ``--price-increment``, else the prices' decimals."""
    if given is not None:
        text = format(given, "f")
        ctx.fixes.append(f"price increment: {text} (--price-increment)")
        ctx.extra["price_increment_from"] = "--price-increment"
        return text
    values = [np.asarray(table.column(c).to_numpy(), dtype=np.float64) for c in columns]
    inferred, places = infer_increment(values)
    what = "open/high/low/close" if len(columns) > 1 else "price"
    if inferred is None:
        ctx.extra["price_increment_from"] = "none: too many decimals"
        ctx.warnings.append(
            f"no price increment inferred: the {what} values need "
            + (f"{places} decimals, more than" if places is not None else "more decimals than")
            + " whole ticks of a float64 price can hold; the backtester's default (1e-8) "
            "applies. Pass --price-increment (or set [data] price_increment) to the step "
            "prices really move in."
        )
        return None
    text = format(inferred, "f")
    ctx.fixes.append(
        f"price increment: {text}, inferred from the prices (the most decimals any {what} "
        f"value has is {places}); pass --price-increment to set another"
    )
    ctx.extra["price_increment_from"] = "decimals"
    return text
