"""A tiny scripted strategy: submits and cancels given orders at given bars, records what it saw.

A script maps a bar index (0-based, per symbol) to the actions taken at that bar's close event::

    {0: [Submit(BUY, "10")], 2: [Submit(SELL, "5", limit="101.5", tag="tp"), Cancel("x")]}

Prices and quantities are human numbers (``str``/``int``/``Decimal``), converted by the context.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from weltklassebot.model.records import Fill
from weltklassebot.strategy.base import Bar, Strategy, StrategyContext


@dataclass(frozen=True)
class Submit:
    side: int
    qty: str | int
    limit: str | int | None = None
    stop: str | int | None = None
    tif: str = "gtc"
    tag: str = ""


@dataclass(frozen=True)
class Cancel:
    tag: str


Action = Submit | Cancel
Script = Mapping[int, Sequence[Action]]


@dataclass(frozen=True)
class Seen:
    """What the strategy saw at one close event."""

    index: int
    ts_ns: int
    now_ns: int
    open: int
    high: int
    low: int
    close: int
    position: int
    cash: int
    equity: int


class ScriptedStrategy(Strategy):
    name: ClassVar[str] = "scripted"
    version: ClassVar[str] = "1"

    def __init__(self, script: Script | Mapping[str, Script] | None = None,
                 per_symbol: bool = False, **params: Any) -> None:
        super().__init__(**params)
        self.script_source = script or {}
        self.per_symbol = per_symbol
        self.script: Script = {}
        self.ids: dict[str, int | None] = {}
        self.seen: list[Seen] = []
        self.fills: list[Fill] = []
        self.cancel_results: dict[str, bool] = {}
        self.started = 0
        self.stopped = 0

    def on_start(self, ctx: StrategyContext) -> None:
        self.started += 1
        source: Any = self.script_source  # a Script, or a Script per symbol when per_symbol
        self.script = source.get(ctx.symbol, {}) if self.per_symbol else source

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        router = ctx._router
        self.seen.append(Seen(bar.index, bar.ts_ns, ctx.now_ns, bar.open, bar.high, bar.low,
                              bar.close, ctx.position_ticks, router.cash(), router.equity()))
        for action in self.script.get(bar.index, ()):
            if isinstance(action, Cancel):
                order_id = self.ids.get(action.tag)
                self.cancel_results[action.tag] = (
                    order_id is not None and ctx.cancel(order_id))
                continue
            submit = ctx.buy if action.side > 0 else ctx.sell
            order_id = submit(action.qty, limit=action.limit, stop=action.stop, tif=action.tif,
                              tag=action.tag)
            self.ids[action.tag or f"order@{bar.index}"] = order_id

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> None:
        self.fills.append(fill)

    def on_stop(self, ctx: StrategyContext) -> None:
        self.stopped += 1
