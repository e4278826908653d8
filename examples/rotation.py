"""Top-N momentum rotation across the symbols of a multi-symbol snapshot.

Shows decisions across symbols (docs/strategy-api.md, "Decisions across symbols"): each symbol
has its own instance, which records its symbol's momentum (the rate of change of the close
over ``lookback`` bars, ``ctx.roc``) and last close in ``ctx.shared``. Close events at an
instant run in symbol order, so the instance of the last symbol of ``ctx.symbols`` sees every
symbol's latest value: it ranks them (highest momentum first, ties by symbol name) and holds
the top ``n``, each at ``invested / n`` of equity, through ``ctx.context(symbol)`` and
``order_target_fraction`` (symbols that dropped out go to 0). It ranks at the first bar where
momentum is known and then every ``every`` bars of the last symbol only, not at every bar:
each rebalance costs fees.

A sale frees buying power only once it has filled (at the next bar's open), so the purchases
of a rebalance are cut to the buying power left while the positions being sold are still
held. The bar after a rebalance the last instance therefore buys, once, what is still
missing up to each held symbol's share.

The engine does not save ``ctx.shared``: every instance saves its own entry and ``load`` puts
it back, with the ranking state of the last instance. Defaults suit daily bars, e.g. the
composite of four MSFT price paths that the example's test builds from tests/data (see
tests/data/README.md): three months of momentum, rebalanced monthly, the best two of four held.
On one symbol it simply holds that symbol at ``invested / n``. To run it on the composite:

    (cd tests && ../.venv/bin/python -m support.composite ../msft-composite.parquet)
    .venv/bin/python -m cli backtest --strategy examples/rotation.py \
        --data-snapshot msft-composite.parquet
"""

from decimal import Decimal
from typing import Any, ClassVar

from weltklassebot.strategy import Bar, Strategy, StrategyContext

BOARD = "momentum"  # the key of this strategy's entries in ctx.shared


class Rotation(Strategy):
    name = "rotation"
    version = "1.0.0"
    params: ClassVar[dict[str, Any]] = {"lookback": 60, "n": 2, "every": 20,
                                        "invested": Decimal("0.95")}

    def validate(self) -> None:
        if int(self.p["lookback"]) < 1:
            raise ValueError("lookback must be >= 1 (bars)")
        if int(self.p["n"]) < 1:
            raise ValueError("n must be >= 1 (symbols held)")
        if int(self.p["every"]) < 1:
            raise ValueError("every must be >= 1 (bars between rebalances)")
        if not 0 < Decimal(self.p["invested"]) <= 1:
            raise ValueError("invested must be in (0, 1] (of equity, over all held symbols)")

    def on_start(self, ctx: StrategyContext) -> None:
        self.momentum = ctx.roc("close", int(self.p["lookback"]))
        self.share = Decimal(self.p["invested"]) / int(self.p["n"])
        # The last symbol's instance only: bars to wait, the symbols held, a follow-up due.
        self.wait = 0
        self.top: list[str] = []
        self.follow_up = False

    def save(self, ctx: StrategyContext) -> dict[str, Any] | None:
        return {"entry": ctx.shared.get(BOARD, {}).get(ctx.symbol), "wait": self.wait,
                "top": self.top, "follow_up": self.follow_up}

    def load(self, ctx: StrategyContext, data: dict[str, Any]) -> None:
        self.on_start(ctx)  # declares the same series; the engine restores their values
        if data["entry"] is not None:
            ctx.shared.setdefault(BOARD, {})[ctx.symbol] = data["entry"]
        self.wait = int(data["wait"])
        self.top = list(data["top"])
        self.follow_up = bool(data["follow_up"])

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        board: dict[str, list[Any]] = ctx.shared.setdefault(BOARD, {})
        if self.momentum.ready:
            board[ctx.symbol] = [self.momentum.value, bar.close]
        if ctx.symbol != ctx.symbols[-1]:
            return  # the last symbol's instance decides for all
        if self.follow_up:
            self.follow_up = False
            for symbol in self.top:  # buy what the rebalance's buying power left out
                other = ctx.context(symbol)
                if other.position_ticks < other.qty_for_fraction(self.share, board[symbol][1]):
                    other.order_target_fraction(self.share, tag="rotation")
        if self.wait > 0:
            self.wait -= 1
            return
        if not board:
            return  # no momentum known yet
        ranked = sorted(board, key=lambda symbol: (-board[symbol][0], symbol))
        self.top = ranked[: int(self.p["n"])]
        for symbol in ctx.symbols:  # sales first: they free buying power at the next open
            if symbol not in self.top:
                ctx.context(symbol).order_target_fraction(0, tag="rotation")
        for symbol in self.top:
            ctx.context(symbol).order_target_fraction(self.share, tag="rotation")
        self.wait = int(self.p["every"]) - 1
        self.follow_up = True
