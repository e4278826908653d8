"""Snapshot validation: every rule, streamed by row group, with counts and the first offending rows.

``inspect_snapshot`` reports all violations (for ``snapshot validate``); ``require_valid`` turns
the first one into an ``InvalidSnapshot`` for commands that must not start on bad data (the
runbook's refresh procedure runs ``backtest`` as the validation step).

This is the one acceptance rule: ``validate``, ``promote`` and every command that reads bars call
it, and it checks everything the engine needs of the data (metadata keys, time range, symbols,
prices that survive conversion to ticks, volumes in quantity range, a known bar interval), so a
file it accepts runs, and a file that could not run is refused here, naming the row or key.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from weltklassebot.core.timeutil import format_duration, ns_to_iso
from weltklassebot.data.feed import read_ahead
from weltklassebot.data.reader import (
    SnapshotFile,
    float_array,
    open_snapshot,
    ts_ns_array,
    ts_ns_checked,
)
from weltklassebot.data.schema import (
    KIND_BARS,
    KIND_TRADES,
    PRICE_COLUMNS,
    SnapshotMeta,
    meta_interval_ns,
)
from weltklassebot.data.ticks import TICK_TOLERANCE, to_ticks, volume_too_large
from weltklassebot.errors import InvalidSnapshot, UnusableInput

if TYPE_CHECKING:
    from weltklassebot.config.model import DataConfig

DEFAULT_INCREMENT = Decimal("0.00000001")  # the engine's default (model.instrument)
DEFAULT_SYMBOL = "default"  # a single-instrument file's name when nothing names it


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
class KeyRef:
    """One offending metadata key and what is wrong with its value."""

    key: str
    problem: str

    def describe(self) -> str:
        return f"metadata key {self.key} ({self.problem})"

    def to_json_dict(self) -> dict[str, Any]:
        return {"key": self.key, "problem": self.problem}


@dataclass(frozen=True)
class Violation:
    """One broken rule: how many rows (or metadata keys) break it and the first few of them."""

    rule: str
    description: str
    count: int
    examples: tuple[RowRef, ...]
    keys: tuple[KeyRef, ...] = ()
    detail: str | None = None
    """What is wrong at the first example, when the rule alone does not say (e.g. which price)."""

    def where(self, limit: int | None = None) -> str:
        """The first offending rows or keys (at most ``limit``), as text."""
        refs = [k.describe() for k in self.keys] or [e.describe() for e in self.examples]
        refs = refs[:limit]
        text = ", ".join(refs) if refs else "the file as a whole"
        return f"{text}: {self.detail}" if self.detail else text

    def counted(self) -> str:
        """``3 row(s)`` or ``2 metadata key(s)``."""
        return f"{self.count:,} {'metadata key' if self.keys else 'row'}(s)"

    def to_json_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "rule": self.rule,
            "description": self.description,
            "count": self.count,
            "examples": [e.to_json_dict() for e in self.examples],
        }
        if self.detail:
            document["detail"] = self.detail
        if self.keys:
            document["keys"] = [k.to_json_dict() for k in self.keys]
        return document


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
    "metadata_valid": "weltklassebot metadata keys of the right type and range",
    "non_empty": "at least one row",
    "not_null": "no missing values in required columns",
    "symbol_not_empty": "symbol names not empty",
    "ts_range": "timestamps from 1970-01-01T00:00:00Z to 2262-04-11T23:47:16Z",
    "ts_sorted": "timestamps sorted ascending per symbol",
    "ts_unique": "no duplicate (ts, symbol)",
    "price_finite_positive": "prices finite and > 0",
    "price_ticks": (f"prices whole multiples of the price increment (within {TICK_TOLERANCE:g} "
                    "of an increment, at least one increment)"),
    "high_ge_open_close": "high >= max(open, close)",
    "low_le_open_close": "low <= min(open, close)",
    "volume_non_negative": "volume finite and >= 0",
    "volume_in_range": "volume below 2**63 quantity increments",
    "size_positive": "trade size finite and > 0",
    "bar_interval_known": "a bar interval per symbol (metadata, config, or two bars to infer it)",
}


class InstrumentFacts:
    """Price and quantity increments and the stated bar interval of each symbol, resolved as a
    backtest resolves them: config per symbol > config [data] > snapshot metadata > default."""

    def __init__(self, meta: SnapshotMeta | None, data: DataConfig | None,
                 has_symbol: bool) -> None:
        self.meta = meta
        self.data = data
        self.has_symbol = has_symbol
        self._meta_price = Decimal(meta.price_increment) if meta and meta.price_increment \
            else None
        self._meta_qty = Decimal(meta.quantity_increment) if meta and meta.quantity_increment \
            else None
        self._meta_interval = meta_interval_ns(meta)

    def file_symbol(self) -> str:
        """The instrument name of a file without a symbol column."""
        meta = self.meta
        name = (self.data.symbol if self.data else None) or (meta.symbol if meta else None)
        if not name and meta is not None and isinstance(meta.extra.get("instrument"), str):
            name = str(meta.extra["instrument"])
        return name or DEFAULT_SYMBOL

    def _name(self, symbol: str) -> str:
        return symbol if self.has_symbol else self.file_symbol()

    def price_increment(self, symbol: str) -> Decimal:
        own = self.data.instruments.get(self._name(symbol)) if self.data else None
        return ((own.price_increment if own else None)
                or (self.data.price_increment if self.data else None)
                or self._meta_price or DEFAULT_INCREMENT)

    def quantity_increment(self, symbol: str) -> Decimal:
        own = self.data.instruments.get(self._name(symbol)) if self.data else None
        return ((own.quantity_increment if own else None)
                or (self.data.quantity_increment if self.data else None)
                or self._meta_qty or DEFAULT_INCREMENT)

    def stated_interval(self, symbol: str) -> int | None:
        own = self.data.instruments.get(self._name(symbol)) if self.data else None
        return ((own.bar_interval if own else None)
                or (self.data.bar_interval if self.data else None)
                or self._meta_interval)

NO_SYMBOL = ""


class _RuleTally:
    __slots__ = ("count", "detail", "examples", "limit")

    def __init__(self, limit: int) -> None:
        self.count = 0
        self.examples: list[RowRef] = []
        self.limit = limit
        self.detail: str | None = None

    def add(self, positions: np.ndarray, offset: int, ts: np.ndarray | None,
            symbols: np.ndarray | None, names: list[str],
            ts_known: np.ndarray | None = None) -> None:
        self.count += int(positions.size)
        room = self.limit - len(self.examples)
        for pos in positions[: max(room, 0)].tolist():
            symbol = names[int(symbols[pos])] if symbols is not None else None
            known = ts is not None and (ts_known is None or bool(ts_known[pos]))
            self.examples.append(
                RowRef(offset + pos, int(ts[pos]) if known and ts is not None else None,
                       symbol or None)
            )


class _Inspector:
    """Streaming state across batches: per-symbol last timestamp, spacing histograms, tallies."""

    def __init__(self, kind: str, max_examples: int, facts: InstrumentFacts,
                 price_types: dict[str, pa.DataType]) -> None:
        self.kind = kind
        self.facts = facts
        self.price_types = price_types
        self.first_row: dict[int, RowRef] = {}
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
        return np.asarray(mapping[np.asarray(indices, dtype=np.int64)], dtype=np.int32)

    def tally(self, rule: str, mask: np.ndarray, offset: int, ts: np.ndarray | None,
              codes: np.ndarray | None, ts_known: np.ndarray | None = None) -> None:
        positions = np.flatnonzero(mask)
        if positions.size:
            self.tallies[rule].add(positions, offset, ts, codes, self.symbol_names, ts_known)

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
        if symbol_col is not None and pa.types.is_dictionary(symbol_col.type):
            symbol_col = symbol_col.dictionary_decode()
        if symbol_col is not None and symbol_col.null_count:
            null_mask |= np.asarray(symbol_col.is_null().to_numpy(zero_copy_only=False),
                                    dtype=bool)
            symbol_col = pc.fill_null(symbol_col, "?")
        ts, outside = ts_ns_checked(batch.column(names.index("ts")))
        codes = self.codes_for(symbol_col, n)
        self.tally("not_null", null_mask, offset, ts, codes)
        if symbol_col is not None:
            # An empty name cannot key an instrument (nor be told apart from "no symbol").
            empty = np.asarray(pc.equal(pc.utf8_trim_whitespace(symbol_col), "")
                               .to_numpy(zero_copy_only=False), dtype=bool) & ~null_mask
            self.tally("symbol_not_empty", empty, offset, ts, codes)
        # Before the epoch the engine's event clock cannot start; beyond int64 ns nothing can
        # hold the instant. Such rows take no part in the order and spacing rules.
        out_of_range = ~null_mask & (outside | (ts < 0))
        self.tally("ts_range", out_of_range, offset, ts, codes, ts_known=~outside)
        valid = ~null_mask & ~out_of_range
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
            if code not in self.first_row:
                first = int(idx[0])
                self.first_row[code] = RowRef(offset + first, int(ts[first]),
                                              self.symbol_names[code] or None)
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
            self._check_ticks((o, h, lo, c), v, codes, ok, valid, ts, offset)
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

    def _check_ticks(self, prices: tuple[np.ndarray, ...], volume: np.ndarray,
                     codes: np.ndarray, ok: np.ndarray, valid: np.ndarray, ts: np.ndarray,
                     offset: int) -> None:
        """Prices in ticks of each symbol's increment, volumes in its quantity range: exactly
        the conversion every feed applies (``data.ticks.to_ticks``): what passes here
        converts."""
        bad_ticks = np.zeros(ts.size, dtype=bool)
        bad_volume = np.zeros(ts.size, dtype=bool)
        # The first offending price of this batch: (row, text) for the rule's detail.
        first: tuple[int, str] | None = None
        single = bool(codes.size) and int(codes.min()) == int(codes.max())
        for code in ([int(codes[0])] if single else np.unique(codes).tolist()):
            # One symbol per batch is the common case: whole columns, no gathering.
            rows = np.arange(ts.size) if single else np.flatnonzero(codes == code)
            name = self.symbol_names[code]
            increment = self.facts.price_increment(name)
            for column, values in zip(PRICE_COLUMNS, prices, strict=True):
                conversion = to_ticks(values if single else values[rows], increment,
                                      self.price_types[column], with_ticks=False)
                bad = conversion.bad & (ok if single else ok[rows])
                if not bad.any():
                    continue
                bad_ticks[rows[bad]] = True
                at = int(np.flatnonzero(bad)[0])
                if first is None or int(rows[at]) < first[0]:
                    first = (int(rows[at]), f"{column} is {float(values[rows[at]])!r}, "
                             f"{conversion.problem(at)}")
            quantity = self.facts.quantity_increment(name)
            too_large = volume_too_large(volume if single else volume[rows], quantity) & (
                valid if single else valid[rows])
            if too_large.any():
                bad_volume[rows[too_large]] = True
                tally = self.tallies["volume_in_range"]
                if tally.detail is None:
                    at = int(rows[np.flatnonzero(too_large)[0]])
                    tally.detail = (f"volume is {float(volume[at])!r}, more than 2**63 - 1 "
                                    f"ticks of the quantity_increment {quantity}")
        if first is not None and self.tallies["price_ticks"].detail is None:
            self.tallies["price_ticks"].detail = first[1]
        self.tally("price_ticks", bad_ticks, offset, ts, codes)
        self.tally("volume_in_range", bad_volume, offset, ts, codes)

    def _check_trades(self, batch: pa.RecordBatch, names: list[str], ts: np.ndarray,
                      codes: np.ndarray, valid: np.ndarray, offset: int) -> None:
        price = float_array(batch.column(names.index("price")))
        size = float_array(batch.column(names.index("size")))
        with np.errstate(invalid="ignore"):
            self.tally("price_finite_positive", valid & (~np.isfinite(price) | (price <= 0)),
                       offset, ts, codes)
            self.tally("size_positive", valid & (~np.isfinite(size) | (size <= 0)),
                       offset, ts, codes)


def inspect_snapshot(path: Path | str, *, max_examples: int = 5, gap_intervals: int = 3,
                     data: DataConfig | None = None) -> ValidationReport:
    """Validate ``path`` against every rule; report all violations, warnings and facts.

    ``data`` is a run's ``[data]`` config: its increments and bar intervals override the
    metadata's, as they will in the run. Raises ``UnusableInput`` when the file cannot be read.
    """
    snapshot = open_snapshot(path)
    instrument_facts = InstrumentFacts(snapshot.meta, data, snapshot.has_symbol)
    price_types = {name: snapshot.schema.field(name).type for name in PRICE_COLUMNS
                   if name in snapshot.schema.names}
    inspector = _Inspector(snapshot.kind, max_examples, instrument_facts, price_types)
    offset = 0
    # The next batch is decoded in a worker thread while this one is checked.
    for batch in read_ahead(snapshot.iter_batches()):
        inspector.feed(batch, offset)
        offset += batch.num_rows
    rows = offset
    if rows == 0:
        inspector.tallies["non_empty"].count = 1
    if snapshot.kind == KIND_TRADES:
        # Trades may share a timestamp; only going backwards is an error.
        inspector.tallies["ts_unique"].count = 0
        inspector.tallies["ts_unique"].examples.clear()
    else:
        unknown = inspector.tallies["bar_interval_known"]
        for code, first in sorted(inspector.first_row.items()):
            name = inspector.symbol_names[code]
            if not inspector.spacing.get(code) and instrument_facts.stated_interval(name) is None:
                unknown.count += 1
                if len(unknown.examples) < unknown.limit:
                    unknown.examples.append(first)
    meta_keys = tuple(KeyRef(key, problem) for key, problem in snapshot.meta_check.problems)
    violations = tuple(
        Violation(rule, RULES[rule], len(meta_keys), (), meta_keys)
        if rule == "metadata_valid"
        else Violation(rule, RULES[rule], t.count, tuple(t.examples), detail=t.detail)
        for rule, t in inspector.tallies.items()
        if t.count or (rule == "metadata_valid" and meta_keys)
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
        "metadata_unknown_keys": list(snapshot.meta_check.unknown),
    }
    if snapshot.kind == KIND_BARS:
        # The increments the tick rules used (a run with the same [data] config uses them too).
        facts["increments"] = {
            (name or "-"): {"price": str(instrument_facts.price_increment(name)),
                            "quantity": str(instrument_facts.quantity_increment(name))}
            for name in sorted(inspector.symbol_names[c] for c in inspector.first_row)
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
    """One paragraph for a person: file, rule, first offending row or key, count, what to do."""
    if violation.keys:
        return (
            f"snapshot {path} is invalid: rule '{violation.rule}' ({violation.description}) is "
            f"broken at {violation.where()}. Correct the JSON under the Parquet schema-metadata "
            "key 'weltklassebot' (or re-import the source with `python -m cli snapshot import`); "
            f"`python -m cli snapshot validate {path}` lists every violation."
        )
    first = violation.examples[0].describe() if violation.examples else "the file as a whole"
    if violation.detail:
        first += f": {violation.detail}"
    more = f" ({violation.count} rows in all)" if violation.count > 1 else ""
    return (
        f"snapshot {path} is invalid: rule '{violation.rule}' ({violation.description}) is broken "
        f"at {first}{more}. {_FIXES.get(violation.rule, _FIX_SOURCE)}; "
        f"`python -m cli snapshot validate {path}` lists every violation."
    )


_FIX_SOURCE = "Fix the source and re-import it with `python -m cli snapshot import`"
_FIXES: dict[str, str] = {
    "price_ticks": ("Set the price_increment the prices are quoted in ([data] price_increment "
                    "in the config, or price_increment in the snapshot metadata), or correct "
                    "the prices at the source"),
    "volume_in_range": ("Set a coarser quantity_increment ([data] quantity_increment or the "
                        "metadata's), or correct the volume at the source"),
    "bar_interval_known": ("Set the interval: [data] bar_interval = \"1h\" in the config, or "
                           "bar_interval_ns in the snapshot metadata"),
}


def require_valid(path: Path | str, *, kind: str = KIND_BARS,
                  data: DataConfig | None = None) -> ValidationReport:
    """Validate and raise ``InvalidSnapshot`` on the first violation (exit status 1)."""
    report = inspect_snapshot(path, max_examples=1, data=data)
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
