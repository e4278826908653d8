"""Event-time order with several symbols: (event time, symbol, sequence); the clock never goes
back. At an instant every symbol's bar is matched before any close event runs."""

from __future__ import annotations

from typing import Any

import pytest

from support.bars import HOUR, T0, timed
from support.engine import instrument, run_engine, run_multi
from weltklassebot.model.records import Fill
from weltklassebot.strategy.base import Bar, Strategy, StrategyContext


class Recorder(Strategy):
    """Logs every hook with the event clock; buys one unit at its first two bars."""

    name = "recorder"
    version = "1"

    def __init__(self, journal: list[tuple[str, int, str, int]]) -> None:
        super().__init__()
        self.journal = journal

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        self.journal.append(("close", ctx.now_ns, bar.symbol, bar.ts_ns))
        if bar.index < 2:
            ctx.buy(1)

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> None:
        self.journal.append(("fill", ctx.now_ns, fill.symbol, fill.ts_ns))


def flat(prices: list[int]) -> list[tuple[Any, ...]]:
    return [(p, p + 1, p - 1, p, 10) for p in prices]


def journal_of(rows: list[tuple[str, tuple[Any, ...]]], intervals: dict[str, int],
               chunk_rows: int | None = None) -> tuple[list[tuple[str, int, str, int]], Any]:
    journal: list[tuple[str, int, str, int]] = []

    def make() -> Strategy:
        return Recorder(journal)

    insts = {s: instrument(s) for s in intervals}
    run = run_multi(rows, make, insts, interval=intervals, chunk_rows=chunk_rows)
    return journal, run


@pytest.mark.parametrize("chunk_rows", [None, 1, 3])
def test_an_instants_bars_are_all_matched_before_any_close_event(chunk_rows: int | None) -> None:
    rows = [(s, r) for r in timed(flat([100, 101, 102, 103])) for s in ("A", "B")]
    journal, run = journal_of(rows, {"A": HOUR, "B": HOUR}, chunk_rows)
    times = [t for _kind, t, _s, _ts in journal]
    assert times == sorted(times), "the event clock went back"
    # The orders placed at the first close fill at the next instant's open, both symbols
    # matched at T0+1h before either close event of that instant runs.
    first = journal.index(("close", T0 + 2 * HOUR, "A", T0 + HOUR))
    assert ("fill", T0 + HOUR, "A", T0 + HOUR) in journal[:first]
    assert ("fill", T0 + HOUR, "B", T0 + HOUR) in journal[:first]
    closes = [(t, s) for kind, t, s, _ in journal if kind == "close"]
    assert closes == sorted(closes)  # by (event time, symbol)
    assert run.eq_ts == [T0 + i * HOUR for i in range(4)]


def test_symbols_with_different_intervals_never_turn_the_clock_back() -> None:
    hourly = [("A", r) for r in timed(flat([100 + i for i in range(8)]))]
    two_hourly = [("B", r) for r in timed(flat([200 + i for i in range(4)]), interval=2 * HOUR)]
    journal, run = journal_of(hourly + two_hourly, {"A": HOUR, "B": 2 * HOUR})
    times = [t for _kind, t, _s, _ts in journal]
    assert times == sorted(times)
    # B's bar starting at T0 closes at T0+2h: after A's bar of T0+1h was matched and closed.
    b_close = journal.index(("close", T0 + 2 * HOUR, "B", T0))
    assert journal.index(("close", T0 + 2 * HOUR, "A", T0 + HOUR)) < b_close
    assert len(run.eq_ts) == 8
    assert run.eq_ts == sorted(run.eq_ts)


def test_chunking_never_changes_a_multi_symbol_run() -> None:
    rows = [(s, r) for r in timed(flat([100 + i % 5 for i in range(30)])) for s in ("A", "B")]
    whole_journal, whole = journal_of(rows, {"A": HOUR, "B": HOUR})
    for size in (1, 2, 7):
        journal, run = journal_of(rows, {"A": HOUR, "B": HOUR}, size)
        assert journal == whole_journal
        assert (run.eq_ts, run.eq_val, run.eq_cash) == (whole.eq_ts, whole.eq_val, whole.eq_cash)
        assert run.fills == whole.fills


def test_single_symbol_run_is_unchanged_by_the_multi_symbol_order() -> None:
    bars = timed(flat([100, 101, 102, 103]))
    journal: list[tuple[str, int, str, int]] = []

    def make() -> Strategy:
        return Recorder(journal)

    run_engine(bars, make)
    # one symbol: match at ts, close at ts + interval, then the next bar at that same time
    assert journal[:3] == [
        ("close", T0 + HOUR, "TEST", T0),
        ("fill", T0 + HOUR, "TEST", T0 + HOUR),
        ("close", T0 + 2 * HOUR, "TEST", T0 + HOUR),
    ]
