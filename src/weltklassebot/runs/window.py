"""A time range of a snapshot with warm-up bars: ``backtest --start --end --warmup``.

The run trades the bars that start in ``[start, end)``. Before them, the ``warmup`` instants
(distinct bar times; one bar each for a single symbol) that precede ``start`` are fed to the
strategy exactly like any bar: ``on_start`` is called at the first of them, ``on_bar`` at each
close event, engine-computed series and the strategy's own state advance. What they cannot do
is trade: every order submitted at an event time before the first bar in range is refused by
``WarmupGate``
(placed in front of the risk gate, through the engine's ``OrderGate`` seam), and the refusal is
recorded nowhere. Nothing else of the warm-up reaches the outputs either: its equity points,
its strategy log lines and its refused orders are dropped, the counts leave them out, and the
buy-and-hold benchmark starts at the first bar in range. The run therefore starts flat, with the
initial cash, at the first bar in range.

The close event of the last warm-up bar is at the first bar in range when the bars are contiguous:
an order submitted there is placed (it may fill from that bar's open on), as an order from
``on_start`` is in a run without warm-up. The engine itself is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow.compute as pc

from weltklassebot.core.timeutil import NS_PER_SECOND, ns_to_iso
from weltklassebot.data.reader import SnapshotFile, ts_ns_array
from weltklassebot.errors import UsageError
from weltklassebot.model.bars import BarChunk
from weltklassebot.model.intents import OrderIntent
from weltklassebot.model.records import Fill, Order
from weltklassebot.portfolio.view import PortfolioView

WARMUP_REASON = "warmup"
"""The denial reason of an order refused during the warm-up (dropped from every output)."""


def parse_time(text: str, option: str) -> int:
    """ISO 8601 date or date-time to int ns since the epoch; no zone means UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not a time; use an ISO 8601 date or date-time such as "
            "2019-01-01 or 2019-01-01T12:00:00Z (without a zone it is UTC)."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS_PER_SECOND + delta.microseconds * 1000


@dataclass(frozen=True)
class TimeWindow:
    """What the user asked for: bars in ``[start_ns, end_ns)`` (None: open), ``warmup``
    instants before ``start_ns`` fed without trading."""

    start_ns: int | None = None
    end_ns: int | None = None
    warmup: int = 0

    def __post_init__(self) -> None:
        if self.warmup < 0:
            raise UsageError(f"--warmup must be 0 or more bars, not {self.warmup}.")
        if self.warmup and self.start_ns is None:
            raise UsageError("--warmup N feeds the N bars before --start: give --start too.")
        if (self.start_ns is not None and self.end_ns is not None
                and self.end_ns <= self.start_ns):
            raise UsageError(
                f"--end ({ns_to_iso(self.end_ns)}) must be after --start "
                f"({ns_to_iso(self.start_ns)}): the range is the bars starting at or after "
                "--start and before --end.")

    @classmethod
    def from_options(cls, start: str | None, end: str | None, warmup: int) -> TimeWindow | None:
        if start is None and end is None and not warmup:
            return None
        return cls(None if start is None else parse_time(start, "--start"),
                   None if end is None else parse_time(end, "--end"), warmup)

    @classmethod
    def from_record(cls, record: dict[str, Any] | None) -> TimeWindow | None:
        """The window a run recorded (``manifest.json``'s ``range``), for re-running it."""
        if not record:
            return None
        start, end = record.get("start_ns"), record.get("end_ns")
        return cls(None if start is None else int(start), None if end is None else int(end),
                   int(record.get("warmup") or 0))

    def describe(self) -> dict[str, Any]:
        return {"start": None if self.start_ns is None else ns_to_iso(self.start_ns),
                "end": None if self.end_ns is None else ns_to_iso(self.end_ns),
                "start_ns": self.start_ns, "end_ns": self.end_ns, "warmup": self.warmup}


@dataclass(frozen=True)
class WindowPlan:
    """The window applied to one snapshot: where warm-up and range begin (bar times)."""

    window: TimeWindow
    feed_from_ns: int  # the first warm-up bar (or the first bar in range without warm-up)
    trade_from_ns: int  # the first bar in range
    end_ns: int | None
    warmup_instants: int  # fed (fewer than asked when the data starts later)
    warmup_bars: int
    bars: int  # in range

    @property
    def has_warmup(self) -> bool:
        return self.warmup_bars > 0

    def describe(self) -> dict[str, Any]:
        return {**self.window.describe(), "warmup_bars_fed": self.warmup_instants,
                "warmup_first_bar": ns_to_iso(self.feed_from_ns),
                "first_bar": ns_to_iso(self.trade_from_ns), "bars": self.bars}


def plan_window(window: TimeWindow, ts: np.ndarray, source: str) -> WindowPlan:
    """Apply ``window`` to the bar times ``ts`` (sorted, int64 ns; several symbols repeat a
    time). ``source`` names the data in errors."""
    instants = np.unique(ts)
    start = 0 if window.start_ns is None else int(np.searchsorted(instants, window.start_ns))
    stop = (instants.size if window.end_ns is None
            else int(np.searchsorted(instants, window.end_ns)))
    if start >= stop:
        first, last = ((ns_to_iso(int(instants[0])), ns_to_iso(int(instants[-1])))
                       if instants.size else ("-", "-"))
        raise UsageError(
            f"{source} has no bar in the range {_range_text(window)} (its bars run from "
            f"{first} to {last}); choose --start and --end inside that span.")
    feed_from = max(0, start - window.warmup)
    rows = np.searchsorted(ts, instants[[feed_from, start, stop - 1]], side="left")
    last_row = int(np.searchsorted(ts, instants[stop - 1], side="right"))
    return WindowPlan(window, int(instants[feed_from]), int(instants[start]),
                      window.end_ns, start - feed_from, int(rows[1] - rows[0]),
                      last_row - int(rows[1]))


def _range_text(window: TimeWindow) -> str:
    start = "the start" if window.start_ns is None else ns_to_iso(window.start_ns)
    end = "the end" if window.end_ns is None else ns_to_iso(window.end_ns)
    return f"[{start}, {end})"


def snapshot_times(snapshot: SnapshotFile) -> np.ndarray:
    """Every bar's start time, sorted (the order the feed steps through them)."""
    column = snapshot.parquet.read(columns=["ts"]).column("ts")
    ts = ts_ns_array(column)
    if ts.size > 1 and bool(pc.any(pc.less(column.slice(1), column.slice(0, ts.size - 1)))
                            .as_py() or False):
        ts = np.sort(ts)
    return ts


def window_chunks(chunks: Iterable[BarChunk],
                  plan: WindowPlan) -> Iterator[tuple[BarChunk, bool]]:
    """The chunks cut to the plan: ``(chunk, in_range)``, warm-up pieces first. Bar times are
    non-decreasing in event order, so each cut is a binary search."""
    low, mid, high = plan.feed_from_ns, plan.trade_from_ns, plan.end_ns
    for chunk in chunks:
        n = len(chunk)
        if not n:
            continue
        ts = chunk.ts
        if int(ts[-1]) < low:
            continue
        if high is not None and int(ts[0]) >= high:
            return
        a, b, c = (int(i) for i in np.searchsorted(ts, [low, mid, high if high is not None
                                                         else int(ts[-1]) + 1]))
        if a < b:
            yield (chunk if (a, b) == (0, n) else chunk.slice(a, b)), False
        if b < c:
            yield (chunk if (b, c) == (0, n) else chunk.slice(b, c)), True
        if c < n:
            return


class WarmupGate:
    """The engine's ``OrderGate`` for a run with warm-up: an order submitted at an event time
    before ``trade_from_ns`` is refused (reason ``warmup``, dropped from every output); any
    other order, fill and equity point goes to the risk gate behind it, if there is one."""

    def __init__(self, trade_from_ns: int, inner: Any | None) -> None:
        self.trade_from_ns = trade_from_ns
        self.inner = inner

    def check_order(self, order: Order, view: PortfolioView) -> tuple[int, str | None, str]:
        if order.ts_submitted_ns < self.trade_from_ns:
            return 0, WARMUP_REASON, "warm-up bar: the strategy is fed but does not trade"
        if self.inner is None:
            return order.qty, None, ""
        allowed: tuple[int, str | None, str] = self.inner.check_order(order, view)
        return allowed

    def on_fill(self, fill: Fill, realised_net: int, view: PortfolioView) -> None:
        if self.inner is not None:
            self.inner.on_fill(fill, realised_net, view)

    def on_equity(self, ts_ns: int, equity: int, view: PortfolioView) -> list[OrderIntent]:
        if self.inner is None:
            return []
        intents: list[OrderIntent] = self.inner.on_equity(ts_ns, equity, view)
        return intents

    def on_engine_denial(self, reason: str, ts_ns: int, detail: str) -> None:
        if self.inner is not None:
            self.inner.on_engine_denial(reason, ts_ns, detail)
