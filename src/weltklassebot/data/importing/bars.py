"""OHLCV bars: read, drop empty bars and exact duplicates, sort, move end-of-bar times to start.

Two different bars at one time make the file contradict itself and are refused; runs of bars
copied from another time are warned about.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from weltklassebot.core.timeutil import NS_PER_DAY, format_duration, ns_to_iso
from weltklassebot.data.importing.anomalies import copied_runs, sort_rows
from weltklassebot.data.importing.context import MAX_NAMED_ROWS, ImportContext, first_few
from weltklassebot.data.importing.source import Opener, floats, read_table
from weltklassebot.data.importing.symbols import leading_columns, symbol_codes, symbol_suffix
from weltklassebot.data.importing.times import read_times
from weltklassebot.data.importing.volume import choose_volume
from weltklassebot.errors import InvalidSnapshot, UnusableInput


def build_bars(opener: Opener, ctx: ImportContext, symbol: str | None,
               tz: str | None) -> tuple[pa.Table, list[str]]:
    layout = ctx.layout
    text_cols = set(layout.ts_columns) | ({layout.fields["symbol"]} if "symbol" in layout.fields
                                         else set())
    table = read_table(opener, ctx, text_cols, set())
    source_rows = table.num_rows
    ctx.extra["source_rows"] = source_rows
    ts = read_times(table, ctx, tz)
    codes, names, keep_symbol = symbol_codes(table, ctx, symbol, table.num_rows)
    o, h, lo, c = (floats(table, layout.fields[k]) for k in ("open", "high", "low", "close"))
    v, learnt_quote = choose_volume(table, ctx, c, names[0] if len(names) == 1 else None)
    del table
    line = np.arange(ts.size, dtype=np.int64) + ctx.first_line

    empty = np.isnan(o) & np.isnan(h) & np.isnan(lo) & np.isnan(c)
    if empty.any():
        rows = np.flatnonzero(empty)
        ctx.fixes.append(f"dropped {len(rows)} row(s) with no prices at all (no trades in the "
                         f"interval), at {ctx.lines(rows)}")
        keep = ~empty
        ts, codes, o, h, lo, c, v, line = (a[keep] for a in (ts, codes, o, h, lo, c, v, line))

    order = sort_rows(ts, codes, ctx.fixes, lambda rows: ctx.lines(rows, line), "bars")
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
                f"{ns_to_iso(int(ts[k]))}{symbol_suffix(names, codes[k], keep_symbol)} at lines "
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
                         + first_few((line[k] for k in dropped), dropped.size)
                         + " (each repeated the row before it exactly)")
        ts, codes, line, ohlcv = ts[keep], codes[keep], line[keep], ohlcv[keep]

    interval = _intervals(ts, codes)
    if layout.end_of_bar_times:
        ts = _shift_to_bar_start(ts, codes, interval, ctx)

    for first, length, original in copied_runs(ts, codes, ohlcv):
        shift = int(ts[first] - ts[original])
        where = symbol_suffix(names, codes[first], keep_symbol)
        ctx.warnings.append(
            f"{length} consecutive bars {ns_to_iso(int(ts[first]))} .. "
            f"{ns_to_iso(int(ts[first + length - 1]))}{where} "
            f"(source lines {_line_span(line[first:first + length])}) repeat the "
            f"open/high/low/close/volume of {ns_to_iso(int(ts[original]))} .. "
            f"{ns_to_iso(int(ts[original + length - 1]))} exactly, {format_duration(shift)} "
            "earlier: most likely a block copied by the data source, not real trading. Check "
            "them before relying on this period."
        )

    ctx.extra["bar_interval_ns"] = interval
    if learnt_quote:
        ctx.extra["quote_currency_from_volume"] = learnt_quote
    columns = leading_columns(ts, codes, names, keep_symbol)
    for i, key in enumerate(("open", "high", "low", "close", "volume")):
        columns[key] = pa.array(ohlcv[:, i], type=pa.float64())
    ctx.extra["line_of_row"] = line
    return pa.table(columns), names


def _ohlcv_text(row: np.ndarray) -> str:
    return "OHLCV " + "/".join(f"{x:g}" for x in row.tolist())


def _line_span(lines: np.ndarray) -> str:
    ordered = np.sort(lines)
    lo, hi = int(ordered[0]), int(ordered[-1])
    if hi - lo + 1 == ordered.size:
        return f"{lo}-{hi}" if hi > lo else str(lo)
    return first_few(ordered, ordered.size)


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
                        ctx: ImportContext) -> np.ndarray:
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
