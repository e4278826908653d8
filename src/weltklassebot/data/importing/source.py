"""Reading the source file: decompression, the head for ``sniff``, and the table by its layout.

The source is plain text, gzip or a zip archive holding exactly one file; every reader takes an
``Opener`` so the file can be read more than once (head, table, then lines to name a bad row).
"""

from __future__ import annotations

import gzip
import io
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from weltklassebot.data.formats import Layout
from weltklassebot.data.importing.context import ImportContext
from weltklassebot.errors import UnusableInput

HEAD_BYTES = 256 * 1024

Opener = Callable[[], IO[bytes]]
"""Opens a fresh binary stream over the (decompressed) source data."""


def open_source(src: Path) -> tuple[Opener, str]:
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


def read_head(opener: Opener, src: Path) -> str:
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


def scan_lines(opener: Opener, layout: Layout) -> Iterator[tuple[int, list[str]]]:
    """Physical line number (1-based) and cells of every data line; for naming bad rows."""
    import csv

    with opener() as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")
        for number, line in enumerate(text, start=1):
            if number <= layout.skip_lines or not line.strip():
                continue
            cells = next(csv.reader([line], delimiter=layout.delimiter), [])
            yield number, [c.strip() for c in cells]


def read_table(opener: Opener, ctx: ImportContext,
               text_columns: set[int], int_columns: set[int]) -> pa.Table:
    layout = ctx.layout
    needed = _read_columns(layout)
    names = [f"c{i}" for i in range(layout.ncols)]
    types: dict[str, pa.DataType] = {}
    for i in needed:
        if i in text_columns:
            types[names[i]] = pa.string()
        elif i in int_columns:
            types[names[i]] = pa.int64()
        else:
            types[names[i]] = pa.float64()
    def read(use_threads: bool) -> pa.Table:
        with opener() as stream:
            return pacsv.read_csv(
                stream,
                read_options=pacsv.ReadOptions(skip_rows=layout.skip_lines, column_names=names,
                                               block_size=1 << 24, use_threads=use_threads),
                parse_options=pacsv.ParseOptions(delimiter=layout.delimiter),
                convert_options=pacsv.ConvertOptions(
                    column_types=types, include_columns=[names[i] for i in needed],
                    strings_can_be_null=False, decimal_point=ctx.decimal,
                ),
            )

    try:
        try:
            return read(True)
        except pa.ArrowInvalid:
            # Threads convert columns in parallel, so which bad cell is reported first varies;
            # read again on one thread to name the same (first) one every time.
            return read(False)
    except pa.ArrowInvalid as exc:
        raise UnusableInput(_explain_csv_error(str(exc), opener, ctx)) from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UnusableInput(
            f"{ctx.src} cannot be read to the end ({exc}); the file is damaged or truncated. "
            "Download or export it again."
        ) from exc


def _read_columns(layout: Layout) -> list[int]:
    return sorted(set(layout.ts_columns) | set(layout.fields.values())
                  | set(layout.volume_candidates))


def _explain_csv_error(message: str, opener: Opener, ctx: ImportContext) -> str:
    layout = ctx.layout
    if "Expected" in message and "columns" in message:
        for number, cells in scan_lines(opener, layout):
            if len(cells) != layout.ncols:
                return (f"{ctx.src} line {number} has {len(cells)} column(s) where the header "
                        f"has {layout.ncols}: {','.join(cells)[:120]!r}. Fix or remove that line "
                        "(a truncated download often ends in a partial line) and import again.")
        return f"{ctx.src} is not a well-formed CSV table: {message}."
    match = re.search(r"column #(\d+).*invalid value '([^']*)'", message)
    if match:
        column = int(match.group(1))
        value = match.group(2)
        kept = _read_columns(layout)
        index = kept[column] if column < len(kept) else column
        where = ""
        for number, cells in scan_lines(opener, layout):
            if index < len(cells) and cells[index] == value:
                where = f" at line {number}"
                break
        return (f"{ctx.src}: column {layout.column_label(index)} must hold numbers, but has "
                f"{value!r}{where}. {_number_hint(value, ctx.decimal)}")
    return f"{ctx.src} could not be parsed as CSV: {message}."


def _number_hint(value: str, decimal: str) -> str:
    """What to do about a cell that is no number with the decimal mark in use."""
    text = value.strip()
    if re.fullmatch(r"[+-]?\d{1,3}([.,' ]\d{3})+([.,]\d+)?", text) and (
            len(set(re.sub(r"[\d+-]", "", text))) == 2 or text.count(",") > 1
            or text.count(".") > 1):
        return ("The numbers are written with digit grouping (thousands separators), which "
                "the importer does not read: export them without grouping and import again.")
    other = "," if decimal == "." else "."
    if re.fullmatch(rf"[+-]?\d*\{other}\d+([eE][+-]?\d+)?", text):
        grouping = (" If it is digit grouping (thousands), export the numbers without grouping "
                    "instead." if re.fullmatch(rf"\d{{1,3}}\{other}\d{{3}}", text) else "")
        return (f"It uses {other!r} as decimal mark where the file was read with {decimal!r}: "
                f"pass --decimal '{other}' (or fix that value) and import again.{grouping}")
    return "Fix that value (empty cells are allowed) and import again."


def as_int64(values: Any) -> np.ndarray:
    """An Arrow array (text, integers or timestamps) cast to int64, as a NumPy array."""
    return np.asarray(pc.cast(values, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def as_float64(values: Any) -> np.ndarray:
    """An Arrow array cast to float64, as a NumPy array (nulls become NaN)."""
    return np.asarray(pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False),
                      dtype=np.float64)


def as_bool(values: Any) -> np.ndarray:
    """A boolean Arrow array as a NumPy array."""
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)


def floats(table: pa.Table, index: int) -> np.ndarray:
    return as_float64(table.column(f"c{index}"))


def strings(table: pa.Table, index: int) -> pa.Array:
    column = table.column(f"c{index}").combine_chunks()
    return pc.cast(column, pa.string())
