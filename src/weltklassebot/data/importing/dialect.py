"""CSV dialects: the separator and the decimal mark, detected from the head or given.

European spreadsheets write ``;``-separated files whose numbers use ``,`` as decimal mark
(``13.03.1986;0,0672;...``); other tools write tabs. The separator is the candidate that splits
the most lines of the head into the same number of columns (the header included, which is what
tells ``;`` from the ``,`` inside numbers when both give as many columns), then the one whose
cells are numbers, then the wider split. The decimal mark is ``,`` when more cells of the
consistent rows are numbers with a decimal comma than with a decimal point.

Layout detection (``formats.sniff``) knows only decimal points. It is given the head re-written
in the detected dialect with decimal points (the canonical head), and the layout it returns is
put back in the file's own terms (separator, banner lines) for reading the whole file.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections import Counter
from dataclasses import dataclass

from weltklassebot.data.formats import FORMAT_NINJATRADER, Layout, sniff
from weltklassebot.errors import UnusableInput, UsageError

SEPARATORS: tuple[str, ...] = (",", ";", "\t", "|")
DECIMALS: tuple[str, ...] = (".", ",")
SAMPLE_LINES = 200
"""Lines of the head that decide the dialect (the first ones, plus the last few of the head)."""

_EXCEL_HINT = re.compile(r"^\s*sep=(.)\s*$")
_COMMA_NUMBER = re.compile(r"^[+-]?\d*,\d+([eE][+-]?\d+)?$")
_POINT_NUMBER = re.compile(r"^[+-]?\d*\.\d+([eE][+-]?\d+)?$")
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")
_NAMES = {",": "','", ";": "';'", "\t": "tab", "|": "'|'", " ": "space"}


@dataclass(frozen=True)
class Dialect:
    """How the file writes its table: separator, decimal mark, and where each came from."""

    sep: str
    decimal: str
    sep_from: str
    """``detected``, ``--sep``, ``the file's 'sep=' line`` or ``NinjaTrader``."""
    decimal_from: str

    def describe(self) -> str:
        return (f"{sep_name(self.sep)}-separated ({self.sep_from}), decimal mark "
                f"{self.decimal!r} ({self.decimal_from})")


def sep_name(sep: str) -> str:
    return _NAMES.get(sep, repr(sep))


def parse_sep(value: str) -> str:
    """A ``--sep`` value: one character, or ``tab`` / ``\\t`` for a tab."""
    text = value
    if text.lower() in ("tab", "\\t"):
        return "\t"
    if text.lower() in ("space", " "):
        return " "
    if len(text) != 1 or text in "\"\r\n" or text.isalnum():
        raise UsageError(
            f"--sep {value!r} is not a separator: give one character such as ',' ';' '|' or "
            "'tab' (quotes, letters and digits are not allowed)."
        )
    return text


def parse_decimal(value: str) -> str:
    if value not in DECIMALS:
        raise UsageError(f"--decimal {value!r} is not a decimal mark: give '.' or ','.")
    return value


def _lines(head: str) -> list[str]:
    lines = head.splitlines()
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    return lines


def _split(line: str, sep: str) -> list[str]:
    try:
        return [cell.strip() for cell in next(csv.reader([line], delimiter=sep), [])]
    except csv.Error:
        return [line]


def _sample(lines: list[str]) -> list[str]:
    non_empty = [line for line in lines if line.strip()]
    if len(non_empty) <= SAMPLE_LINES:
        return non_empty
    return non_empty[: SAMPLE_LINES - 20] + non_empty[-20:]


@dataclass(frozen=True)
class _Split:
    sep: str
    width: int
    """The most common number of columns among the last lines of the sample."""
    consistent: int
    """Lines of the sample with that many columns."""
    numeric: float
    """Share of the cells of those lines that are numbers (either decimal mark)."""


def _score(sample: list[str], sep: str) -> _Split | None:
    rows = [_split(line, sep) for line in sample]
    if not rows:
        return None
    tail = rows[-20:]
    width = Counter(len(row) for row in tail).most_common(1)[0][0]
    if width < 2:
        return None
    wide = [row for row in rows if len(row) == width]
    cells = sum(len(row) for row in wide)
    numeric = sum(1 for row in wide for cell in row if _NUMBER.match(cell)) / max(cells, 1)
    return _Split(sep, width, len(wide), numeric)


def _best_split(sample: list[str], exclude: str | None = None) -> _Split | None:
    best: _Split | None = None
    for sep in SEPARATORS:
        if sep == exclude:
            continue
        split = _score(sample, sep)
        if split is None:
            continue
        if best is None or (split.consistent, split.numeric, split.width) > \
                (best.consistent, best.numeric, best.width):
            best = split
    return best


def detect(head: str, *, sep: str | None = None, decimal: str | None = None,
           fmt: str = "auto") -> Dialect:
    """The dialect of ``head``: ``sep`` and ``decimal`` as given, else detected."""
    lines = _lines(head)
    sample = _sample(lines)
    hint = _EXCEL_HINT.match(lines[0]) if lines else None
    if fmt == FORMAT_NINJATRADER:
        if sep is not None and sep != ";":
            raise UsageError(f"--format ninjatrader reads ';'-separated files; --sep "
                             f"{sep_name(sep)} contradicts it. Drop --sep or --format.")
        chosen, sep_from = ";", "NinjaTrader"
    elif sep is not None:
        chosen, sep_from = sep, "--sep"
    elif hint is not None:
        chosen, sep_from = hint.group(1), "the file's 'sep=' line"
    else:
        best = _best_split(sample)
        # No candidate splits the lines: layout detection says so in its own words.
        chosen, sep_from = (best.sep, "detected") if best is not None else (",", "detected")
    if decimal is not None:
        return Dialect(chosen, decimal, sep_from, "--decimal")
    return Dialect(chosen, _detect_decimal(sample, chosen), sep_from, "detected")


def _detect_decimal(sample: list[str], sep: str) -> str:
    split = _score(sample, sep)
    if split is None:
        return "."
    comma = point = 0
    for line in sample:
        row = _split(line, sep)
        if len(row) != split.width:
            continue
        for cell in row:
            if _COMMA_NUMBER.match(cell):
                comma += 1
            elif _POINT_NUMBER.match(cell):
                point += 1
    return "," if comma > point else "."


def canonical_head(head: str, dialect: Dialect, out_sep: str) -> str:
    """``head`` with its cells split at the dialect's separator, decimal commas turned into
    points, joined at ``out_sep``; one output line per input line."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=out_sep, lineterminator="\n")
    for line in _lines(head):
        if not line.strip():
            out.write("\n")
            continue
        try:
            cells = next(csv.reader([line], delimiter=dialect.sep), [])
        except csv.Error:
            cells = [line]
        if dialect.decimal == ",":
            cells = [cell.replace(",", ".") if _COMMA_NUMBER.match(cell.strip()) else cell
                     for cell in cells]
        writer.writerow(cells)
    return out.getvalue()


def sniff_layout(head: str, fmt: str, dialect: Dialect) -> Layout:
    """The layout of the file in ``dialect``; an error naming the likely cause if none fits."""
    lines = _lines(head)
    first_error: UnusableInput | None = None
    if dialect.decimal == ".":
        try:
            layout = sniff(head, fmt)
        except UnusableInput as exc:
            first_error = exc
        else:
            if layout.delimiter == dialect.sep:
                return layout
    for out_sep in dict.fromkeys((dialect.sep, ",")):
        if out_sep == "," and fmt == FORMAT_NINJATRADER:
            break
        try:
            layout = sniff(canonical_head(head, dialect, out_sep), fmt)
        except UnusableInput as exc:
            first_error = first_error or exc
            continue
        if layout.delimiter == out_sep:
            # Back in the file's own terms: its separator and its banner lines as written.
            return dataclasses.replace(layout, delimiter=dialect.sep,
                                       banner=tuple(lines[: len(layout.banner)]))
    cause = explain(head, dialect)
    if cause is not None:
        raise UnusableInput(cause)
    assert first_error is not None
    if (dialect.sep, dialect.decimal, dialect.sep_from) == (",", ".", "detected"):
        raise first_error
    raise UnusableInput(f"{first_error.message} (read as {dialect.describe()}; pass --sep or "
                        "--decimal if that is wrong)")


def explain(head: str, dialect: Dialect) -> str | None:
    """The likely cause when no layout fits ``head`` read in ``dialect``, or ``None``."""
    lines = _lines(head)
    sample = _sample(lines)
    if not sample:
        return None
    own = _score(sample, dialect.sep)
    other = _best_split(sample, exclude=dialect.sep)
    how = f"{sep_name(dialect.sep)} ({dialect.sep_from})"
    if own is None:
        if other is None:
            return None
        return (f"no line splits into columns at {how}: is the separator "
                f"{sep_name(other.sep)}? The lines split into {other.width} columns there; "
                f"pass --sep {_arg(other.sep)}.")
    rows = [(number, _split(line, dialect.sep))
            for number, line in enumerate(lines[:SAMPLE_LINES], start=1)
            if line.strip() and not _EXCEL_HINT.match(line)]
    # The header is the line above the first data row (or, if none is found, the first line).
    data_at = next((i for i, (_, cells) in enumerate(rows)
                    if len(cells) == own.width
                    and sum(1 for c in cells if _NUMBER.match(c)) * 2 >= len(cells)), None)
    number, cells = rows[data_at - 1] if data_at else rows[0]
    if len(cells) == 1 and other is not None and \
            len(_split(lines[number - 1], other.sep)) == other.width:
        return (f"the header (line {number}) has one column when split at {how}: is the "
                f"separator {sep_name(other.sep)}? The header splits into {other.width} columns "
                f"there; pass --sep {_arg(other.sep)}.")
    if len(cells) != own.width and data_at:
        if dialect.sep == "," and len(cells) < own.width:
            return (f"the header (line {number}) has {len(cells)} columns but the rows have "
                    f"{own.width} when split at ',': the numbers seem to use ',' as decimal "
                    "mark inside a ','-separated file, so columns and decimals cannot be told "
                    "apart. Export the file again with ';' as separator (or with quoted "
                    "numbers) and import that.")
        return (f"the header (line {number}) has {len(cells)} columns but the rows have "
                f"{own.width} when split at {how}. Check the separator (--sep) and that the "
                "header names every column.")
    return None


def _arg(sep: str) -> str:
    return "tab" if sep == "\t" else f"'{sep}'"
