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

import dataclasses
import gzip
import io
import os
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from weltklassebot.core.timeutil import NS_PER_DAY, NS_PER_SECOND, format_duration, ns_to_iso
from weltklassebot.data.formats import (
    FORMAT_AUTO,
    FORMATS,
    Layout,
    normalise,
    sniff,
)
from weltklassebot.data.schema import KIND_BARS, META_KEY, SnapshotMeta
from weltklassebot.data.validate import ValidationReport, Violation, inspect_snapshot
from weltklassebot.errors import InvalidSnapshot, RuntimeFailure, UnusableInput, UsageError
from weltklassebot.fsutil import fsync_dir, sha256_file

HEAD_BYTES = 256 * 1024
ROW_GROUP_ROWS = 1 << 20
MAX_NAMED_ROWS = 5
COPIED_RUN_MIN = 2
"""Shortest run of consecutive bars repeated from another time that is warned about."""

_YEAR_1900_NS = -2_208_988_800 * NS_PER_SECOND
_YEAR_2100_NS = 4_102_444_800 * NS_PER_SECOND
_QUOTE_CURRENCIES: tuple[str, ...] = (
    "USDT", "USDC", "BUSD", "TUSD", "FDUSD", "DAI", "USD", "EUR", "GBP", "JPY", "CHF", "AUD",
    "CAD", "KRW", "TRY", "BRL", "BTC", "ETH", "BNB",
)
_BANNER_UTC = re.compile(r"\b(utc|gmt)\b", re.IGNORECASE)
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass
class ImportResult:
    """What an import wrote and everything it fixed or found suspicious."""

    path: Path
    source: Path
    kind: str
    format: str
    rows: int
    source_rows: int
    symbols: tuple[str, ...]
    meta: SnapshotMeta
    fixes: list[str]
    warnings: list[str]
    report: ValidationReport
    sha256: str

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "source": str(self.source),
            "kind": self.kind,
            "format": self.format,
            "rows": self.rows,
            "source_rows": self.source_rows,
            "symbols": list(self.symbols),
            "sha256": self.sha256,
            "fixes": self.fixes,
            "warnings": self.warnings,
            "metadata": json_loads(self.meta.to_json()),
            "validation": self.report.to_json_dict(),
        }


def json_loads(text: str) -> Any:
    import json

    return json.loads(text)


@dataclass
class _Context:
    """Running state of one import: source description and what has been reported."""

    src: Path
    layout: Layout
    first_line: int
    fixes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def lines(self, positions: np.ndarray | list[int], line_of: np.ndarray | None = None) -> str:
        values = [int(p) for p in list(positions)[:MAX_NAMED_ROWS]]
        if line_of is not None:
            values = [int(line_of[p]) for p in values]
        else:
            values = [self.first_line + p for p in values]
        text = ", ".join(str(v) for v in values)
        more = len(positions) - len(values)
        return f"line{'s' if len(values) > 1 else ''} {text}" + (f" and {more} more"
                                                                  if more > 0 else "")


# --------------------------------------------------------------------------------------------
# Source file access


def _open_binary(src: Path) -> tuple[Callable[[], IO[bytes]], str]:
    """A factory for fresh binary streams over the (decompressed) data, and its compression."""
    with src.open("rb") as fh:
        magic = fh.read(4)
    if magic[:2] == b"\x1f\x8b":
        return (lambda: cast(IO[bytes], gzip.open(src, "rb"))), "gzip"
    if magic == b"PK\x03\x04":
        try:
            archive = zipfile.ZipFile(src)
        except zipfile.BadZipFile as exc:
            raise UnusableInput(f"{src} looks like a zip archive but cannot be opened: {exc}.") \
                from exc
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) != 1:
            raise UnusableInput(
                f"{src} is a zip archive with {len(members)} files; the importer reads archives "
                "holding exactly one CSV file. Extract the one you want and import that."
            )
        member = members[0]
        return (lambda: archive.open(member)), f"zip ({member.filename})"
    if magic == b"PAR1":
        raise UnusableInput(
            f"{src} is already a Parquet file. Check it with `python -m cli snapshot validate "
            f"{src}` and promote it with `python -m cli snapshot promote {src}`."
        )
    return (lambda: src.open("rb")), "none"


def _read_head(opener: Callable[[], IO[bytes]], src: Path) -> str:
    try:
        with opener() as stream:
            raw = stream.read(HEAD_BYTES)
            more = bool(stream.read(1))
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UnusableInput(f"{src} cannot be read: {exc}. Is the file complete?") from exc
    if more and b"\n" in raw:
        raw = raw[: raw.rindex(b"\n") + 1]
    if b"\x00" in raw:
        raise UnusableInput(f"{src} is a binary file, not a CSV text export.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _scan_lines(opener: Callable[[], IO[bytes]], layout: Layout) -> Iterator[tuple[int, list[str]]]:
    """Physical line number (1-based) and cells of every data line; for naming bad rows."""
    import csv

    with opener() as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")
        for number, line in enumerate(text, start=1):
            if number <= layout.skip_lines or not line.strip():
                continue
            cells = next(csv.reader([line], delimiter=layout.delimiter), [])
            yield number, [c.strip() for c in cells]


# --------------------------------------------------------------------------------------------
# Reading the table


def _read_table(opener: Callable[[], IO[bytes]], ctx: _Context,
                text_columns: set[int], int_columns: set[int]) -> pa.Table:
    layout = ctx.layout
    needed = sorted(set(layout.ts_columns) | set(layout.fields.values())
                    | set(layout.volume_candidates))
    names = [f"c{i}" for i in range(layout.ncols)]
    types: dict[str, pa.DataType] = {}
    for i in needed:
        if i in text_columns:
            types[names[i]] = pa.string()
        elif i in int_columns:
            types[names[i]] = pa.int64()
        else:
            types[names[i]] = pa.float64()
    try:
        with opener() as stream:
            return pacsv.read_csv(
                stream,
                read_options=pacsv.ReadOptions(skip_rows=layout.skip_lines, column_names=names,
                                               block_size=1 << 24),
                parse_options=pacsv.ParseOptions(delimiter=layout.delimiter),
                convert_options=pacsv.ConvertOptions(
                    column_types=types, include_columns=[names[i] for i in needed],
                    strings_can_be_null=False,
                ),
            )
    except pa.ArrowInvalid as exc:
        raise UnusableInput(_explain_csv_error(str(exc), opener, ctx)) from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UnusableInput(
            f"{ctx.src} cannot be read to the end ({exc}); the file is damaged or truncated. "
            "Download or export it again."
        ) from exc


def _explain_csv_error(message: str, opener: Callable[[], IO[bytes]], ctx: _Context) -> str:
    layout = ctx.layout
    if "Expected" in message and "columns" in message:
        for number, cells in _scan_lines(opener, layout):
            if len(cells) != layout.ncols:
                return (f"{ctx.src} line {number} has {len(cells)} column(s) where the header "
                        f"has {layout.ncols}: {','.join(cells)[:120]!r}. Fix or remove that line "
                        "(a truncated download often ends in a partial line) and import again.")
        return f"{ctx.src} is not a well-formed CSV table: {message}."
    match = re.search(r"column #(\d+).*invalid value '([^']*)'", message)
    if match:
        column = int(match.group(1))
        value = match.group(2)
        kept = sorted(set(layout.ts_columns) | set(layout.fields.values())
                      | set(layout.volume_candidates))
        index = kept[column] if column < len(kept) else column
        where = ""
        for number, cells in _scan_lines(opener, layout):
            if index < len(cells) and cells[index] == value:
                where = f" at line {number}"
                break
        return (f"{ctx.src}: column {layout.column_label(index)} must hold numbers, but has "
                f"{value!r}{where}. Fix that value (empty cells are allowed) and import again.")
    return f"{ctx.src} could not be parsed as CSV: {message}."


# --------------------------------------------------------------------------------------------
# Time parsing

_INT = r"^[+-]?\d+$"
_DEC = r"^[+-]?\d+\.\d*$"
_COMPACT = r"^\d{8}[ T]?\d{4}(\d{2})?$"
_DATE8 = r"^\d{8}$"
_TWELVE = (r"^(?P<d>\d{4}-\d{2}-\d{2})[ T](?P<h>\d{1,2})(?:[:-](?P<m>\d{2}))?"
           r"(?:[:-](?P<s>\d{2}))?\s*-?\s*(?P<ap>[AaPp])\.?[Mm]\.?$")
_ISO = (r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?"
        r"\s*(Z|z|UTC|GMT|[+-]\d{2}(:?\d{2})?)?$")
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
_SLASH_YMD = r"^\d{4}[/.]\d{1,2}[/.]\d{1,2}([ T].*)?$"
_SLASH_XYZ = r"^(?P<a>\d{1,2})[/.](?P<b>\d{1,2})[/.](?P<y>\d{4})(?P<rest>(?:[ T].*)?)$"


@dataclass
class _Times:
    ns: np.ndarray
    naive: bool
    date_only: bool
    description: str


def _mask(values: pa.Array, pattern: str) -> np.ndarray:
    matched = pc.match_substring_regex(values, pattern)
    return np.asarray(pc.fill_null(matched, False).to_numpy(zero_copy_only=False), dtype=bool)


def _first_bad(mask_ok: np.ndarray) -> int:
    return int(np.flatnonzero(~mask_ok)[0])


def _parse_times(values: pa.Array, ctx: _Context, label: str) -> _Times:
    values = pc.utf8_trim_whitespace(values)
    n = len(values)
    empty = np.asarray(pc.equal(pc.utf8_length(values), 0).to_numpy(zero_copy_only=False),
                       dtype=bool)
    if empty.any():
        rows = np.flatnonzero(empty)
        raise UnusableInput(
            f"{ctx.src}: {len(rows)} row(s) have no time in column {label} ({ctx.lines(rows)}). "
            "Every row needs a time; fix or remove those rows and import again."
        )

    def bad(mask_ok: np.ndarray, expected: str) -> UnusableInput:
        i = _first_bad(mask_ok)
        count = int((~mask_ok).sum())
        return UnusableInput(
            f"{ctx.src}: column {label} mixes time formats: line {ctx.first_line + i} has "
            f"{values[i].as_py()!r} where {expected} was expected from the rest of the file "
            f"({count} such row(s)). Use one format throughout and import again."
        )

    classes = ((_INT, "int"), (_DEC, "dec"), (_COMPACT, "compact"), (_TWELVE, "twelve"),
               (_ISO, "iso"), (_SLASH_YMD, "slash_ymd"), (_SLASH_XYZ, "slash_xyz"))
    probe = values.slice(0, min(n, 1000))
    kind = None
    for pattern, name in classes:
        if _mask(probe, pattern).all():
            kind = name
            break
    if kind is None:
        ok = np.zeros(len(probe), dtype=bool)
        for pattern, _ in classes:
            ok |= _mask(probe, pattern)
        i = _first_bad(ok) if not ok.all() else 0
        raise UnusableInput(
            f"{ctx.src}: column {label} holds times in a form the importer does not know: "
            f"{probe[i].as_py()!r} at line {ctx.first_line + i}. Known forms: ISO 8601 "
            "('2024-01-31T15:30:00Z', '2024-01-31 15:30:00', '2024-01-31'), epoch seconds/ms/us/"
            "ns, 'yyyyMMdd HHmmss', 12-hour clock ('2024-01-31 03-PM'), 'dd/mm/yyyy'."
        )
    if kind == "int":
        if _mask(probe, _DATE8).all():
            return _parse_compact(values, ctx, label, bad)
        ok = _mask(values, _INT)
        if not ok.all():
            raise bad(ok, "an integer epoch time")
        return _parse_epoch(np.asarray(pc.cast(values, pa.int64()).to_numpy(zero_copy_only=False),
                                       dtype=np.int64), ctx, label)
    if kind == "dec":
        ok = _mask(values, _DEC) | _mask(values, _INT)
        if not ok.all():
            raise bad(ok, "a decimal epoch time")
        return _parse_epoch_float(np.asarray(pc.cast(values, pa.float64()).to_numpy(
            zero_copy_only=False), dtype=np.float64), ctx, label)
    if kind == "compact":
        return _parse_compact(values, ctx, label, bad)
    if kind == "twelve":
        return _parse_twelve(values, ctx, label, bad)
    if kind == "slash_ymd":
        ok = _mask(values, _SLASH_YMD)
        if not ok.all():
            raise bad(ok, "'yyyy/mm/dd' or 'yyyy.mm.dd'")
        padded = pc.replace_substring_regex(values, pattern=r"^(\d{4})[/.](\d)[/.]",
                                            replacement=r"\1/0\2/")
        padded = pc.replace_substring_regex(padded, pattern=r"^(\d{4})[/.](\d{2})[/.](\d)(\D|$)",
                                            replacement=r"\1/\2/0\3\4")
        iso = pc.replace_substring_regex(padded, pattern=r"^(\d{4})[/.](\d{2})[/.](\d{2})",
                                         replacement=r"\1-\2-\3")
        return _parse_iso(iso, ctx, label, bad, "yyyy/mm/dd")
    if kind == "slash_xyz":
        return _parse_day_month(values, ctx, label, bad)
    return _parse_iso(values, ctx, label, bad, "ISO 8601")


def _check_range(ns: np.ndarray, ctx: _Context, label: str, raw: str) -> None:
    out = (ns < _YEAR_1900_NS) | (ns >= _YEAR_2100_NS)
    if out.any():
        rows = np.flatnonzero(out)
        raise UnusableInput(
            f"{ctx.src}: column {label} read as {raw} gives times outside 1900-2100 at "
            f"{ctx.lines(rows)}. Check the column (or its unit) and import again."
        )


_EPOCH_MIN_MAGNITUDE = 10**8
_EPOCH_UNITS: tuple[tuple[str, int, int], ...] = (
    # name, multiplier to ns, smallest magnitude of this unit
    ("seconds", NS_PER_SECOND, 0),
    ("milliseconds", 1_000_000, 10**11),
    ("microseconds", 1_000, 10**14),
    ("nanoseconds", 1, 10**17),
)


def _parse_epoch(values: np.ndarray, ctx: _Context, label: str) -> _Times:
    magnitude = np.abs(values)
    small = magnitude < _EPOCH_MIN_MAGNITUDE
    if small.any():
        rows = np.flatnonzero(small)
        raise UnusableInput(
            f"{ctx.src}: column {label} holds small integers (e.g. {int(values[rows[0]])} at "
            f"{ctx.lines(rows)}), not epoch times (which are at least 1e8 seconds, i.e. after "
            "1973). Check that the right column is the time (add a header naming it 'ts')."
        )
    unit = np.zeros(values.size, dtype=np.int8)
    for code, (_, _, lower) in enumerate(_EPOCH_UNITS):
        unit[magnitude >= lower] = code
    ns = np.empty(values.size, dtype=np.int64)
    used: list[str] = []
    for code, (name, mult, _) in enumerate(_EPOCH_UNITS):
        sel = unit == code
        if not sel.any():
            continue
        part = values[sel]
        limit = _YEAR_2100_NS // mult
        if (part >= limit).any() or (part < _YEAR_1900_NS // mult).any():
            rows = np.flatnonzero(sel)[(part >= limit) | (part < _YEAR_1900_NS // mult)]
            raise UnusableInput(
                f"{ctx.src}: column {label} holds numbers that are no epoch time between 1900 "
                f"and 2100 in any unit, at {ctx.lines(rows)}. Check the column and import again."
            )
        ns[sel] = part * mult
        used.append(name)
    if len(used) == 1:
        description = f"epoch {used[0]} (unit detected from the size of the numbers)"
    else:
        counts = {name: int((unit == code).sum()) for code, (name, _, _) in
                  enumerate(_EPOCH_UNITS) if (unit == code).any()}
        description = ("epoch times in mixed units, each converted by its size: "
                       + ", ".join(f"{c} rows in {u}" for u, c in counts.items()))
        ctx.warnings.append(
            f"column {label} mixes epoch units ({', '.join(counts)}): files joined from "
            "different exports? Each value was converted by its own size."
        )
    _check_range(ns, ctx, label, description)
    return _Times(ns, naive=False, date_only=False, description=description)


def _parse_epoch_float(values: np.ndarray, ctx: _Context, label: str) -> _Times:
    if not np.isfinite(values).all():
        rows = np.flatnonzero(~np.isfinite(values))
        raise UnusableInput(f"{ctx.src}: column {label} has non-numbers at {ctx.lines(rows)}.")
    median = float(np.median(np.abs(values)))
    name, mult = "seconds", NS_PER_SECOND
    for unit_name, unit_mult, lower in _EPOCH_UNITS:
        if median >= lower:
            name, mult = unit_name, unit_mult
    # Round to whole microseconds: a float carries ~16 significant digits.
    us = np.round(values * (mult / 1_000)).astype(np.int64)
    ns = us * 1_000
    description = f"epoch {name} with decimals (unit detected from size; rounded to 1 us)"
    _check_range(ns, ctx, label, description)
    return _Times(ns, naive=False, date_only=False, description=description)


def _parse_compact(values: pa.Array, ctx: _Context, label: str,
                   bad: Callable[[np.ndarray, str], UnusableInput]) -> _Times:
    ok = _mask(values, _COMPACT) | _mask(values, _DATE8)
    if not ok.all():
        raise bad(ok, "'yyyyMMdd HHmmss'")
    digits = pc.replace_substring_regex(values, pattern=r"[ T]", replacement="")
    lengths = np.asarray(pc.utf8_length(digits).to_numpy(zero_copy_only=False))
    length = int(lengths[0])
    if (lengths != length).any():
        raise bad(lengths == length, f"a {length}-digit 'yyyyMMdd[ HHmm[ss]]' time")
    fmt = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}[length]
    parsed = pc.strptime(digits, format=fmt, unit="ns", error_is_null=True)
    valid = np.asarray(parsed.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if not valid.all():
        raise bad(valid, "a valid calendar date and time")
    ns = np.asarray(parsed.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    form = {8: "yyyyMMdd", 12: "yyyyMMdd HHmm", 14: "yyyyMMdd HHmmss"}[length]
    return _Times(ns, naive=length > 8, date_only=length == 8, description=f"'{form}' text")


def _parse_twelve(values: pa.Array, ctx: _Context, label: str,
                  bad: Callable[[np.ndarray, str], UnusableInput]) -> _Times:
    ok = _mask(values, _TWELVE)
    if not ok.all():
        raise bad(ok, "a 12-hour clock time like '2019-10-17 09-AM'")
    parts = pc.extract_regex(values, pattern=_TWELVE)
    date = pc.struct_field(parts, "d")
    try:
        day_ns = np.asarray(pc.cast(date, pa.timestamp("ns")).cast(pa.int64())
                            .to_numpy(zero_copy_only=False), dtype=np.int64)
    except pa.ArrowInvalid as exc:
        raise UnusableInput(f"{ctx.src}: column {label}: {exc}.") from exc

    def number(field_name: str) -> np.ndarray:
        text = pc.struct_field(parts, field_name)
        text = pc.if_else(pc.equal(text, ""), "0", text)
        return np.asarray(pc.cast(text, pa.int64()).to_numpy(zero_copy_only=False),
                          dtype=np.int64)

    hour, minute, second = number("h"), number("m"), number("s")
    pm = np.asarray(pc.match_substring_regex(pc.struct_field(parts, "ap"), "[Pp]")
                    .to_numpy(zero_copy_only=False), dtype=bool)
    valid = (hour >= 1) & (hour <= 12) & (minute < 60) & (second < 60)
    if not valid.all():
        raise bad(valid, "a 12-hour clock hour between 1 and 12")
    hour24 = hour % 12 + np.where(pm, 12, 0)
    ns = day_ns + ((hour24 * 60 + minute) * 60 + second) * NS_PER_SECOND
    return _Times(ns, naive=True, date_only=False,
                  description="12-hour clock text ('2019-10-17 09-AM'; 12-AM = midnight, "
                              "12-PM = noon)")


def _parse_day_month(values: pa.Array, ctx: _Context, label: str,
                     bad: Callable[[np.ndarray, str], UnusableInput]) -> _Times:
    ok = _mask(values, _SLASH_XYZ)
    if not ok.all():
        raise bad(ok, "'dd/mm/yyyy' or 'mm/dd/yyyy'")
    parts = pc.extract_regex(values, pattern=_SLASH_XYZ)
    a = np.asarray(pc.cast(pc.struct_field(parts, "a"), pa.int64())
                   .to_numpy(zero_copy_only=False))
    b = np.asarray(pc.cast(pc.struct_field(parts, "b"), pa.int64())
                   .to_numpy(zero_copy_only=False))
    day_first = bool((a > 12).any())
    month_first = bool((b > 12).any())
    if day_first == month_first:
        reason = ("both orders occur" if day_first else
                  "no day above 12 tells day and month apart")
        raise UnusableInput(
            f"{ctx.src}: column {label} has dates like {values[0].as_py()!r}, which can be "
            f"day/month/year or month/day/year ({reason}). Convert the dates to ISO 8601 "
            "(yyyy-mm-dd) and import again."
        )
    day = pc.struct_field(parts, "a" if day_first else "b")
    month = pc.struct_field(parts, "b" if day_first else "a")
    iso = pc.binary_join_element_wise(
        pc.struct_field(parts, "y"), pc.utf8_lpad(month, width=2, padding="0"),
        pc.utf8_lpad(day, width=2, padding="0"), "-")
    iso = pc.binary_join_element_wise(iso, pc.struct_field(parts, "rest"), "")
    order = "dd/mm/yyyy" if day_first else "mm/dd/yyyy"
    ctx.fixes.append(f"dates read as {order} (a day above 12 in the "
                     f"{'first' if day_first else 'second'} place settles the order)")
    return _parse_iso(iso, ctx, label, bad, order)


def _parse_iso(values: pa.Array, ctx: _Context, label: str,
               bad: Callable[[np.ndarray, str], UnusableInput], form: str) -> _Times:
    ok = _mask(values, _ISO)
    if not ok.all():
        raise bad(ok, f"{form} text")
    if _mask(values, _ISO_DATE).all():
        parsed = _cast_ts(values, pa.timestamp("ns"), ctx, label)
        return _Times(parsed, naive=True, date_only=True, description=f"{form} dates")
    normalised = pc.replace_substring_regex(values, pattern=r"\s*(UTC|GMT|z)$", replacement="Z")
    normalised = pc.replace_substring_regex(
        normalised, pattern=r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2})(Z|[+-].*)?$",
        replacement=r"\1:00\2")
    zoned = _mask(normalised, r"[T ]\d{2}:\d{2}.*(Z|[+-]\d{2}(:?\d{2})?)$")
    if zoned.all():
        ns = _cast_ts(normalised, pa.timestamp("ns", tz="UTC"), ctx, label)
        return _Times(ns, naive=False, date_only=False,
                      description=f"{form} text with a UTC offset")
    if zoned.any():
        raise bad(zoned if zoned[0] else ~zoned,
                  "a time with a zone offset" if zoned[0] else "a time without a zone offset")
    ns = _cast_ts(normalised, pa.timestamp("ns"), ctx, label)
    return _Times(ns, naive=True, date_only=False, description=f"{form} text without a zone")


def _cast_ts(values: pa.Array, target: pa.DataType, ctx: _Context, label: str) -> np.ndarray:
    try:
        parsed = pc.cast(values, target)
    except pa.ArrowInvalid as exc:
        match = re.search(r"string: '([^']*)'", str(exc))
        where = ""
        if match:
            index = pc.index(values, match.group(1)).as_py()
            if index is not None and index >= 0:
                where = f" at line {ctx.first_line + index}"
            raise UnusableInput(
                f"{ctx.src}: column {label} has {match.group(1)!r}{where}, which is not a valid "
                "date/time. Fix that value and import again."
            ) from exc
        raise UnusableInput(f"{ctx.src}: column {label}: {exc}.") from exc
    return np.asarray(parsed.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _resolve_zone(times: _Times, ctx: _Context, label: str, tz: str | None,
                  sample: str) -> np.ndarray:
    if not times.naive:
        ctx.fixes.append(f"times: {times.description} in column {label}")
        if tz is not None:
            ctx.fixes.append(f"--tz {tz} not used: the times already fix the instant")
        ctx.extra["ts_source"] = times.description
        return times.ns
    banner_utc = next((line for line in ctx.layout.banner if _BANNER_UTC.search(line)), None)
    if tz is None and times.date_only:
        ctx.fixes.append(f"times: {times.description} in column {label}, each taken as "
                         "00:00 UTC (daily bars; pass --tz to anchor them in another zone)")
        ctx.extra["ts_source"] = f"{times.description}, as 00:00 UTC"
        return times.ns
    if tz is None and banner_utc is not None:
        ctx.fixes.append(f"times: {times.description} in column {label}, taken as UTC because "
                         f"the file's banner line says so ({banner_utc.strip()[:80]!r})")
        ctx.extra["ts_source"] = f"{times.description}, UTC per file banner"
        return times.ns
    if tz is None:
        raise UnusableInput(
            f"{ctx.src}: the times in column {label} (e.g. {sample!r}) carry no time zone, so "
            "the instant each bar starts is unknown. Say which zone they are in with --tz, e.g. "
            "`--tz UTC` or `--tz America/New_York`, and import again."
        )
    if tz.upper() in ("UTC", "Z", "ETC/UTC", "GMT"):
        ctx.fixes.append(f"times: {times.description} in column {label}, taken as UTC (--tz)")
        ctx.extra["ts_source"] = f"{times.description}, UTC per --tz"
        return times.ns
    naive = pa.array(times.ns, type=pa.timestamp("ns"))
    try:
        early = pc.assume_timezone(naive, timezone=tz, ambiguous="earliest",
                                   nonexistent="earliest")
        late = pc.assume_timezone(naive, timezone=tz, ambiguous="latest", nonexistent="latest")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise UsageError(f"--tz {tz!r} is not a known time zone ({exc}). Use an IANA name "
                         "such as UTC, Europe/Berlin or America/New_York.") from exc
    early_ns = np.asarray(early.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    late_ns = np.asarray(late.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    unclear = early_ns != late_ns
    if unclear.any():
        rows = np.flatnonzero(unclear)
        raise UnusableInput(
            f"{ctx.src}: {len(rows)} time(s) fall into a daylight-saving change of {tz} and "
            f"name no single instant (repeated or skipped local hour), at {ctx.lines(rows)}. "
            "Export the data in UTC (or with UTC offsets) and import again."
        )
    ctx.fixes.append(f"times: {times.description} in column {label}, converted from {tz} to UTC")
    ctx.extra["ts_source"] = f"{times.description}, converted from {tz}"
    return early_ns


# --------------------------------------------------------------------------------------------
# Columns


def _floats(table: pa.Table, index: int) -> np.ndarray:
    column = table.column(f"c{index}")
    return np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False),
                      dtype=np.float64)


def _strings(table: pa.Table, index: int) -> pa.Array:
    column = table.column(f"c{index}").combine_chunks()
    return pc.cast(column, pa.string())


def _split_symbol(symbol: str | None) -> tuple[str | None, str | None]:
    if not symbol:
        return None, None
    text = symbol.upper()
    for sep in ("/", "-", "_", ":"):
        if sep in text:
            base, quote = text.split(sep, 1)
            return base or None, quote or None
    for quote in _QUOTE_CURRENCIES:
        if text.endswith(quote) and len(text) > len(quote):
            return text[: -len(quote)], quote
    return None, None


def _choose_volume(table: pa.Table, ctx: _Context, close: np.ndarray,
                   symbol: str | None) -> tuple[np.ndarray, str | None]:
    """Pick the base-currency volume column; returns it and the quote currency if learnt."""
    layout = ctx.layout
    candidates = list(layout.volume_candidates)
    if not candidates:
        header = ", ".join(layout.header or ())
        raise UnusableInput(
            f"{ctx.src} has no volume column (columns: {header}). Snapshots need volume; add "
            "a 'volume' column (0 where unknown is allowed but disables volume-capped fills)."
        )
    if len(candidates) == 1:
        return _floats(table, candidates[0]), None
    base_ccy, quote_ccy = _split_symbol(symbol)
    arrays = {i: _floats(table, i) for i in candidates}
    names = {i: normalise(layout.header[i]) if layout.header else f"c{i}" for i in candidates}
    finite_close = close[np.isfinite(close) & (close > 0)]
    price = float(np.median(finite_close)) if finite_close.size else float("nan")
    chosen: int | None = None
    quote_col: int | None = None
    how = ""
    if np.isfinite(price) and not 0.5 < price < 2.0:
        for a in candidates:
            for b in candidates:
                if a == b:
                    continue
                both = (arrays[a] > 0) & (arrays[b] > 0)
                if both.sum() < 3:
                    continue
                ratio = float(np.median(arrays[a][both] / arrays[b][both]))
                if 0.5 < ratio / price < 2.0:
                    chosen, quote_col = b, a
                    how = (f"'{_label(layout, a)}' is about price x '{_label(layout, b)}', so "
                           f"it is the quote-currency volume")
                    break
            if chosen is not None:
                break
    if chosen is None:
        base_words = ["base", "from", "coin", "asset"] + ([base_ccy.lower()] if base_ccy else [])
        quote_words = ["quote", "currency", "to", "usd", "usdt", "usdc", "eur", "notional",
                       "value", "turnover"] + ([quote_ccy.lower()] if quote_ccy else [])
        for i in candidates:
            tokens = set(names[i].split("_"))
            if tokens & set(base_words) and not tokens & set(quote_words):
                chosen = i
                how = "its name marks it as base currency"
                break
        if chosen is None:
            chosen = candidates[0]
            ctx.warnings.append(
                f"could not tell which volume column is in base units; took "
                f"'{_label(layout, chosen)}' (the first). Check the snapshot's volume."
            )
    dropped = [f"'{_label(layout, i)}'" for i in candidates if i != chosen]
    ctx.fixes.append(f"volume: took column '{_label(layout, chosen)}' (base currency"
                     + (f"; {how}" if how else "") + f"); dropped {', '.join(dropped)}")
    ctx.extra["volume_column"] = _label(layout, chosen)
    learnt = None
    if quote_col is not None:
        quote_tokens = names[quote_col].split("_")
        learnt = next((t.upper() for t in quote_tokens if t.upper() in _QUOTE_CURRENCIES), None)
    return arrays[chosen], learnt


def _label(layout: Layout, index: int) -> str:
    return layout.header[index] if layout.header else f"column {index + 1}"


# --------------------------------------------------------------------------------------------
# Order, duplicates, suspicious runs


def _sort_rows(ts: np.ndarray, codes: np.ndarray, fixes: list[str],
               name_rows: Callable[[np.ndarray], str], what: str,
               tiebreak: np.ndarray | None = None) -> np.ndarray:
    """Return the permutation that sorts by (symbol, ts[, tiebreak]); report what it fixed."""
    n = ts.size
    position = np.arange(n)
    by_symbol = np.argsort(codes, kind="stable")
    same = codes[by_symbol][1:] == codes[by_symbol][:-1]
    step = np.diff(ts[by_symbol])
    back = same & (step < 0)
    forward = same & (step > 0)
    keys: list[np.ndarray] = [position]
    if tiebreak is not None:
        keys.append(tiebreak)
    keys += [ts, codes]
    order = np.lexsort(tuple(keys))
    n_back, n_fwd = int(back.sum()), int(forward.sum())
    if n_back == 0:
        if tiebreak is not None and not np.array_equal(order, position):
            fixes.append(f"{what} with equal times put in id order")
        return order
    if n_back > n_fwd:
        text = (f"rows were newest-first ({n_back:,} of {n_back + n_fwd:,} steps go back in "
                "time): sorted ascending")
        if n_fwd:
            rows = by_symbol[1:][forward]
            text += (f"; {n_fwd} step(s) go forward in time instead, at "
                     f"{name_rows(rows)} (rows out of place in the source)")
    else:
        rows = by_symbol[1:][back]
        text = (f"{n_back} row(s) were out of time order, first at {name_rows(rows)}: "
                "sorted ascending")
    fixes.append(text)
    return order


def _copied_runs(ts: np.ndarray, codes: np.ndarray,
                 ohlcv: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs of consecutive bars whose OHLCV exactly repeats consecutive bars at another time.

    Returns (first row of the copy, length, first row of the original) for runs of at least
    ``COPIED_RUN_MIN`` bars. Flat bars (high == low) are ignored: illiquid markets repeat them.
    """
    high, low = ohlcv[:, 1], ohlcv[:, 2]
    candidates = np.flatnonzero(np.isfinite(ohlcv).all(axis=1) & (high != low))
    if candidates.size < 2:
        return []
    cols = ohlcv[candidates]
    order = np.lexsort((candidates, cols[:, 4], cols[:, 3], cols[:, 2], cols[:, 1], cols[:, 0],
                        codes[candidates]))
    sorted_rows = candidates[order]
    keyed = np.column_stack((codes[sorted_rows].astype(np.float64), ohlcv[sorted_rows]))
    equal_next = (keyed[1:] == keyed[:-1]).all(axis=1)
    if not equal_next.any():
        return []
    pairs: dict[int, set[int]] = {}
    start = 0
    m = sorted_rows.size
    while start < m - 1:
        end = start + 1
        while end < m and equal_next[end - 1]:
            end += 1
        group = np.sort(sorted_rows[start:end])
        if 1 < group.size <= 20:
            for i in range(group.size):
                for j in range(i + 1, group.size):
                    pairs.setdefault(int(group[j] - group[i]), set()).add(int(group[j]))
        start = end
    runs: list[tuple[int, int, int]] = []
    for delta, copies in sorted(pairs.items()):
        ordered = sorted(copies)
        i = 0
        while i < len(ordered):
            j = i
            shift = int(ts[ordered[i]] - ts[ordered[i] - delta])
            while (j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1
                   and int(ts[ordered[j + 1]] - ts[ordered[j + 1] - delta]) == shift
                   and codes[ordered[j + 1]] == codes[ordered[i]]):
                j += 1
            length = j - i + 1
            if length >= COPIED_RUN_MIN:
                runs.append((ordered[i], length, ordered[i] - delta))
            i = j + 1
    return sorted(runs)


# --------------------------------------------------------------------------------------------
# The import


def check_name(name: str) -> str:
    if not _NAME_OK.match(name) or name.lower().startswith("latest"):
        raise UsageError(
            f"snapshot name {name!r} is not allowed: use 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (and not 'latest')."
        )
    return name


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
        _check_tz(tz)
    try:
        opener, compression = _open_binary(src)
    except PermissionError as exc:
        raise UnusableInput(f"source file {src} cannot be read: permission denied.") from exc
    head = _read_head(opener, src)
    try:
        layout = sniff(head, fmt)
    except UnusableInput as exc:
        raise UnusableInput(f"{src}: {exc.message}") from exc
    ctx = _Context(src=src, layout=layout, first_line=layout.skip_lines + 1)
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
        table, symbols = _build_bars(opener, ctx, symbol, tz)
    else:
        table, symbols = _build_trades(opener, ctx, symbol, tz)
    return _write(table, ctx, out, name=name, symbols=symbols, overwrite=overwrite)


def _check_tz(tz: str) -> None:
    if tz.upper() in ("UTC", "Z", "GMT"):
        return
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(f"--tz {tz!r} is not a known time zone. Use an IANA name such as UTC, "
                         "Europe/Berlin or America/New_York.") from exc


def _read_times(table: pa.Table, ctx: _Context, tz: str | None) -> np.ndarray:
    layout = ctx.layout
    if len(layout.ts_columns) == 2:
        d, t = (_strings(table, i) for i in layout.ts_columns)
        text = pc.binary_join_element_wise(pc.utf8_trim_whitespace(d),
                                           pc.utf8_trim_whitespace(t), " ")
        label = f"{layout.column_label(layout.ts_columns[0])}+" \
                f"{layout.column_label(layout.ts_columns[1])}"
    else:
        text = _strings(table, layout.ts_columns[0])
        label = layout.column_label(layout.ts_columns[0])
    if len(text) == 0:
        raise UnusableInput(f"{ctx.src} has a header but no data rows. Nothing was written.")
    times = _parse_times(text, ctx, label)
    return _resolve_zone(times, ctx, label, tz, str(text[0].as_py()))


def _symbol_codes(table: pa.Table, ctx: _Context, symbol: str | None,
                  n: int) -> tuple[np.ndarray, list[str], bool]:
    """Symbol code per row, the names, and whether the snapshot keeps a symbol column."""
    index = ctx.layout.fields.get("symbol")
    if index is None:
        return np.zeros(n, dtype=np.int32), [symbol or ""], symbol is not None
    column = pc.utf8_trim_whitespace(_strings(table, index))
    encoded = pc.dictionary_encode(column)
    names = [str(v) for v in encoded.dictionary.to_pylist()]
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int32)
    label = ctx.layout.column_label(index)
    if "" in names:
        rows = np.flatnonzero(codes == names.index(""))
        raise UnusableInput(f"{ctx.src}: column {label} is empty at {ctx.lines(rows)}; every "
                            "row needs its symbol.")
    if len(names) == 1:
        if symbol is not None and symbol != names[0]:
            ctx.fixes.append(f"symbol: the file says {names[0]!r}; --symbol {symbol!r} used")
            return codes, [symbol], True
        if symbol is None:
            ctx.fixes.append(f"symbol: one instrument ({names[0]!r}) recorded in the metadata; "
                             "no symbol column written (pass --symbol to write one)")
            return codes, names, False
        return codes, names, True
    if symbol is not None:
        raise UsageError(
            f"{ctx.src} holds {len(names)} symbols ({', '.join(sorted(names)[:5])}...) in column "
            f"{label}; --symbol names a single instrument. Drop --symbol to keep them all."
        )
    ctx.fixes.append(f"symbols: {len(names)} instruments kept in a symbol column")
    return codes, names, True


def _build_bars(opener: Callable[[], IO[bytes]], ctx: _Context, symbol: str | None,
                tz: str | None) -> tuple[pa.Table, list[str]]:
    layout = ctx.layout
    text_cols = set(layout.ts_columns) | ({layout.fields["symbol"]} if "symbol" in layout.fields
                                         else set())
    table = _read_table(opener, ctx, text_cols, set())
    source_rows = table.num_rows
    ctx.extra["source_rows"] = source_rows
    ts = _read_times(table, ctx, tz)
    codes, names, keep_symbol = _symbol_codes(table, ctx, symbol, table.num_rows)
    o, h, lo, c = (_floats(table, layout.fields[k]) for k in ("open", "high", "low", "close"))
    v, learnt_quote = _choose_volume(table, ctx, c, names[0] if len(names) == 1 else None)
    del table
    line = np.arange(ts.size, dtype=np.int64) + ctx.first_line

    empty = np.isnan(o) & np.isnan(h) & np.isnan(lo) & np.isnan(c)
    if empty.any():
        rows = np.flatnonzero(empty)
        ctx.fixes.append(f"dropped {len(rows)} row(s) with no prices at all (no trades in the "
                         f"interval), at {ctx.lines(rows)}")
        keep = ~empty
        ts, codes, o, h, lo, c, v, line = (a[keep] for a in (ts, codes, o, h, lo, c, v, line))

    order = _sort_rows(ts, codes, ctx.fixes, lambda rows: ctx.lines(rows, line), "bars")
    ts, codes, line = ts[order], codes[order], line[order]
    ohlcv = np.column_stack((o[order], h[order], lo[order], c[order], v[order]))
    del o, h, lo, c, v

    same = (codes[1:] == codes[:-1]) & (ts[1:] == ts[:-1])
    if same.any():
        second = np.flatnonzero(same) + 1
        a, b = ohlcv[second - 1], ohlcv[second]
        identical = ((a == b) | (np.isnan(a) & np.isnan(b))).all(axis=1)
        conflict = second[~identical]
        if conflict.size:
            examples = "; ".join(
                f"{ns_to_iso(int(ts[k]))}{_sym(names, codes[k], keep_symbol)} at lines "
                f"{line[k - 1]} and {line[k]} ({_ohlcv_text(ohlcv[k - 1])} vs "
                f"{_ohlcv_text(ohlcv[k])})"
                for k in conflict[:MAX_NAMED_ROWS].tolist())
            raise InvalidSnapshot(
                f"{ctx.src}: {conflict.size} time(s) appear twice with different bars, so the "
                f"file contradicts itself: {examples}. Nothing was written. Decide which row is "
                "right, remove the other, and import again."
            )
        dropped = second[identical]
        keep = np.ones(ts.size, dtype=bool)
        keep[dropped] = False
        ctx.fixes.append(f"dropped {dropped.size} identical duplicate row(s), at "
                         + ", ".join(str(int(line[k])) for k in dropped[:MAX_NAMED_ROWS])
                         + (f" and {dropped.size - MAX_NAMED_ROWS} more"
                            if dropped.size > MAX_NAMED_ROWS else "")
                         + " (each repeated the row before it exactly)")
        ts, codes, line, ohlcv = ts[keep], codes[keep], line[keep], ohlcv[keep]

    interval = _intervals(ts, codes)
    if layout.end_of_bar_times:
        ts = _shift_to_bar_start(ts, codes, interval, ctx)

    for first, length, original in _copied_runs(ts, codes, ohlcv):
        shift = int(ts[first] - ts[original])
        ctx.warnings.append(
            f"{length} consecutive bars {ns_to_iso(int(ts[first]))} .. "
            f"{ns_to_iso(int(ts[first + length - 1]))}{_sym(names, codes[first], keep_symbol)} "
            f"(source lines {_line_span(line[first:first + length])}) repeat the "
            f"open/high/low/close/volume of {ns_to_iso(int(ts[original]))} .. "
            f"{ns_to_iso(int(ts[original + length - 1]))} exactly, {format_duration(shift)} "
            "earlier: most likely a block copied by the data source, not real trading. Check "
            "them before relying on this period."
        )

    ctx.extra["bar_interval_ns"] = interval
    if learnt_quote:
        ctx.extra["quote_currency_from_volume"] = learnt_quote
    columns: dict[str, pa.Array] = {"ts": pa.array(ts, type=pa.timestamp("ns", tz="UTC"))}
    if keep_symbol:
        columns["symbol"] = pa.DictionaryArray.from_arrays(
            pa.array(codes, type=pa.int32()), pa.array(names, type=pa.string())
        ).cast(pa.string())
    for i, key in enumerate(("open", "high", "low", "close", "volume")):
        columns[key] = pa.array(ohlcv[:, i], type=pa.float64())
    ctx.extra["line_of_row"] = line
    return pa.table(columns), names


def _sym(names: list[str], code: Any, keep_symbol: bool) -> str:
    return f" ({names[int(code)]})" if keep_symbol and len(names) > 1 else ""


def _ohlcv_text(row: np.ndarray) -> str:
    return "OHLCV " + "/".join(f"{x:g}" for x in row.tolist())


def _line_span(lines: np.ndarray) -> str:
    ordered = np.sort(lines)
    lo, hi = int(ordered[0]), int(ordered[-1])
    if hi - lo + 1 == ordered.size:
        return f"{lo}-{hi}" if hi > lo else str(lo)
    text = ", ".join(str(int(x)) for x in ordered[:MAX_NAMED_ROWS])
    return text + (f" and {ordered.size - MAX_NAMED_ROWS} more"
                   if ordered.size > MAX_NAMED_ROWS else "")


def _intervals(ts: np.ndarray, codes: np.ndarray) -> int | None:
    """Most common positive spacing (ties: the smaller), over all symbols."""
    same = codes[1:] == codes[:-1]
    steps = np.diff(ts)[same]
    steps = steps[steps > 0]
    if steps.size == 0:
        return None
    values, counts = np.unique(steps, return_counts=True)
    return int(values[np.argmax(counts)])


def _shift_to_bar_start(ts: np.ndarray, codes: np.ndarray, interval: int | None,
                        ctx: _Context) -> np.ndarray:
    if interval is None:
        raise UnusableInput(f"{ctx.src}: cannot tell the bar interval from one bar, so the "
                            "end-of-bar times cannot be moved to bar start.")
    if interval >= NS_PER_DAY:
        ctx.fixes.append("daily NinjaTrader bars: session dates kept as given")
        ctx.extra["ts_shift_ns"] = 0
        return ts
    ctx.fixes.append(
        f"NinjaTrader stamps bars with their END time: every bar moved "
        f"{format_duration(interval)} earlier (the bar interval) to its start"
    )
    ctx.extra["ts_shift_ns"] = -interval
    ctx.extra["source_ts_convention"] = "bar_end"
    return ts - interval


_SIDES = {"buy": "buy", "b": "buy", "bid": "buy", "buyer": "buy", "long": "buy",
          "sell": "sell", "s": "sell", "ask": "sell", "seller": "sell", "short": "sell"}


def _build_trades(opener: Callable[[], IO[bytes]], ctx: _Context, symbol: str | None,
                  tz: str | None) -> tuple[pa.Table, list[str]]:
    layout = ctx.layout
    fields = layout.fields
    text_cols = set(layout.ts_columns) | {fields[k] for k in ("symbol", "side") if k in fields}
    if "trade_id" in fields:
        text_cols.add(fields["trade_id"])
    table = _read_table(opener, ctx, text_cols, set())
    ctx.extra["source_rows"] = table.num_rows
    ts = _read_times(table, ctx, tz)
    codes, names, keep_symbol = _symbol_codes(table, ctx, symbol, table.num_rows)
    price = _floats(table, fields["price"])
    size = _floats(table, fields["size"])
    n = ts.size
    line = np.arange(n, dtype=np.int64) + ctx.first_line

    side: pa.Array = pa.nulls(n, type=pa.string())
    if "side" in fields:
        raw = pc.utf8_lower(pc.utf8_trim_whitespace(_strings(table, fields["side"])))
        label = layout.column_label(fields["side"])
        if layout.side_is_buyer_maker:
            mapping = {"true": "sell", "1": "sell", "false": "buy", "0": "buy"}
            ctx.fixes.append(f"side: {label} true -> sell, false -> buy (the taker's side)")
        else:
            mapping = dict(_SIDES)
        seen = [str(s) for s in pc.unique(raw).to_pylist()]
        side = pa.array([mapping.get(s) for s in seen], type=pa.string())
        side = pc.take(side, pc.index_in(raw, value_set=pa.array(seen, type=pa.string())))
        unknown = sorted(s for s in seen if s not in mapping and s)
        if unknown:
            ctx.warnings.append(f"side: values {', '.join(repr(u) for u in unknown[:5])} in "
                                f"column {label} are not buy/sell; stored as unknown (null)")
        if {"bid", "ask"} & set(seen):
            ctx.fixes.append(f"side: {label} 'bid' -> buy, 'ask' -> sell (taker side, as the "
                             "exchange's trade type reports it)")
    trade_id: np.ndarray | None = None
    if "trade_id" in fields:
        ids = _strings(table, fields["trade_id"])
        try:
            trade_id = np.asarray(pc.cast(ids, pa.int64()).to_numpy(zero_copy_only=False),
                                  dtype=np.int64)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            ctx.warnings.append(f"trade ids in column {layout.column_label(fields['trade_id'])} "
                                "are not integers; not kept")
    del table

    order = _sort_rows(ts, codes, ctx.fixes, lambda rows: ctx.lines(rows, line), "trades",
                       tiebreak=trade_id)
    ts, codes, line, price, size = ts[order], codes[order], line[order], price[order], size[order]
    side = pc.take(side, pa.array(order))
    if trade_id is not None:
        trade_id = trade_id[order]
        by_id = np.argsort(trade_id, kind="stable")
        dup = np.flatnonzero(trade_id[by_id][1:] == trade_id[by_id][:-1]) + 1
        if dup.size:
            first, second = by_id[dup - 1], by_id[dup]
            side_list = side.to_pylist()
            same = ((ts[first] == ts[second]) & (price[first] == price[second])
                    & (size[first] == size[second])
                    & np.array([side_list[a] == side_list[b] for a, b in
                                zip(first.tolist(), second.tolist(), strict=True)]))
            if (~same).any():
                bad = np.flatnonzero(~same)[:MAX_NAMED_ROWS]
                raise InvalidSnapshot(
                    f"{ctx.src}: {int((~same).sum())} trade id(s) appear twice with different "
                    "trades, so the file contradicts itself: "
                    + "; ".join(f"id {int(trade_id[first[k]])} at lines {line[first[k]]} and "
                                f"{line[second[k]]}" for k in bad.tolist())
                    + ". Nothing was written. Remove the wrong rows and import again."
                )
            keep = np.ones(ts.size, dtype=bool)
            keep[second] = False
            ctx.fixes.append(f"dropped {dup.size} identical duplicate trade(s) (same trade id), "
                             f"at lines {', '.join(str(int(x)) for x in line[second][:5])}")
            ts, codes, line, price, size, trade_id = (a[keep] for a in
                                                      (ts, codes, line, price, size, trade_id))
            side = side.filter(pa.array(keep))
    columns: dict[str, pa.Array] = {"ts": pa.array(ts, type=pa.timestamp("ns", tz="UTC"))}
    if keep_symbol:
        columns["symbol"] = pa.DictionaryArray.from_arrays(
            pa.array(codes, type=pa.int32()), pa.array(names, type=pa.string())
        ).cast(pa.string())
    columns["price"] = pa.array(price, type=pa.float64())
    columns["size"] = pa.array(size, type=pa.float64())
    columns["side"] = side
    if trade_id is not None:
        columns["trade_id"] = pa.array(trade_id, type=pa.int64())
    ctx.extra["line_of_row"] = line
    return pa.table(columns), names


# --------------------------------------------------------------------------------------------
# Writing


def _write(table: pa.Table, ctx: _Context, out: Path, *, name: str, symbols: list[str],
           overwrite: bool) -> ImportResult:
    line_of_row: np.ndarray = ctx.extra.pop("line_of_row")
    kind = ctx.layout.kind
    keep_symbol = "symbol" in table.column_names
    single = symbols[0] if len(symbols) == 1 and symbols[0] else None
    base, quote = _split_symbol(single)
    quote = quote or ctx.extra.pop("quote_currency_from_volume", None)
    interval = ctx.extra.pop("bar_interval_ns", None) if kind == KIND_BARS else None
    ctx.extra.pop("bar_interval_ns", None)
    meta = SnapshotMeta(
        symbol=single,
        quote_currency=quote,
        bar_interval_ns=interval,
        ts_convention="bar_start" if kind == KIND_BARS else "trade_time",
        source=ctx.src.name,
        kind=kind,
        name=name,
        extra={"import": {**ctx.extra, "rows": table.num_rows, "fixes": list(ctx.fixes),
                          "warnings": list(ctx.warnings)},
               **({"base_currency": base} if base else {})},
    )
    table = table.replace_schema_metadata({META_KEY: meta.to_json()})
    out = Path(out)
    created_dir: Path | None = None
    if not out.parent.exists():
        missing = out.parent
        while not missing.parent.exists():
            missing = missing.parent
        try:
            out.parent.mkdir(parents=True)
        except OSError as exc:
            raise RuntimeFailure(f"cannot create the output folder {out.parent}: "
                                 f"{exc.strerror}. Pass --out to write elsewhere.") from exc
        created_dir = missing
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    try:
        try:
            pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS, compression="zstd")
            with tmp.open("rb") as fh:
                os.fsync(fh.fileno())
        except OSError as exc:
            raise RuntimeFailure(f"cannot write {out}: {exc.strerror or exc}. Nothing was "
                                 "written; free space or pass --out to write elsewhere.") from exc
        report = inspect_snapshot(tmp)
        if not report.ok:
            raise InvalidSnapshot(_explain_violations(ctx, report, line_of_row, keep_symbol))
        if out.exists() and not overwrite:
            raise UsageError(f"{out} appeared while importing and was left untouched.")
        os.replace(tmp, out)
        fsync_dir(out.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        if created_dir is not None:
            _remove_empty_dirs(out.parent, created_dir)
        raise
    report = dataclasses.replace(report, path=out)
    ctx.warnings.extend(report.warnings)
    return ImportResult(
        path=out, source=ctx.src, kind=kind, format=ctx.layout.format, rows=table.num_rows,
        source_rows=int(ctx.extra.get("source_rows", table.num_rows)),
        symbols=tuple(s for s in symbols if s), meta=meta, fixes=ctx.fixes,
        warnings=ctx.warnings, report=report, sha256=sha256_file(out),
    )


def _remove_empty_dirs(leaf: Path, top: Path) -> None:
    current = leaf
    while True:
        try:
            current.rmdir()
        except OSError:
            return
        if current == top:
            return
        current = current.parent


def _explain_violations(ctx: _Context, report: ValidationReport, line_of_row: np.ndarray,
                        keep_symbol: bool) -> str:
    parts: list[str] = []
    for violation in report.violations:
        parts.append(_violation_text(violation, line_of_row))
    return (f"{ctx.src} breaks the snapshot rules, so nothing was written: " + "; ".join(parts)
            + ". Fix those rows in the source and import again.")


def _violation_text(violation: Violation, line_of_row: np.ndarray) -> str:
    where = []
    for ref in violation.examples:
        text = f"line {int(line_of_row[ref.index])}" if ref.index < line_of_row.size \
            else f"row {ref.index}"
        if ref.ts_ns is not None:
            text += f" ({ns_to_iso(ref.ts_ns)})"
        where.append(text)
    return (f"{violation.description} fails for {violation.count} row(s), first at "
            + ", ".join(where))
