"""What a report shows, as plain JSON data: series downsampled for display, the monthly-returns
grid, the rolling Sharpe, the trades, the risk events and the run's identity.

Everything here is computed from the run directory (and the bars of its snapshot, for the
price chart and the benchmark curve), so ``python -m cli report RUN_DIR`` rebuilds the same
report byte for byte as long as the snapshot is where the manifest says.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from weltklassebot.core.decimal import format_scaled
from weltklassebot.core.timeutil import NS_PER_DAY, format_duration
from weltklassebot.engine.equity_hash import format_scaled_array, peak_magnitude
from weltklassebot.runs.benchmark import MarketTape, buy_and_hold
from weltklassebot.runs.record import decimal_units
from weltklassebot.runs.report.downsample import DISPLAY_BUCKETS, bucket_first, minmax_indices
from weltklassebot.runs.results import equity_units
from weltklassebot.runs.trades import TRADES

MAX_TRADE_ROWS = 50_000  # the report's table; trades.parquet has every trade
_DECIMAL_COLUMNS = ("entry_price", "exit_price", "qty", "pnl", "fees")
MAX_EVENTS = 1_000  # risk transitions and denied orders listed one by one
MAX_MARKERS = 2_000  # entry (and exit) markers per symbol: the first in each time span
_NS_PER_MS = 1_000_000


def load_equity(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps (int64 ns) and equity in the quote currency (float64)."""
    ts, units, scale = equity_units(run_dir / "equity.parquet")
    if not ts.size:
        return ts, np.zeros(0, np.float64)
    return ts, units.astype(np.float64) / 10.0**scale


def drawdown_of(values: np.ndarray, initial: float) -> np.ndarray:
    """(peak - value) / peak, the peak starting at ``initial``; 0 where the peak is not
    positive. Computed in place: the same operations in the same order, fewer passes."""
    peaks = np.maximum.accumulate(np.concatenate(([initial], values)))[1:]
    drawdown: np.ndarray = peaks - values
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdown /= peaks
    drawdown[~(peaks > 0)] = 0.0
    return drawdown


def _ms(ts: np.ndarray) -> list[int]:
    values: list[int] = (ts // _NS_PER_MS).astype(np.int64).tolist()
    return values


def _round(values: np.ndarray, digits: int = 10) -> list[float | None]:
    """Floats for JSON with ``digits`` significant digits (NaN -> null): display precision."""
    texts = map(f"{{:.{digits}g}}".format, values.tolist())
    out: list[float | None] = list(map(float, texts))
    finite = np.isfinite(values)
    if not finite.all():
        for i in np.flatnonzero(~finite).tolist():
            out[i] = None
    return out


def series(ts: np.ndarray, values: np.ndarray, digits: int = 10) -> dict[str, Any]:
    keep = minmax_indices(values)
    return {"x": _ms(ts[keep]), "y": _round(values[keep], digits)}


def rolling_sharpe(ts: np.ndarray, values: np.ndarray, initial: float,
                   periods_per_year: float) -> dict[str, Any] | None:
    """Sharpe over a moving window: a quarter of a year of points, or a quarter of the run
    when that is shorter (at least 2 points)."""
    n = int(values.size)
    window = max(2, min(round(periods_per_year / 4), n // 4))
    if n < window + 1 or window < 2:
        return None
    # Each step below is one array operation done in place where it can be: the same
    # operations in the same order as the plain formulas, so the same bits, fewer passes.
    previous = np.empty(n)
    previous[0] = initial
    previous[1:] = values[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = values / previous
    returns -= 1.0
    returns[previous == 0] = 0.0
    centre = float(returns.mean())
    shifted = returns
    shifted -= centre  # the variance does not move; the sums lose less precision
    c1 = np.empty(n + 1)
    c1[0] = 0.0
    np.cumsum(shifted, out=c1[1:])
    shifted *= shifted
    c2 = np.empty(n + 1)
    c2[0] = 0.0
    np.cumsum(shifted, out=c2[1:])
    s1 = c1[window:] - c1[:-window]
    var = c2[window:] - c2[:-window]  # s2, then the variance
    square = s1 * s1
    square /= window
    var -= square
    var /= window - 1
    np.maximum(var, 0.0, out=var)
    usable = var > 1e-30
    sharpe = s1
    sharpe /= window
    sharpe += centre
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe /= np.sqrt(var, out=var)
    sharpe[~usable] = np.nan
    sharpe *= math.sqrt(periods_per_year)
    out = series(ts[window - 1:], sharpe, 6)
    span = int(ts[window - 1] - ts[0]) if n > window else 0
    out["window"] = window
    out["window_text"] = f"{window:,} points" + (
        f" (about {format_duration(span) if span < 3 * NS_PER_DAY else _days(span)})"
        if span > 0 else "")
    return out


def _days(span_ns: int) -> str:
    return f"{span_ns / NS_PER_DAY:,.0f} days"


def monthly_returns(ts: np.ndarray, values: np.ndarray, initial: float) -> dict[str, Any]:
    """Each calendar month's return (last point of the month over the last point before it,
    the first month over the initial equity), per year, with the year's return last."""
    if not ts.size:
        return {"years": [], "z": [], "text": []}
    # A month changes only where the UTC day does: months of the last point of each day.
    days = ts // NS_PER_DAY
    day_ends = np.flatnonzero(np.concatenate((np.diff(days) != 0, [True])))
    months = days[day_ends].astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    month_ends = np.flatnonzero(np.concatenate((np.diff(months) != 0, [True])))
    return month_table(months[month_ends], values[day_ends[month_ends]], initial)


def month_table(month_ids: np.ndarray, closes: np.ndarray, initial: float) -> dict[str, Any]:
    """The heatmap of monthly returns from each month's last equity (``month_ids``: months
    since 1970-01, in order), with each year's return in the 13th column."""
    before = np.concatenate(([initial], closes[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        rets = np.where(before != 0, closes / before - 1.0, np.nan)
    years = sorted({int(m // 12) + 1970 for m in month_ids.tolist()})
    row = {y: i for i, y in enumerate(years)}
    z: list[list[float | None]] = [[None] * 13 for _ in years]
    for m, r in zip(month_ids.tolist(), rets.tolist(), strict=True):
        z[row[m // 12 + 1970]][m % 12] = None if not math.isfinite(r) else float(f"{r:.6g}")
    year_of = (month_ids // 12 + 1970).tolist()
    start = initial
    for year in years:
        ends = [c for c, y in zip(closes.tolist(), year_of, strict=True) if y == year]
        if ends and start:
            z[row[year]][12] = float(f"{ends[-1] / start - 1.0:.6g}")
            start = ends[-1]
    text = [["" if v is None else f"{v * 100:.1f}%" for v in r] for r in z]
    return {"years": years, "z": z, "text": text}


def trades_payload(run_dir: Path, tape: MarketTape | None) -> tuple[dict[str, Any],
                                                                    list[dict[str, Any]]]:
    """The trades table (at most ``MAX_TRADE_ROWS`` rows) and each symbol's entry and exit
    markers for the price chart."""
    path = run_dir / TRADES
    columns = ["trade", "symbol", "side", "entry_ts", "entry_price", "exit_ts", "exit_price",
               "qty", "pnl", "return", "fees", "bars_held", "open"]
    if not path.is_file():
        return {"columns": columns, "rows": [], "total": 0}, []
    table = pq.read_table(path)
    total = table.num_rows
    if not total:
        return {"columns": columns, "rows": [], "total": 0}, []
    shown = table.slice(0, MAX_TRADE_ROWS).combine_chunks()
    text = rows_json(shown, columns)
    rows: RawJSON | list[tuple[Any, ...]] = (
        plain_rows(shown, columns) if text is None
        else RawJSON(text, lambda: plain_rows(shown, columns)))
    markers: list[dict[str, Any]] = []
    if tape is not None:
        everything = table.select(["symbol", "side", "entry_ts", "exit_ts", "entry_price",
                                   "exit_price", "trade", "pnl", "open"])
        for name, bars in tape.symbols.items():
            if not bars.ts.size:
                continue
            mine = everything.filter(pc.equal(everything.column("symbol"), name))
            markers.append(_markers(name, mine, int(bars.ts[0]), int(bars.ts[-1])))
    return {"columns": columns, "rows": rows, "total": total}, markers


@dataclass(frozen=True)
class RawJSON:
    """JSON text that the page takes as it is (``render_page`` splices it in), with the same
    data as plain Python values from ``plain`` for any other use."""

    text: str
    plain: Callable[[], Any]


def plain_rows(shown: pa.Table, columns: list[str]) -> list[tuple[Any, ...]]:
    """The trades table's rows as Python values (a tuple per row: the same JSON arrays as
    lists): timestamps in ms, decimals as plain texts, returns to six digits."""
    data: dict[str, list[Any]] = {}
    for name in columns:
        col = shown.column(name).chunk(0)
        if name.endswith("_ts"):
            data[name] = _ms_or_none(col)
        elif name in _DECIMAL_COLUMNS:
            data[name] = _plain_texts(col, name)
        elif name == "return":
            values = (col.fill_null(0.0) if col.null_count else col).to_numpy(
                zero_copy_only=False).tolist()
            data[name] = _with_nulls(list(map(float, map("{:.6g}".format, values))), col)
        else:
            data[name] = col.to_pylist()
    return list(zip(*(data[c] for c in columns), strict=True))


def rows_json(shown: pa.Table, columns: list[str]) -> str | None:
    """``plain_rows`` as the JSON text ``json.dumps`` gives it (compact, non-ASCII kept),
    rendered column-wise with Arrow kernels; None where that is not sure to be the same text
    (a decimal beyond int64, a return that is not finite, a column of another type)."""
    texts = []
    for name in columns:
        text = _json_texts(shown.column(name).chunk(0), name)
        if text is None:
            return None
        texts.append(text.fill_null("null") if text.null_count else text)
    cells = pc.binary_join_element_wise(*texts, ",")
    rows = pc.binary_join_element_wise("[", cells, "],", "")
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32)
    start, end = int(offsets[rows.offset]), int(offsets[rows.offset + len(rows)])
    body: bytes = rows.buffers()[2].to_pybytes()[start:end - 1]  # the last comma dropped
    return "[" + body.decode("utf-8") + "]"


def _json_texts(col: pa.Array, name: str) -> pa.Array | None:
    """One column's JSON texts per row (null where the value is null), or None."""
    kind = col.type
    if name.endswith("_ts"):
        ns = np.asarray(col.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False),
                        dtype=np.int64)
        return _nulls_of(pa.array(ns // _NS_PER_MS).cast(pa.string()), col)
    if name in _DECIMAL_COLUMNS:
        filled = col.fill_null(pa.scalar(0, type=kind)) if col.null_count else col
        units, scale = decimal_units(filled, TRADES, name)
        if units.dtype == object:
            return None
        return _nulls_of(pc.binary_join_element_wise(
            '"', format_scaled_array(units, scale), '"', ""), col)
    if name == "return":
        values = np.asarray((col.fill_null(0.0) if col.null_count else col).to_numpy(
            zero_copy_only=False), dtype=np.float64)
        if not pa.types.is_floating(kind) or not np.isfinite(values).all():
            return None  # json.dumps refuses NaN and infinity: let it say so
        reprs = map(repr, map(float, map("{:.6g}".format, values.tolist())))
        return _nulls_of(pa.array(list(reprs), type=pa.string()), col)
    if pa.types.is_string(kind):
        encoded = col.dictionary_encode()
        quoted = [json.dumps(v, ensure_ascii=False) for v in encoded.dictionary.to_pylist()]
        return pc.take(pa.array(quoted, type=pa.string()), encoded.indices)
    if pa.types.is_integer(kind):
        return col.cast(pa.string())
    if pa.types.is_boolean(kind):
        return pc.if_else(col, "true", "false")
    return None


def _nulls_of(texts: pa.Array, column: pa.Array) -> pa.Array:
    """``texts`` with ``column``'s nulls."""
    if not column.null_count:
        return texts
    return pc.if_else(column.is_null(), pa.scalar(None, type=pa.string()), texts)


def _ms_or_none(column: pa.Array) -> list[int | None]:
    """Timestamps (ns) as milliseconds, floored; null stays None."""
    ns = np.asarray(column.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False),
                    dtype=np.int64)
    values: list[int | None] = (ns // _NS_PER_MS).tolist()
    return _with_nulls(values, column)


def _plain_texts(column: pa.Array, name: str) -> list[str | None]:
    """Decimal values in plain notation without trailing zeros or point (``format(value, "f")``
    trimmed); null: None."""
    # The values under nulls are unspecified: zeros, replaced by None at the end.
    filled = column.fill_null(pa.scalar(0, type=column.type)) if column.null_count else column
    units, scale = decimal_units(filled, TRADES, name)
    texts: list[str | None] = (format_scaled_array(units, scale).to_pylist()
                               if units.dtype != object
                               else [format_scaled(int(u), scale) for u in units.tolist()])
    return _with_nulls(texts, column)


def _with_nulls(values: list[Any], column: pa.Array) -> list[Any]:
    if column.null_count:
        for i in np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False)).tolist():
            values[i] = None
    return values


def _markers(symbol: str, table: Any, start: int, stop: int) -> dict[str, Any]:
    """Entry and exit markers: the first in each time span, converted only once chosen."""
    entry_ts = np.asarray(table.column("entry_ts").cast("int64").to_numpy(), dtype=np.int64)
    keep = bucket_first(entry_ts, start, stop, MAX_MARKERS)
    chosen = table.take(pa.array(keep, type=pa.int64()))
    trade = chosen.column("trade").to_pylist()
    side = chosen.column("side").to_pylist()
    entries = {
        "x": _ms(entry_ts[keep]),
        "y": _floats(chosen.column("entry_price").combine_chunks()),
        "side": side,
        "text": [f"#{t} {s} entry" for t, s in zip(trade, side, strict=True)],
    }
    is_open = np.asarray(table.column("open").fill_null(False).to_numpy(), dtype=bool)
    closed = np.flatnonzero(~is_open)
    exit_ts = np.asarray(table.column("exit_ts").cast("int64").fill_null(0).to_numpy(),
                         dtype=np.int64)[closed]
    kept = closed[bucket_first(exit_ts, start, stop, MAX_MARKERS)]
    ended = table.take(pa.array(kept, type=pa.int64()))
    exit_raw = ended.column("exit_ts").cast("int64").to_pylist()
    exits = {
        "x": [v // _NS_PER_MS for v in exit_raw],
        "y": _floats(ended.column("exit_price").combine_chunks()),
        "text": [f"#{t} exit, PnL {p}"
                 for t, p in zip(ended.column("trade").to_pylist(),
                                 _plain_texts(ended.column("pnl").combine_chunks(), "pnl"),
                                 strict=True)],
    }
    return {"symbol": symbol, "entries": entries, "exits": exits,
            "entries_total": int(entry_ts.size), "exits_total": int(closed.size)}


def _floats(column: pa.Array) -> list[float]:
    """Decimal values as the nearest doubles, as ``float(Decimal)`` gives them: one division
    when the units and the power of ten are exact doubles (then it is correctly rounded)."""
    units, scale = decimal_units(column, TRADES, "price")
    if units.dtype != object and 0 <= scale <= 22 and not column.null_count and (
            peak_magnitude(units) <= 1 << 53):
        values: list[float] = (units.astype(np.float64) / 10.0**scale).tolist()
        return values
    return [float(v) for v in column.to_pylist()]


def prices_payload(tape: MarketTape | None, markers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if tape is None:
        return []
    by_symbol = {m["symbol"]: m for m in markers}
    out = []
    for name, bars in tape.symbols.items():
        if not bars.ts.size:
            continue
        prices = bars.prices()
        entry = {"symbol": name, **series(bars.ts, prices)}
        entry["markers"] = by_symbol.get(name)
        out.append(entry)
    return out


def risk_payload(run_dir: Path, summary: dict[str, Any], last_ts_ns: int | None) -> dict[str, Any]:
    """Risk transitions, denial counts and the first ``MAX_EVENTS`` denied orders, and the
    spans spent outside ACTIVE (shaded on the equity chart)."""
    transitions: list[dict[str, Any]] = []
    denied: list[dict[str, Any]] = []
    path = run_dir / "events.jsonl"
    if path.is_file():
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if '"risk_transition"' in line and len(transitions) < MAX_EVENTS:
                    event = json.loads(line)
                    if event.get("event") == "risk_transition":
                        transitions.append({k: event.get(k) for k in
                                            ("ts", "ts_ns", "from", "to", "reason", "detail")})
                elif '"order_denied"' in line and len(denied) < MAX_EVENTS:
                    event = json.loads(line)
                    if event.get("event") == "order_denied":
                        denied.append({k: event.get(k) for k in
                                       ("ts", "order_id", "symbol", "side", "qty", "reason",
                                        "detail")})
    periods = []
    for i, t in enumerate(transitions):
        if t["to"] == "ACTIVE" or t.get("ts_ns") is None:
            continue
        end = transitions[i + 1]["ts_ns"] if i + 1 < len(transitions) else last_ts_ns
        if end is not None:
            periods.append({"state": t["to"], "from": int(t["ts_ns"]) // _NS_PER_MS,
                            "to": int(end) // _NS_PER_MS})
    denials = summary.get("denials") or {}
    return {"transitions": transitions, "denials": denials,
            "denial_total": sum(int(v) for v in denials.values()),
            "denied": denied, "periods": periods, "state": summary.get("risk_state")}


def report_payload(run_dir: Path, summary: dict[str, Any], manifest: dict[str, Any],
                   tape: MarketTape | None) -> dict[str, Any]:
    ts, values = load_equity(run_dir)
    initial = float(summary["initial_equity"])
    stats = summary.get("stats") or {}
    ppy = float(stats.get("periods_per_year") or 252.0)
    bench = buy_and_hold(tape, ts, initial) if tape is not None and ts.size else None
    trades, markers = trades_payload(run_dir, tape)
    payload: dict[str, Any] = {
        "mode": "report",
        "title": report_title(summary),
        "currency": (manifest.get("config") or {}).get("execution", {}).get(
            "quote_currency", ""),
        "summary": {k: summary.get(k) for k in
                    ("strategy", "strategy_version", "params", "data", "seed", "bars",
                     "equity_points", "first_ts", "last_ts", "initial_equity", "final_equity",
                     "fills", "orders", "equity_hash", "risk_state", "annualisation",
                     "notice")},
        "stats": stats,
        "benchmark": summary.get("benchmark"),
        "identity": identity_rows(summary, manifest),
        "points": int(ts.size),
        "buckets": DISPLAY_BUCKETS,
        "equity": series(ts, values),
        "drawdown": series(ts, drawdown_of(values, initial), 6),
        "benchmark_equity": None if bench is None else series(ts, bench),
        "benchmark_drawdown": None if bench is None else series(ts, drawdown_of(bench, initial),
                                                                6),
        "rolling_sharpe": rolling_sharpe(ts, values, initial, ppy),
        "benchmark_rolling_sharpe": None if bench is None else rolling_sharpe(
            ts, bench, initial, ppy),
        "monthly": monthly_returns(ts, values, initial),
        "prices": prices_payload(tape, markers),
        "trades": trades,
        "risk": risk_payload(run_dir, summary, int(ts[-1]) if ts.size else None),
    }
    return payload


def report_title(summary: dict[str, Any]) -> str:
    data = summary.get("data") or {}
    symbols = ", ".join(data.get("symbols") or [])
    interval = data.get("interval")
    what = f"{summary.get('strategy')} on {symbols}" if symbols else str(summary.get("strategy"))
    return f"{what} ({interval})" if interval else what


def identity_rows(summary: dict[str, Any], manifest: dict[str, Any]) -> list[list[str]]:
    """The run's identity: what a reader needs to reproduce or replay it."""
    strategy = manifest.get("strategy") or {}
    snapshot = manifest.get("snapshot") or {}
    config = manifest.get("config") or {}
    execution = config.get("execution") or {}
    fees = execution.get("fees") or {}
    slippage = execution.get("slippage") or {}
    params = strategy.get("params") or {}
    data = summary.get("data") or {}
    rows = [
        ["Strategy", f"{strategy.get('name')} {strategy.get('version')}"],
        ["Parameters", ", ".join(f"{k}={v}" for k, v in params.items()) or "(none)"],
        ["Strategy code SHA-256", str(strategy.get("code_hash"))],
        ["Seed", str(manifest.get("seed"))],
        ["Snapshot", str(snapshot.get("path"))],
        ["Snapshot SHA-256", str(snapshot.get("sha256"))],
        ["Symbols", ", ".join(snapshot.get("symbols") or [])],
        ["Bars", f"{data.get('rows', snapshot.get('rows'))} rows, {data.get('interval')} bars, "
                 f"{data.get('first_bar')} to {data.get('last_bar')}"],
        ["Equity hash", str(manifest.get("equity_hash"))],
        ["Initial cash", f"{execution.get('initial_cash')} {execution.get('quote_currency')}"],
        ["Fees", f"maker {fees.get('maker_bps')} bps, taker {fees.get('taker_bps')} bps, "
                 f"minimum {fees.get('min_fee')}"],
        ["Slippage", f"{slippage.get('model')} ({slippage.get('bps')} bps)"],
        ["Package version", str(manifest.get("package_version"))],
        ["Git commit", str(manifest.get("git_commit"))],
        ["Run", f"{manifest.get('kind')}, started {manifest.get('run_started_utc')}"],
        ["Run directory", str(summary.get("run_dir"))],
    ]
    live = manifest.get("live")
    if isinstance(live, dict):
        rows.append(["Live run", f"{live.get('run_id')} (complete: {live.get('complete')})"])
    return rows
