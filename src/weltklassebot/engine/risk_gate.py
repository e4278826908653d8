"""Connects the risk engine to the backtest engine: the order gate, fills, equity, flattening.

The same ``RiskEngine`` runs in backtests and in the live service; this adapter gives it a
read-only view of the portfolio (``EngineView``) and routes the engine's events to it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from weltklassebot.model.enums import OrderType, TimeInForce
from weltklassebot.model.records import Fill, Order
from weltklassebot.risk import DenialReason, OrderProposal, RiskEngine

if TYPE_CHECKING:
    from weltklassebot.engine.backtest import BacktestEngine


class EngineView:
    """Read-only portfolio view for the risk engine (DESIGN: risk sees a facade, not the ledger)."""

    def __init__(self, engine: BacktestEngine) -> None:
        self._engine = engine
        self.money_scale = engine.execution.money.scale

    def position(self, symbol: str) -> int:
        return self._engine.ledger.positions[symbol].qty

    def open_qty(self, symbol: str, side: int) -> int:
        return self._engine.venue.open_qty(symbol, side)

    def last_price(self, symbol: str) -> int | None:
        return self._engine.ledger.positions[symbol].last_price

    def notional(self, symbol: str, qty: int, price: int) -> int:
        return self._engine.instruments[symbol].notional(abs(qty), price)

    def qty_ticks(self, symbol: str, qty: Decimal) -> int:
        return self._engine.instruments[symbol].qty_ticks(qty)

    def price_ticks(self, symbol: str, price: Decimal) -> int:
        return self._engine.instruments[symbol].price_ticks(price)

    def gross_exposure(self) -> int:
        return self._engine.ledger.gross_exposure()

    def equity(self) -> int:
        return self._engine.ledger.equity()


class RiskGate:
    """The engine's ``OrderGate`` backed by a ``RiskEngine``."""

    def __init__(self, risk: RiskEngine) -> None:
        self.risk = risk
        self._view: EngineView | None = None
        self._flattening = False

    def view(self, engine: BacktestEngine) -> EngineView:
        if self._view is None:
            self._view = EngineView(engine)
        return self._view

    def check_order(self, order: Order, engine: BacktestEngine) -> tuple[int, str | None, str]:
        view = self.view(engine)
        prices = [p for p in (order.limit, order.stop) if p is not None]
        reference = max(prices) if prices else (view.last_price(order.symbol) or 0)
        proposal = OrderProposal(order.order_id, order.symbol, order.side, order.qty, reference,
                                 order.ts_submitted_ns, order.reduce_only)
        decision = self.risk.check(proposal, view)
        reason = None if decision.reason is None else str(decision.reason)
        return decision.allowed_qty, reason, decision.detail

    def on_engine_denial(self, reason: str, ts_ns: int, detail: str) -> None:
        self.risk.record_denial(DenialReason(reason), ts_ns, detail)

    def on_fill(self, fill: Fill, realised_net: int, engine: BacktestEngine) -> None:
        self.risk.on_fill(fill.symbol, fill.side, fill.qty, fill.price, realised_net,
                          fill.ts_ns, self.view(engine))

    def on_equity(self, ts_ns: int, equity: int, engine: BacktestEngine) -> None:
        self.risk.on_equity(ts_ns, equity)
        if self.risk.wants_flatten and not self._flattening:
            # "Reduce positions, halt trading": reducing market orders, at the next bar's open.
            self._flattening = True
            try:
                for symbol, side, qty in self.risk.flatten_orders(engine.symbols,
                                                                  self.view(engine)):
                    engine.submit(symbol, side, qty, OrderType.MARKET, None, None,
                                  TimeInForce.GTC, "risk_flatten", True)
                self.risk.clear_flatten()
            finally:
                self._flattening = False
