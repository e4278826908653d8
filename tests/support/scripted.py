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
from weltklassebot.strategy.base import Bar, Strategy, StrategyContext, Submitted


@dataclass(frozen=True)
class Submit:
    side: int
    qty: str | int
    limit: str | int | None = None
    stop: str | int | None = None
    tif: str = "gtc"
    tag: str = ""
    reduce_only: bool = False


@dataclass(frozen=True)
class Cancel:
    tag: str


@dataclass(frozen=True)
class Bracket:
    """An entry (market, or at ``limit``/``stop``) with a take-profit and/or stop-loss; its
    ids are kept as ``tag``, ``tag:take_profit`` and ``tag:stop_loss``."""

    side: int
    qty: str | int
    take_profit: str | int | None = None
    stop_loss: str | int | None = None
    limit: str | int | None = None
    stop: str | int | None = None
    trail_distance: str | int | None = None
    trail_fraction: str | None = None
    tag: str = "entry"


@dataclass(frozen=True)
class Oco:
    """A limit and a stop as one-cancels-other; ids kept as ``tag:limit`` and ``tag:stop``."""

    side: int
    qty: str | int
    limit: str | int
    stop: str | int
    tag: str = "oco"


@dataclass(frozen=True)
class Trailing:
    side: int
    qty: str | int
    distance: str | int | None = None
    fraction: str | None = None
    stop: str | int | None = None
    tag: str = "trail"


@dataclass(frozen=True)
class Target:
    """A target order: ``kind`` is ``qty``, ``value`` or ``fraction``."""

    kind: str
    amount: str | int
    limit: str | int | None = None
    tag: str = "target"


Action = Submit | Cancel | Bracket | Oco | Trailing | Target
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
        self.targets: list[Submitted | None] = []
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
            if not isinstance(action, Submit):
                self._linked(ctx, action)
                continue
            submit = ctx.buy if action.side > 0 else ctx.sell
            order_id = submit(action.qty, limit=action.limit, stop=action.stop, tif=action.tif,
                              tag=action.tag, reduce_only=action.reduce_only)
            self.ids[action.tag or f"order@{bar.index}"] = order_id

    def _linked(self, ctx: StrategyContext, action: Bracket | Oco | Trailing | Target) -> None:
        if isinstance(action, Bracket):
            place = ctx.buy_bracket if action.side > 0 else ctx.sell_bracket
            ids = place(action.qty, take_profit=action.take_profit, stop_loss=action.stop_loss,
                        limit=action.limit, stop=action.stop,
                        trail_distance=action.trail_distance,
                        trail_fraction=action.trail_fraction, tag=action.tag)
            if ids is not None:
                self.ids[action.tag] = ids.entry
                self.ids[f"{action.tag}:take_profit"] = ids.take_profit
                self.ids[f"{action.tag}:stop_loss"] = ids.stop_loss
        elif isinstance(action, Oco):
            pair = (ctx.buy_oco if action.side > 0 else ctx.sell_oco)(
                action.qty, limit=action.limit, stop=action.stop, tag=action.tag)
            if pair is not None:
                self.ids[f"{action.tag}:limit"], self.ids[f"{action.tag}:stop"] = pair
        elif isinstance(action, Trailing):
            place_stop = ctx.buy_trailing_stop if action.side > 0 else ctx.sell_trailing_stop
            self.ids[action.tag] = place_stop(action.qty, distance=action.distance,
                                              fraction=action.fraction, stop=action.stop,
                                              tag=action.tag)
        else:
            if action.kind == "qty":
                submitted = ctx.order_target(action.amount, limit=action.limit, tag=action.tag)
            elif action.kind == "value":
                submitted = ctx.order_target_value(action.amount, limit=action.limit,
                                                   tag=action.tag)
            else:
                submitted = ctx.order_target_fraction(action.amount, limit=action.limit,
                                                      tag=action.tag)
            self.targets.append(submitted)
            if submitted is not None:
                self.ids[action.tag] = submitted.order_id

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> None:
        self.fills.append(fill)

    def on_stop(self, ctx: StrategyContext) -> None:
        self.stopped += 1
