"""Connects the risk engine to the engine's order path: the order gate, fills, equity, flattening.

The same ``RiskEngine`` runs in backtests and in the live service. The gate reads the portfolio
only through the read-only view the engine hands in (``PortfolioView``) and never calls the
engine: what risk wants done (close every position on a halt) comes back as ``OrderIntent``
records that the engine places like any other order.
"""

from __future__ import annotations

from weltklassebot.model.enums import OrderType, TimeInForce
from weltklassebot.model.intents import OrderIntent
from weltklassebot.model.records import Fill, Order
from weltklassebot.portfolio.view import PortfolioView
from weltklassebot.risk import DenialReason, OrderProposal, RiskEngine

FLATTEN_TAG = "risk_flatten"


class RiskGate:
    """The engine's ``OrderGate`` backed by a ``RiskEngine``."""

    def __init__(self, risk: RiskEngine) -> None:
        self.risk = risk

    def check_order(self, order: Order, view: PortfolioView) -> tuple[int, str | None, str]:
        prices = [p for p in (order.limit, order.stop) if p is not None]
        reference = max(prices) if prices else (view.last_price(order.symbol) or 0)
        proposal = OrderProposal(order.order_id, order.symbol, order.side, order.qty, reference,
                                 order.ts_submitted_ns, order.reduce_only)
        decision = self.risk.check(proposal, view)
        reason = None if decision.reason is None else str(decision.reason)
        return decision.allowed_qty, reason, decision.detail

    def on_engine_denial(self, reason: str, ts_ns: int, detail: str) -> None:
        self.risk.record_denial(DenialReason(reason), ts_ns, detail)

    def on_fill(self, fill: Fill, realised_net: int, view: PortfolioView) -> None:
        self.risk.on_fill(fill.symbol, fill.side, fill.qty, fill.price, realised_net,
                          fill.ts_ns, view)

    def on_equity(self, ts_ns: int, equity: int, view: PortfolioView) -> list[OrderIntent]:
        """Feed the equity point to risk; the orders the engine must place now (usually none).

        "Reduce positions, halt trading": when HALTED was just entered with flatten_on_halt,
        reducing market orders that close every position, filled from the next bar's open. The
        quantities are worked out from the view before any is placed, as risk asks for them.
        """
        self.risk.on_equity(ts_ns, equity)
        if not self.risk.wants_flatten:
            return []
        intents = [OrderIntent(symbol, side, qty, OrderType.MARKET, None, None, TimeInForce.GTC,
                               FLATTEN_TAG, True)
                   for symbol, side, qty in self.risk.flatten_orders(view.symbols(), view)]
        self.risk.clear_flatten()  # handed over: the engine places them before its next event
        return intents
