"""Time zones: anchor times that carry no zone (``--tz``, a UTC banner, or 00:00 UTC for dates).

Local times that fall into a daylight-saving change name no single instant and are refused.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from weltklassebot.data.importing.context import ImportContext
from weltklassebot.data.importing.source import as_int64
from weltklassebot.errors import UnusableInput, UsageError

if TYPE_CHECKING:
    from weltklassebot.data.importing.times import ParsedTimes

_BANNER_UTC = re.compile(r"\b(utc|gmt)\b", re.IGNORECASE)


def resolve_zone(times: ParsedTimes, ctx: ImportContext, label: str, tz: str | None,
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
    early_ns, late_ns = as_int64(early), as_int64(late)
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


def check_tz(tz: str) -> None:
    if tz.upper() in ("UTC", "Z", "GMT"):
        return
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(f"--tz {tz!r} is not a known time zone. Use an IANA name such as UTC, "
                         "Europe/Berlin or America/New_York.") from exc
