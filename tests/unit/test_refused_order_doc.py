"""docs/strategy-api.md, "When an order is refused": the example strategy, run in the engine
with too little cash, does not resubmit a refused order bar after bar; a strategy that sends
the same order at every bar (as the built-ins do) is refused at every bar."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from support.bars import timed
from support.engine import run_engine
from weltklassebot.model.enums import BUY
from weltklassebot.strategy import Bar, Strategy, StrategyContext

DOC = Path(__file__).resolve().parents[2] / "docs" / "strategy-api.md"
# A flat market around 100 (20-bar high 101, so the stop is at 101.01) for 60 bars, with cash
# for less than one unit: every stop is refused. Then one bar with a higher high moves the stop.
BARS = [(100, 101, 99, 100, 10)] * 60 + [(100, 102, 99, 100, 10)] * 5


def _doc_strategy() -> type[Strategy]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## When an order is refused"):]
    block = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the refused-order section has no python example"
    namespace: dict[str, Any] = {}
    exec(compile(block[1], str(DOC), "exec"), namespace)
    strategy: type[Strategy] = namespace["PatientBreakout"]
    return strategy


class _Resubmits(Strategy):
    """The naive way: the same stop at every bar, whether or not it was refused."""

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        if bar.index >= 19 and not ctx.open_orders:
            ctx.submit_ticks(BUY, 1, stop_ticks=10_101)


def test_the_example_sends_a_refused_order_again_only_when_it_changed() -> None:
    patient = _doc_strategy()
    run = run_engine(timed(BARS), lambda: patient(window=20, qty=1), cash="50")
    refused = [o for o in run.orders if o.status.value == "rejected"]
    # One refusal when the stop first rests, one more when its level moves: not one per bar.
    assert [o.stop for o in refused] == [10_101, 10_201]
    assert all(o.reason == "insufficient_buying_power" for o in refused)
    assert run.result.denial_counts == {"insufficient_buying_power": 2}
    assert run.fills == []


def test_resubmitting_at_every_bar_is_refused_at_every_bar() -> None:
    run = run_engine(timed(BARS), _Resubmits, cash="50")
    assert run.result.denial_counts == {"insufficient_buying_power": len(BARS) - 19}
