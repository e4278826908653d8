"""Timestamp parsing: one time column (or a date and a time-of-day column) to int ns.

The form is detected from the first rows and then required of every row, so a file that mixes
forms is refused with the first odd row named. Known forms: ISO 8601 (with or without a zone),
epoch seconds/ms/us/ns (unit from the size of the numbers), ``yyyyMMdd[ HHmm[ss]]``, the 12-hour
clock, ``yyyy/mm/dd``, ``dd.mm.yyyy`` (dots: day-first by nature) and ``dd/mm/yyyy`` or
``mm/dd/yyyy`` (the order settled by ``--dayfirst`` or by a day above 12, else refused with the
two readings named). ``--date-format`` replaces detection with strftime codes. Times without a
zone are anchored by ``zones.resolve_zone``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from weltklassebot.core.timeutil import NS_PER_SECOND
from weltklassebot.data.importing.context import ImportContext
from weltklassebot.data.importing.source import as_bool, as_float64, as_int64, strings
from weltklassebot.data.importing.zones import resolve_zone
from weltklassebot.errors import UnusableInput, UsageError

_YEAR_1900_NS = -2_208_988_800 * NS_PER_SECOND
_YEAR_2100_NS = 4_102_444_800 * NS_PER_SECOND
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

_Complaint = Callable[[np.ndarray, str], UnusableInput]
"""Builds the error for the rows a mask marks bad, naming the form that was expected."""


@dataclass
class ParsedTimes:
    ns: np.ndarray
    naive: bool
    date_only: bool
    description: str


def _mask(values: pa.Array, pattern: str) -> np.ndarray:
    matched = pc.match_substring_regex(values, pattern)
    return as_bool(pc.fill_null(matched, False))


def _expect(values: pa.Array, pattern: str, bad: _Complaint, expected: str) -> None:
    ok = _mask(values, pattern)
    if not ok.all():
        raise bad(ok, expected)


def _first_bad(mask_ok: np.ndarray) -> int:
    return int(np.flatnonzero(~mask_ok)[0])


def _parse_times(values: pa.Array, ctx: ImportContext, label: str) -> ParsedTimes:
    values = pc.utf8_trim_whitespace(values)
    n = len(values)
    empty = as_bool(pc.equal(pc.utf8_length(values), 0))
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

    if ctx.date_format is not None:
        return _parse_format(values, ctx, label, ctx.date_format)
    if ctx.decimal == ",":
        # Epoch times with decimals, written with the file's decimal comma.
        values = pc.replace_substring_regex(values, pattern=r"^([+-]?\d+),(\d+)$",
                                            replacement=r"\1.\2")

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
            "ns, 'yyyyMMdd HHmmss', 12-hour clock ('2024-01-31 03-PM'), 'dd.mm.yyyy', "
            "'dd/mm/yyyy'. For any other layout pass --date-format in strftime codes, e.g. "
            "--date-format '%d-%m-%Y' or '%d.%m.%Y %H:%M'."
        )
    if ctx.dayfirst and kind != "slash_xyz":
        ctx.fixes.append(f"--dayfirst not used: the times in column {label} (e.g. "
                         f"{values[0].as_py()!r}) have only one reading")
    if kind == "int":
        if _mask(probe, _DATE8).all():
            return _parse_compact(values, ctx, label, bad)
        _expect(values, _INT, bad, "an integer epoch time")
        return _parse_epoch(as_int64(values), ctx, label)
    if kind == "dec":
        ok = _mask(values, _DEC) | _mask(values, _INT)
        if not ok.all():
            raise bad(ok, "a decimal epoch time")
        return _parse_epoch_float(as_float64(values), ctx, label)
    if kind == "compact":
        return _parse_compact(values, ctx, label, bad)
    if kind == "twelve":
        return _parse_twelve(values, ctx, label, bad)
    if kind == "slash_ymd":
        _expect(values, _SLASH_YMD, bad, "'yyyy/mm/dd' or 'yyyy.mm.dd'")
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


def _check_range(ns: np.ndarray, ctx: ImportContext, label: str, raw: str) -> None:
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


def _parse_epoch(values: np.ndarray, ctx: ImportContext, label: str) -> ParsedTimes:
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
    return ParsedTimes(ns, naive=False, date_only=False, description=description)


def _parse_epoch_float(values: np.ndarray, ctx: ImportContext, label: str) -> ParsedTimes:
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
    return ParsedTimes(ns, naive=False, date_only=False, description=description)


def _parse_compact(values: pa.Array, ctx: ImportContext, label: str,
                   bad: _Complaint) -> ParsedTimes:
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
    valid = as_bool(parsed.is_valid())
    if not valid.all():
        raise bad(valid, "a valid calendar date and time")
    ns = as_int64(parsed)
    form = {8: "yyyyMMdd", 12: "yyyyMMdd HHmm", 14: "yyyyMMdd HHmmss"}[length]
    return ParsedTimes(ns, naive=length > 8, date_only=length == 8, description=f"'{form}' text")


def _parse_twelve(values: pa.Array, ctx: ImportContext, label: str,
                  bad: _Complaint) -> ParsedTimes:
    _expect(values, _TWELVE, bad, "a 12-hour clock time like '2019-10-17 09-AM'")
    parts = pc.extract_regex(values, pattern=_TWELVE)
    date = pc.struct_field(parts, "d")
    try:
        day_ns = as_int64(pc.cast(date, pa.timestamp("ns")))
    except pa.ArrowInvalid as exc:
        raise UnusableInput(f"{ctx.src}: column {label}: {exc}.") from exc

    def number(field_name: str) -> np.ndarray:
        text = pc.struct_field(parts, field_name)
        text = pc.if_else(pc.equal(text, ""), "0", text)
        return as_int64(text)

    hour, minute, second = number("h"), number("m"), number("s")
    pm = as_bool(pc.match_substring_regex(pc.struct_field(parts, "ap"), "[Pp]"))
    valid = (hour >= 1) & (hour <= 12) & (minute < 60) & (second < 60)
    if not valid.all():
        raise bad(valid, "a 12-hour clock hour between 1 and 12")
    hour24 = hour % 12 + np.where(pm, 12, 0)
    ns = day_ns + ((hour24 * 60 + minute) * 60 + second) * NS_PER_SECOND
    return ParsedTimes(ns, naive=True, date_only=False,
                       description="12-hour clock text ('2019-10-17 09-AM'; 12-AM = midnight, "
                                   "12-PM = noon)")


def _parse_day_month(values: pa.Array, ctx: ImportContext, label: str,
                     bad: _Complaint) -> ParsedTimes:
    _expect(values, _SLASH_XYZ, bad, "'dd/mm/yyyy' or 'mm/dd/yyyy'")
    parts = pc.extract_regex(values, pattern=_SLASH_XYZ)
    a = as_int64(pc.struct_field(parts, "a"))
    b = as_int64(pc.struct_field(parts, "b"))
    dotted = _mask(values, r"^\d{1,2}\.\d{1,2}\.\d{4}")
    if dotted[0] and not dotted.all():
        raise bad(dotted, "'dd.mm.yyyy' (dots)")
    if ctx.dayfirst or dotted[0]:
        day_first = True
        why = ("--dayfirst" if ctx.dayfirst else
               "dates written with dots are day-first, as in German 'dd.mm.yyyy'")
        order = "dd.mm.yyyy" if dotted[0] else "dd/mm/yyyy"
        no_month = b > 12
        if no_month.any():
            i = int(np.flatnonzero(no_month)[0])
            raise UnusableInput(
                f"{ctx.src}: column {label} is read as {order} ({why}), but line "
                f"{ctx.first_line + i} has {values[i].as_py()!r}, which has no month "
                f"{int(b[i])} ({int(no_month.sum())} such row(s)). "
                + ("Drop --dayfirst if the dates are mm/dd/yyyy, or fix those rows, "
                   if ctx.dayfirst else "Fix those rows, or pass --date-format with the "
                   "file's layout (e.g. '%m.%d.%Y') ")
                + "and import again."
            )
    else:
        only_first = a > 12  # the first number can only be a day
        only_second = b > 12
        if only_first.any() and only_second.any():
            examples = sorted([(int(np.flatnonzero(only_first)[0]), "dd/mm/yyyy"),
                               (int(np.flatnonzero(only_second)[0]), "mm/dd/yyyy")])
            raise UnusableInput(
                f"{ctx.src}: column {label} mixes both date orders: " + " and ".join(
                    f"line {ctx.first_line + i} has {values[i].as_py()!r} (only {order} reads "
                    "it)" for i, order in examples)
                + ". Fix the rows written the other way and import again."
            )
        if only_first.any() or only_second.any():
            day_first = bool(only_first.any())
            i = int(np.flatnonzero(only_first if day_first else only_second)[0])
            why = (f"line {ctx.first_line + i} has {values[i].as_py()!r}, whose "
                   f"{'first' if day_first else 'second'} number is a day above 12")
        else:
            two_ways = a != b
            if two_ways.any():
                raise _two_readings(values, ctx, label, a, b, two_ways)
            day_first, why = True, "every date has day = month, so both orders agree"
        order = "dd/mm/yyyy" if day_first else "mm/dd/yyyy"
    day = pc.struct_field(parts, "a" if day_first else "b")
    month = pc.struct_field(parts, "b" if day_first else "a")
    iso = pc.binary_join_element_wise(
        pc.struct_field(parts, "y"), pc.utf8_lpad(month, width=2, padding="0"),
        pc.utf8_lpad(day, width=2, padding="0"), "-")
    iso = pc.binary_join_element_wise(iso, pc.struct_field(parts, "rest"), "")
    ctx.fixes.append(f"dates in column {label} read as {order} ({why})")
    return _parse_iso(iso, ctx, label, bad, order)


def _two_readings(values: pa.Array, ctx: ImportContext, label: str, a: np.ndarray,
                  b: np.ndarray, two_ways: np.ndarray) -> UnusableInput:
    """The refusal of dates that read both ways, naming the first such row and its readings."""
    i = int(np.flatnonzero(two_ways)[0])
    text = str(values[i].as_py())
    match = re.match(_SLASH_XYZ, text)
    assert match is not None
    year, mark, rest = match.group("y"), text[len(match.group("a"))], match.group("rest")
    first, second = int(a[i]), int(b[i])
    month_first = f"%m{mark}%d{mark}%Y" + (" %H:%M" if rest else "")
    return UnusableInput(
        f"{ctx.src}: column {label} has dates that read two ways: line {ctx.first_line + i} "
        f"has {text!r}, which is {year}-{second:02d}-{first:02d} as dd{mark}mm{mark}yyyy or "
        f"{year}-{first:02d}-{second:02d} as mm{mark}dd{mark}yyyy, and no date in the column "
        f"has a day above 12 to settle the order ({int(two_ways.sum())} row(s) read two ways). "
        f"Pass --dayfirst for dd{mark}mm{mark}yyyy or --date-format '{month_first}' for "
        f"mm{mark}dd{mark}yyyy" + (" (with the codes of the file's time of day)" if rest else "")
        + " (or convert the dates to ISO 8601, yyyy-mm-dd), and import again."
    )


_TIME_CODES = frozenset("HIMSpTRrkl")
_REFUSED_CODES = {
    "f": "fractions of a second (%f) are not supported; ISO 8601 times with fractions "
         "('2024-01-31 15:30:00.250') are read without --date-format",
    "Z": "zone names (%Z) are not read; give the zone with --tz, or use %z for offsets",
    "s": "epoch numbers are detected without --date-format",
    "c": "%c depends on the locale; spell the layout out (e.g. '%d.%m.%Y %H:%M:%S')",
    "x": "%x depends on the locale; spell the layout out (e.g. '%d.%m.%Y')",
    "X": "%X depends on the locale; spell the layout out (e.g. '%H:%M:%S')",
}
_OFFSET = r"^(?P<body>.*?)\s*(?P<sign>[+-])(?P<hh>\d{2}):?(?P<mm>\d{2})$"


def check_date_format(fmt: str) -> None:
    """Refuse a ``--date-format`` the importer cannot apply exactly, saying why."""
    codes = re.findall(r"%(.)", fmt.replace("%%", ""))
    if not codes:
        raise UsageError(f"--date-format {fmt!r} has no strftime codes; write the layout of the "
                         "file's times, e.g. '%d.%m.%Y' or '%d.%m.%Y %H:%M'.")
    for code in codes:
        if code in _REFUSED_CODES:
            raise UsageError(f"--date-format {fmt!r}: {_REFUSED_CODES[code]}.")
    if "z" in codes and not fmt.rstrip().endswith("%z"):
        raise UsageError(f"--date-format {fmt!r}: %z (the UTC offset) is read only at the end "
                         "of the format, e.g. '%d.%m.%Y %H:%M:%S%z'.")
    try:
        pc.strptime(pa.array(["x"]), format=fmt.rstrip().removesuffix("%z").rstrip(),
                    unit="s", error_is_null=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise UsageError(f"--date-format {fmt!r} is not a usable strftime format ({exc}).") \
            from exc


def _normalised(values: pa.Array) -> pa.Array:
    """Times compared as text: lower case, single spaces, numbers without leading zeros."""
    text = pc.utf8_lower(pc.utf8_trim_whitespace(values))
    text = pc.replace_substring_regex(text, pattern=r"\s+", replacement=" ")
    return pc.replace_substring_regex(text, pattern=r"(^|\D)0+(\d)", replacement=r"\1\2")


def _parse_format(values: pa.Array, ctx: ImportContext, label: str, fmt: str) -> ParsedTimes:
    """Every time read with ``--date-format``; each must match it and name a real date."""
    codes = set(re.findall(r"%(.)", fmt.replace("%%", "")))
    zoned = "z" in codes
    body, layout = values, fmt
    offset_s = np.zeros(len(values), dtype=np.int64)
    if zoned:
        layout = fmt.rstrip().removesuffix("%z").rstrip()
        has_offset = _mask(values, _OFFSET)
        if not has_offset.all():
            i = _first_bad(has_offset)
            raise UnusableInput(
                f"{ctx.src}: column {label}: line {ctx.first_line + i} has {values[i].as_py()!r}, "
                f"which does not end in a UTC offset (+hh:mm) as --date-format {fmt!r} says "
                f"({int((~has_offset).sum())} such row(s)). Fix the format or those rows and "
                "import again."
            )
        parts = pc.extract_regex(values, pattern=_OFFSET)
        body = pc.struct_field(parts, "body")
        sign = np.where(as_bool(pc.equal(pc.struct_field(parts, "sign"), "-")), -1, 1)
        offset_s = sign * (as_int64(pc.struct_field(parts, "hh")) * 3600
                           + as_int64(pc.struct_field(parts, "mm")) * 60)
    parsed = pc.strptime(body, format=layout, unit="s", error_is_null=True)
    matched = as_bool(parsed.is_valid())
    if not matched.all():
        i = _first_bad(matched)
        raise UnusableInput(
            f"{ctx.src}: column {label}: line {ctx.first_line + i} has {values[i].as_py()!r}, "
            f"which does not match --date-format {fmt!r} ({int((~matched).sum())} such row(s)). "
            "Check the format against that value (%d day, %m month, %Y year, %y two-digit "
            "year, %H:%M:%S time, %b month name) and import again."
        )
    # strptime rolls an impossible date over (31.02. becomes 02.03.): written back with the
    # same format, such a time no longer reads as its source text.
    try:
        again = pc.strftime(parsed, format=layout)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        again = None
    if again is not None:
        same = as_bool(pc.equal(_normalised(again), _normalised(body)))
        if not same.all():
            i = _first_bad(same)
            raise UnusableInput(
                f"{ctx.src}: column {label}: line {ctx.first_line + i} has "
                f"{values[i].as_py()!r}, which is no real date or time for --date-format "
                f"{fmt!r}: it would become {again[i].as_py()!r} (a day, month or hour out of "
                f"range?); {int((~same).sum())} such row(s). Fix those rows and import again."
            )
    ns = (as_int64(parsed) - offset_s) * NS_PER_SECOND
    description = f"times in the layout {fmt!r} (--date-format)"
    _check_range(ns, ctx, label, description)
    return ParsedTimes(ns, naive=not zoned, date_only=not (codes & _TIME_CODES),
                       description=description)


def _parse_iso(values: pa.Array, ctx: ImportContext, label: str,
               bad: _Complaint, form: str) -> ParsedTimes:
    _expect(values, _ISO, bad, f"{form} text")
    if _mask(values, _ISO_DATE).all():
        parsed = _cast_ts(values, pa.timestamp("ns"), ctx, label)
        return ParsedTimes(parsed, naive=True, date_only=True, description=f"{form} dates")
    normalised = pc.replace_substring_regex(values, pattern=r"\s*(UTC|GMT|z)$", replacement="Z")
    normalised = pc.replace_substring_regex(
        normalised, pattern=r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2})(Z|[+-].*)?$",
        replacement=r"\1:00\2")
    zoned = _mask(normalised, r"[T ]\d{2}:\d{2}.*(Z|[+-]\d{2}(:?\d{2})?)$")
    if zoned.all():
        ns = _cast_ts(normalised, pa.timestamp("ns", tz="UTC"), ctx, label)
        return ParsedTimes(ns, naive=False, date_only=False,
                           description=f"{form} text with a UTC offset")
    if zoned.any():
        raise bad(zoned if zoned[0] else ~zoned,
                  "a time with a zone offset" if zoned[0] else "a time without a zone offset")
    ns = _cast_ts(normalised, pa.timestamp("ns"), ctx, label)
    return ParsedTimes(ns, naive=True, date_only=False, description=f"{form} text without a zone")


def _cast_ts(values: pa.Array, target: pa.DataType, ctx: ImportContext, label: str) -> np.ndarray:
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
    return as_int64(parsed)


def read_times(table: pa.Table, ctx: ImportContext, tz: str | None) -> np.ndarray:
    layout = ctx.layout
    if len(layout.ts_columns) == 2:
        d, t = (strings(table, i) for i in layout.ts_columns)
        text = pc.binary_join_element_wise(pc.utf8_trim_whitespace(d),
                                           pc.utf8_trim_whitespace(t), " ")
        label = f"{layout.column_label(layout.ts_columns[0])}+" \
                f"{layout.column_label(layout.ts_columns[1])}"
    else:
        text = strings(table, layout.ts_columns[0])
        label = layout.column_label(layout.ts_columns[0])
    if len(text) == 0:
        raise UnusableInput(f"{ctx.src} has a header but no data rows. Nothing was written.")
    times = _parse_times(text, ctx, label)
    return resolve_zone(times, ctx, label, tz, str(text[0].as_py()))
