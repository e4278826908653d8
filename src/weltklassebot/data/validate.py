"""Snapshot validation: every rule, streamed by row group, with counts and the first offending rows.

``inspect_snapshot`` reports all violations (for ``snapshot validate``); ``require_valid`` turns
the first one into an ``InvalidSnapshot`` for commands that must not start on bad data (the
runbook's refresh procedure runs ``backtest`` as the validation step).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from weltklassebot.core.timeutil import format_duration, ns_to_iso
from weltklassebot.data.reader import SnapshotFile, float_array, open_snapshot, ts_ns_array
from weltklassebot.data.schema import KIND_BARS, KIND_TRADES, PRICE_COLUMNS
from weltklassebot.errors import InvalidSnapshot, UnusableInput


@dataclass(frozen=True)
class RowRef:
    """One offending row: 0-based index in file order, its timestamp and symbol when known."""

    index: int
    ts_ns: int | None
    symbol: str | None

    def describe(self) -> str:
        where = f"row {self.index}"
        if self.ts_ns is not None:
            where += f" (ts {ns_to_iso(self.ts_ns)}"
            where += f", symbol {self.symbol})" if self.symbol else ")"
        return where

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "ts": None if self.ts_ns is None else ns_to_iso(self.ts_ns),
            "ts_ns": self.ts_ns,
            "symbol": self.symbol,
        }


@dataclass(frozen=True)
class Violation:
    """One broken rule: how many rows break it and the first few of them."""

    rule: str
    description: str
    count: int
    examples: tuple[RowRef, ...]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "description": self.description,
            "count": self.count,
            "examples": [e.to_json_dict() for e in self.examples],
        }


@dataclass(frozen=True)
class ValidationReport:
    """Everything validation found: violations (errors), warnings and plain facts."""

    path: Path
    kind: str
    rows: int
    symbols: tuple[str, ...]
    ts_min_ns: int | None
    ts_max_ns: int | None
    interval_ns: dict[str, int]
    violations: tuple[Violation, ...]
    warnings: tuple[str, ...]
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "ok": self.ok,
            "kind": self.kind,
            "rows": self.rows,
            "symbols": list(self.symbols),
            "ts_min": None if self.ts_min_ns is None else ns_to_iso(self.ts_min_ns),
            "ts_max": None if self.ts_max_ns is None else ns_to_iso(self.ts_max_ns),
            "interval_ns": dict(sorted(self.interval_ns.items())),
            "interval": {k: format_duration(v) for k, v in sorted(self.interval_ns.items())},
            "violations": [v.to_json_dict() for v in self.violations],
            "warnings": list(self.warnings),
            "facts": self.facts,
        }


# Rule names and their human wording, in report order.
RULES: dict[str, str] = {
    "non_empty": "at least one row",
    "not_null": "no missing values in required columns",
    "ts_sorted": "timestamps sorted ascending per symbol",
    "ts_unique": "no duplicate (ts, symbol)",
    "price_finite_positive": "prices finite and > 0",
    "high_ge_open_close": "high >= max(open, close)",
    "low_le_open_close": "low <= min(open, close)",
    "volume_non_negative": "volume finite and >= 0",
    "size_positive": "trade size finite and > 0",
}

NO_SYMBOL = ""


class _RuleTally:
    __slots__ = ("count", "examples", "limit")

    def __init__(self, limit: int) -> None:
        self.count = 0
        self.examples: list[RowRef] = []
        self.limit = limit

    def add(self, positions: np.ndarray, offset: int, ts: np.ndarray | None,
            symbols: np.ndarray | None, names: list[str]) -> None:
        self.count += int(positions.size)
        room = self.limit - len(self.examples)
        for pos in positions[: max(room, 0)].tolist():
            symbol = names[int(symbols[pos])] if symbols is not None else None
            self.examples.append(
                RowRef(offset + pos, None if ts is None else int(ts[pos]), symbol or None)
            )


class _Inspector:
    """Streaming state across batches: per-symbol last timestamp, spacing histograms, tallies."""

    def __init__(self, kind: str, max_examples: int) -> None:
        self.kind = kind
        self.tallies: dict[str, _RuleTally] = {r: _RuleTally(max_examples) for r in RULES}
        self.symbol_codes: dict[str, int] = {}
        self.symbol_names: list[str] = []
        self.last_ts: dict[int, int] = {}
        self.spacing: dict[int, Counter[int]] = {}
        self.rows_per_symbol: Counter[int] = Counter()
        self.ts_min: int | None = None
        self.ts_max: int | None = None
        self.zero_volume = 0
        self.zero_volume_rows: list[RowRef] = []
        self.max_examples = max_examples
        # File order is time order across all symbols (lets multi-symbol files stream).
        self.time_ordered = True
        self.file_last_ts: int | None = None

    def codes_for(self, column: pa.Array | None, n: int) -> np.ndarray:
        if column is None:
            if NO_SYMBOL not in self.symbol_codes:
                self.symbol_codes[NO_SYMBOL] = len(self.symbol_names)
                self.symbol_names.append(NO_SYMBOL)
            return np.full(n, self.symbol_codes[NO_SYMBOL], dtype=np.int32)
        encoded = pc.dictionary_encode(column)
        local_names = encoded.dictionary.to_pylist()
        mapping = np.empty(len(local_names), dtype=np.int32)
        for i, name in enumerate(local_names):
            if name not in self.symbol_codes:
                self.symbol_codes[name] = len(self.symbol_names)
                self.symbol_names.append(name)
            mapping[i] = self.symbol_codes[name]
        indices = encoded.indices.to_numpy(zero_copy_only=False)
        return mapping[np.asarray(indices, dtype=np.int64)]

    def tally(self, rule: str, mask: np.ndarray, offset: int, ts: np.ndarray | None,
              codes: np.ndarray | None) -> None:
        positions = np.flatnonzero(mask)
        if positions.size:
            self.tallies[rule].add(positions, offset, ts, codes, self.symbol_names)

    def feed(self, batch: pa.RecordBatch, offset: int) -> None:
        n = batch.num_rows
        if n == 0:
            return
        names = batch.schema.names
        required = (["ts", *PRICE_COLUMNS, "volume"] if self.kind == KIND_BARS
                    else ["ts", "price", "size"])
        null_mask = np.zeros(n, dtype=bool)
        for name in required:
            col = batch.column(names.index(name))
            if col.null_count:
                null_mask |= np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        symbol_col = batch.column(names.index("symbol")) if "symbol" in names else None
        if symbol_col is not None and symbol_col.null_count:
            null_mask |= np.asarray(symbol_col.is_null().to_numpy(zero_copy_only=False),
                                    dtype=bool)
            symbol_col = pc.fill_null(symbol_col, "?")
        ts_col = batch.column(names.index("ts"))
        if ts_col.null_count:
            ts_col = pc.fill_null(ts_col, pa.scalar(0, type=ts_col.type))
        ts = ts_ns_array(ts_col)
        codes = self.codes_for(symbol_col, n)
        self.tally("not_null", null_mask, offset, ts, codes)
        valid = ~null_mask
        if valid.any():
            lo, hi = int(ts[valid].min()), int(ts[valid].max())
            self.ts_min = lo if self.ts_min is None else min(self.ts_min, lo)
            self.ts_max = hi if self.ts_max is None else max(self.ts_max, hi)
            if self.time_ordered:
                series = ts[valid]
                starts_after = self.file_last_ts is None or int(series[0]) >= self.file_last_ts
                self.time_ordered = starts_after and bool((np.diff(series) >= 0).all())
                self.file_last_ts = int(series[-1])
        self._check_order(ts, codes, valid, offset)
        if self.kind == KIND_BARS:
            self._check_bars(batch, names, ts, codes, valid, offset)
        else:
            self._check_trades(batch, names, ts, codes, valid, offset)

    def _check_order(self, ts: np.ndarray, codes: np.ndarray, valid: np.ndarray,
                     offset: int) -> None:
        rows = np.flatnonzero(valid)
        if rows.size == 0:
            return
        # Stable sort by symbol keeps file order inside each symbol (no sort for one symbol).
        first_code = codes[rows[0]]
        if bool((codes[rows] == first_code).all()):
            order = rows
        else:
            order = rows[np.argsort(codes[rows], kind="stable")]
        sorted_codes = codes[order]
        boundaries = np.flatnonzero(np.diff(sorted_codes)) + 1
        starts = np.concatenate(([0], boundaries))
        ends = np.concatenate((boundaries, [order.size]))
        bad_sorted = np.zeros(ts.size, dtype=bool)
        bad_dup = np.zeros(ts.size, dtype=bool)
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            idx = order[start:end]
            code = int(sorted_codes[start])
            series = ts[idx]
            prev = self.last_ts.get(code)
            self.rows_per_symbol[code] += int(idx.size)
            if prev is not None:
                deltas = np.diff(series, prepend=np.int64(prev))
                rows_for_delta = idx
            else:
                deltas = np.diff(series)
                rows_for_delta = idx[1:]
            bad_sorted[rows_for_delta[deltas < 0]] = True
            bad_dup[rows_for_delta[deltas == 0]] = True
            # Running maximum keeps a single backwards row from flagging every later row.
            self.last_ts[code] = max(int(series.max()), prev if prev is not None else -(1 << 63))
            positive_mask = deltas > 0
            positive = deltas[positive_mask]
            if positive.size:
                # Regular series have one dominant spacing: count it directly and sort only
                # the rest, so a clean file costs O(n), not O(n log n).
                head = positive[0]
                is_head = positive == head
                values, counts = np.unique(positive[~is_head], return_counts=True)
                hist = self.spacing.setdefault(code, Counter())
                hist[int(head)] += int(is_head.sum())
                for value, count in zip(values.tolist(), counts.tolist(), strict=True):
                    hist[value] += count
        self.tally("ts_sorted", bad_sorted, offset, ts, codes)
        self.tally("ts_unique", bad_dup, offset, ts, codes)

    def _check_bars(self, batch: pa.RecordBatch, names: list[str], ts: np.ndarray,
                    codes: np.ndarray, valid: np.ndarray, offset: int) -> None:
        o, h, lo, c, v = (float_array(batch.column(names.index(n)))
                          for n in ("open", "high", "low", "close", "volume"))
        with np.errstate(invalid="ignore"):
            bad_price = np.zeros(ts.size, dtype=bool)
            for arr in (o, h, lo, c):
                bad_price |= ~np.isfinite(arr) | (arr <= 0)
            bad_price &= valid
            self.tally("price_finite_positive", bad_price, offset, ts, codes)
            ok = valid & ~bad_price
            self.tally("high_ge_open_close", ok & (h < np.maximum(o, c)), offset, ts, codes)
            self.tally("low_le_open_close", ok & (lo > np.minimum(o, c)), offset, ts, codes)
            bad_volume = valid & (~np.isfinite(v) | (v < 0))
            self.tally("volume_non_negative", bad_volume, offset, ts, codes)
            zero = np.flatnonzero(valid & (v == 0))
        self.zero_volume += int(zero.size)
        for pos in zero[: max(self.max_examples - len(self.zero_volume_rows), 0)].tolist():
            self.zero_volume_rows.append(
                RowRef(offset + pos, int(ts[pos]), self.symbol_names[int(codes[pos])] or None)
            )

    def _check_trades(self, batch: pa.RecordBatch, names: list[str], ts: np.ndarray,
                      codes: np.ndarray, valid: np.ndarray, offset: int) -> None:
        price = float_array(batch.column(names.index("price")))
        size = float_array(batch.column(names.index("size")))
        with np.errstate(invalid="ignore"):
            self.tally("price_finite_positive", valid & (~np.isfinite(price) | (price <= 0)),
                       offset, ts, codes)
            self.tally("size_positive", valid & (~np.isfinite(size) | (size <= 0)),
                       offset, ts, codes)


def inspect_snapshot(path: Path | str, *, max_examples: int = 5,
                     gap_intervals: int = 3) -> ValidationReport:
    """Validate ``path`` against every rule; report all violations, warnings and facts.

    Raises ``UnusableInput`` when the file cannot be read at all.
    """
    snapshot = open_snapshot(path)
    inspector = _Inspector(snapshot.kind, max_examples)
    offset = 0
    for batch in snapshot.iter_batches():
        inspector.feed(batch, offset)
        offset += batch.num_rows
    rows = offset
    if rows == 0:
        inspector.tallies["non_empty"].count = 1
    if snapshot.kind == KIND_TRADES:
        # Trades may share a timestamp; only going backwards is an error.
        inspector.tallies["ts_unique"].count = 0
        inspector.tallies["ts_unique"].examples.clear()
    violations = tuple(
        Violation(rule, RULES[rule], t.count, tuple(t.examples))
        for rule, t in inspector.tallies.items()
        if t.count
    )
    symbols = tuple(sorted(n for n in inspector.symbol_names if n))
    interval: dict[str, int] = {}
    warnings: list[str] = []
    gaps: dict[str, Any] = {}
    thresholds: dict[int, int] = {}
    gap_counts: dict[int, int] = {}
    steps: dict[int, int] = {}
    for code, hist in sorted(inspector.spacing.items()):
        name = inspector.symbol_names[code]
        if not hist:
            continue
        # Most common spacing; ties broken by the smaller spacing so the result is stable.
        step = min(hist.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        interval[name] = step
        steps[code] = step
        if snapshot.kind != KIND_BARS:
            continue
        count = sum(n for d, n in hist.items() if d > gap_intervals * step)
        if count:
            thresholds[code] = gap_intervals * step
            gap_counts[code] = count
    # The first few gaps need the interval, known only now: a second pass over ts alone.
    first_gaps = _first_gaps(snapshot, inspector, thresholds, max_examples) if thresholds else {}
    for code, count in gap_counts.items():
        name = inspector.symbol_names[code]
        label = f" for symbol {name}" if name else ""
        warnings.append(
            f"{count} gap(s) longer than {gap_intervals} x {format_duration(steps[code])}{label}; "
            f"first at {', '.join(r.describe() for r in first_gaps.get(code, []))}"
        )
        gaps[name or "-"] = count
    if inspector.zero_volume:
        warnings.append(
            f"{inspector.zero_volume} zero-volume bar(s); first at "
            + ", ".join(r.describe() for r in inspector.zero_volume_rows)
        )
    facts: dict[str, Any] = {
        "rows_per_symbol": {inspector.symbol_names[c] or "-": n
                            for c, n in sorted(inspector.rows_per_symbol.items())},
        "zero_volume_bars": inspector.zero_volume,
        "gaps": gaps,
        "ts_zone": snapshot.ts_zone,
        "has_symbol_column": snapshot.has_symbol,
        "time_ordered": inspector.time_ordered,
        "metadata": None if snapshot.meta is None else snapshot.meta.to_json(),
    }
    return ValidationReport(
        path=snapshot.path,
        kind=snapshot.kind,
        rows=rows,
        symbols=symbols,
        ts_min_ns=inspector.ts_min,
        ts_max_ns=inspector.ts_max,
        interval_ns={(k or "-"): v for k, v in interval.items()},
        violations=violations,
        warnings=tuple(warnings),
        facts=facts,
    )


def _first_gaps(snapshot: SnapshotFile, inspector: _Inspector, thresholds: dict[int, int],
                limit: int) -> dict[int, list[RowRef]]:
    """The first ``limit`` rows per symbol whose spacing from the previous bar of that symbol
    exceeds its threshold, in file order (the same spacing rule as the first pass)."""
    found: dict[int, list[RowRef]] = {code: [] for code in thresholds}
    last: dict[int, int] = {}
    offset = 0
    columns = ["ts", "symbol"] if snapshot.has_symbol else ["ts"]
    for batch in snapshot.iter_batches(columns):
        ts_col = batch.column(0)
        valid = np.ones(batch.num_rows, dtype=bool)
        if ts_col.null_count:
            valid &= ~np.asarray(ts_col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
            ts_col = pc.fill_null(ts_col, pa.scalar(0, type=ts_col.type))
        ts = ts_ns_array(ts_col)
        if snapshot.has_symbol:
            names = batch.column(1).to_pylist()
            codes = np.array([inspector.symbol_codes.get(n, -1) if n is not None else -1
                              for n in names], dtype=np.int64)
        else:
            codes = np.full(batch.num_rows, inspector.symbol_codes.get(NO_SYMBOL, 0),
                            dtype=np.int64)
        for code, threshold in thresholds.items():
            rows = np.flatnonzero(valid & (codes == code))
            if rows.size == 0:
                continue
            series = ts[rows]
            prev = last.get(code)
            deltas = np.diff(series, prepend=np.int64(prev)) if prev is not None else np.diff(
                series)
            candidates = rows if prev is not None else rows[1:]
            hits = candidates[deltas > threshold]
            room = limit - len(found[code])
            for row in hits[:max(room, 0)].tolist():
                found[code].append(RowRef(offset + row, int(ts[row]),
                                          inspector.symbol_names[code] or None))
            last[code] = max(int(series.max()), prev if prev is not None else -(1 << 63))
        offset += batch.num_rows
        if all(len(rows) >= limit for rows in found.values()):
            break
    return found


def describe_violation(path: Path, violation: Violation) -> str:
    """One paragraph for a person: file, rule, first offending row, count, what to do."""
    first = violation.examples[0].describe() if violation.examples else "the file as a whole"
    more = f" ({violation.count} rows in all)" if violation.count > 1 else ""
    return (
        f"snapshot {path} is invalid: rule '{violation.rule}' ({violation.description}) is broken "
        f"at {first}{more}. Fix the source and re-import it with `python -m cli snapshot import`; "
        f"`python -m cli snapshot validate {path}` lists every violation."
    )


def require_valid(path: Path | str, *, kind: str = KIND_BARS) -> ValidationReport:
    """Validate and raise ``InvalidSnapshot`` on the first violation (exit status 1)."""
    report = inspect_snapshot(path, max_examples=1)
    if report.kind != kind:
        if report.kind == KIND_TRADES:
            raise UnusableInput(
                f"snapshot {report.path} holds trade ticks (ts, price, size, side), but this "
                "command needs OHLCV bars. Use a bars snapshot, or aggregate the trades into "
                "bars before importing."
            )
        raise UnusableInput(f"snapshot {report.path} holds {report.kind}, not {kind}.")
    if report.violations:
        raise InvalidSnapshot(describe_violation(report.path, report.violations[0]))
    return report
