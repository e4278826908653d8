"""The risk gate reads a read-only portfolio view and hands back intents; it never calls the
engine (DESIGN: risk sees a facade, not the ledger)."""

from __future__ import annotations

from decimal import Decimal

from risk_fakes import FakeView

from support.engine import instrument
from weltklassebot.engine.risk_gate import FLATTEN_TAG, RiskGate
from weltklassebot.model.enums import Liquidity, OrderType, TimeInForce
from weltklassebot.model.intents import OrderIntent
from weltklassebot.model.records import Fill
from weltklassebot.portfolio.ledger import Ledger
from weltklassebot.portfolio.view import LedgerView
from weltklassebot.risk import RiskConfig, RiskEngine, RiskState


class _OpenOrders:
    def open_qty(self, symbol: str, side: int) -> int:
        return {("AAA", -1): 2}.get((symbol, side), 0)


def test_ledger_view_reads_the_ledger_and_the_open_orders() -> None:
    instruments = {s: instrument(s) for s in ("BBB", "AAA")}
    ledger = Ledger(100_000, instruments)
    ledger.apply(Fill(1, 1, 0, "AAA", 1, 1_000, 5, 0, 5_000, Liquidity.TAKER))
    ledger.positions["AAA"].last_price = 1_100
    view = LedgerView(ledger, _OpenOrders(), money_scale=2)
    assert view.symbols() == ("AAA", "BBB")
    assert (view.position("AAA"), view.position("BBB")) == (5, 0)
    assert (view.open_qty("AAA", -1), view.open_qty("AAA", 1)) == (2, 0)
    assert (view.last_price("AAA"), view.last_price("BBB")) == (1_100, None)
    assert view.notional("AAA", -3, 1_000) == 3_000
    assert view.qty_ticks("AAA", Decimal("4")) == 4
    assert view.price_ticks("AAA", Decimal("12.34")) == 1_234
    assert view.gross_exposure() == ledger.gross_exposure() == 5_500
    assert view.equity() == ledger.equity()
    assert not any(name.startswith("set") or name == "apply" for name in dir(view))


def test_a_halt_with_flatten_on_halt_comes_back_as_intents() -> None:
    config = RiskConfig.model_validate({"drawdown_cap": "0.1", "flatten_on_halt": True,
                                        "max_order_qty": "3"})
    risk = RiskEngine(config, initial_equity=100_000, money_scale=2)
    gate = RiskGate(risk)
    view = FakeView(positions={"BTC": 4, "ETH": -1}, prices={"BTC": 100, "ETH": 50})
    assert gate.on_equity(1, 95_000, view) == []
    intents = gate.on_equity(2, 90_000, view)  # 10 % down: HALTED
    assert risk.state is RiskState.HALTED
    flatten = OrderIntent("BTC", -1, 3, OrderType.MARKET, None, None, TimeInForce.GTC,
                          FLATTEN_TAG, True)
    assert intents == [flatten, OrderIntent("BTC", -1, 1, tag=FLATTEN_TAG, reduce_only=True),
                       OrderIntent("ETH", 1, 1, tag=FLATTEN_TAG, reduce_only=True)]
    assert risk.wants_flatten is False  # handed over once: the engine places them
    assert gate.on_equity(3, 90_000, view) == []
