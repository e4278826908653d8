"""Pre-trade rules: each limit alone, its exact boundary, and the default that denies nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from risk_fakes import FakeView, proposal

from weltklassebot.core.timeutil import NS_PER_MINUTE, NS_PER_SECOND
from weltklassebot.errors import ConfigError
from weltklassebot.risk import (
    DenialReason,
    OrderProposal,
    RiskConfig,
    RiskDecision,
    RiskEngine,
    split_exposure,
)


def engine(**limits: Any) -> RiskEngine:
    return RiskEngine(RiskConfig(**limits), initial_equity=1_000_000, money_scale=2)


def test_denial_reason_values_are_the_metric_labels() -> None:
    assert [r.value for r in DenialReason] == [
        "max_position", "max_gross_notional", "max_order_qty", "max_order_notional",
        "order_rate_second", "order_rate_minute", "price_band", "reduce_only",
        "insufficient_buying_power", "cooldown", "halted",
    ]


def test_default_config_denies_nothing() -> None:
    risk = engine()
    view = FakeView(positions={"BTC": 5}, prices={"BTC": 10_000})
    for i in range(500):
        decision = risk.check(
            proposal(side=1 if i % 2 else -1, qty=10**9, price=1 if i % 3 else 10**12,
                     ts_ns=i, order_id=i), view)
        assert decision == RiskDecision(10**9, None, "")
    assert risk.denials == {}
    assert risk.state == "ACTIVE"


@pytest.mark.parametrize(
    ("side", "qty", "position", "open_same", "reducing", "increasing"),
    [
        (1, 5, 0, 0, 0, 5),        # opening
        (-1, 5, 10, 0, 5, 0),      # partial close
        (-1, 15, 10, 0, 10, 5),    # flip: 10 reduce, 5 open the other side
        (-1, 5, 10, 8, 2, 3),      # same-side open sells already reduce 8 of 10
        (-1, 5, 10, 12, 0, 5),     # open sells already cross flat
        (1, 5, 10, 0, 0, 5),       # adding
        (1, 4, -10, 3, 4, 0),      # buy back a short
    ],
)
def test_split_exposure(
    side: int, qty: int, position: int, open_same: int, reducing: int, increasing: int
) -> None:
    split = split_exposure(side, qty, position, open_same)
    assert (split.reducing, split.increasing) == (reducing, increasing)


def test_proposal_validates_side_and_qty() -> None:
    with pytest.raises(ValueError, match="side"):
        OrderProposal(1, "BTC", 0, 1, 1, 0)
    with pytest.raises(ValueError, match="qty"):
        OrderProposal(1, "BTC", 1, 0, 1, 0)


def test_max_order_qty_boundary() -> None:
    risk = engine(max_order_qty=Decimal(10))
    view = FakeView()
    assert risk.check(proposal(qty=10), view).allowed_qty == 10
    denied = risk.check(proposal(qty=11), view)
    assert denied.allowed_qty == 0
    assert denied.reason is DenialReason.max_order_qty
    # also for reducing orders: it is a per-order (fat finger) limit
    view.positions["BTC"] = 50
    assert risk.check(proposal(side=-1, qty=11), view).reason is DenialReason.max_order_qty
    assert risk.denials == {"max_order_qty": 2}


def test_max_order_notional_floors_extra_places_exactly() -> None:
    # limit 1000.005 quote -> 100000 money units: notional 100000 passes, 100001 is denied
    risk = engine(max_order_notional="1000.005")
    view = FakeView()
    assert risk.check(proposal(qty=10, price=10_000), view).passed
    decision = risk.check(proposal(qty=1, price=100_001), view)
    assert decision.reason is DenialReason.max_order_notional


def test_price_band_exact_boundary_both_sides() -> None:
    risk = engine(price_band_bps=50)  # 0.5 % of 10000 ticks = 50 ticks
    view = FakeView(prices={"BTC": 10_000})
    assert risk.check(proposal(price=10_050), view).passed
    assert risk.check(proposal(price=9_950), view).passed
    assert risk.check(proposal(price=10_051), view).reason is DenialReason.price_band
    assert risk.check(proposal(price=9_949), view).reason is DenialReason.price_band


def test_price_band_fractional_bps_and_no_last_price() -> None:
    risk = engine(price_band_bps="0.5")  # 0.005 % of 1_000_000 = 50 ticks
    view = FakeView(prices={"BTC": 1_000_000})
    assert risk.check(proposal(price=1_000_050), view).passed
    assert risk.check(proposal(price=1_000_051), view).reason is DenialReason.price_band
    assert risk.check(proposal(symbol="ETH", price=1), view).passed  # no last price: no band


def test_max_position_counts_same_side_open_orders() -> None:
    risk = engine(max_position=10)
    view = FakeView(positions={"BTC": 6}, open_orders={("BTC", 1): 3})
    assert risk.check(proposal(qty=1), view).passed           # 6 + 3 + 1 = 10
    denied = risk.check(proposal(qty=2), view)                 # 11
    assert denied.reason is DenialReason.max_position
    assert "11" in denied.detail
    # reducing orders pass even while over the limit
    view.positions["BTC"] = 40
    assert risk.check(proposal(side=-1, qty=30), view).passed
    # a flip whose new side would exceed the limit is denied as a whole
    assert risk.check(proposal(side=-1, qty=51), view).reason is DenialReason.max_position
    assert risk.check(proposal(side=-1, qty=50), view).passed


def test_max_position_per_symbol_override() -> None:
    risk = engine(max_position=10, max_position_per_symbol={"ETH": 100})
    view = FakeView()
    assert risk.check(proposal(symbol="ETH", qty=100), view).passed
    assert risk.check(proposal(symbol="ETH", qty=101), view).reason is DenialReason.max_position
    assert risk.check(proposal(symbol="BTC", qty=11), view).reason is DenialReason.max_position


def test_max_position_short_side() -> None:
    risk = engine(max_position=10)
    view = FakeView(positions={"BTC": -8})
    assert risk.check(proposal(side=-1, qty=2), view).passed
    assert risk.check(proposal(side=-1, qty=3), view).reason is DenialReason.max_position


def test_max_gross_notional_projects_the_symbol_at_last_price() -> None:
    # limit 3000.00 quote = 300_000 money units
    risk = engine(max_gross_notional=3000)
    view = FakeView(positions={"BTC": 10, "ETH": 10}, prices={"BTC": 10_000, "ETH": 10_000})
    assert view.gross_exposure() == 200_000
    assert risk.check(proposal(qty=10, price=12_000), view).passed   # 300_000 at last price
    assert risk.check(proposal(qty=11), view).reason is DenialReason.max_gross_notional
    # a new symbol without a last price is valued at the order's price
    assert risk.check(proposal(symbol="SOL", qty=1, price=100_000), view).passed
    assert (risk.check(proposal(symbol="SOL", qty=1, price=100_001), view).reason
            is DenialReason.max_gross_notional)
    # reducing passes whatever the gross
    view.positions["BTC"] = 1000
    assert risk.check(proposal(side=-1, qty=10), view).passed


def test_reduce_only_config_clips_to_reducing_part() -> None:
    risk = engine(reduce_only=True)
    view = FakeView(positions={"BTC": 5})
    clipped = risk.check(proposal(side=-1, qty=8), view)
    assert (clipped.allowed_qty, clipped.reason) == (5, DenialReason.reduce_only)
    denied = risk.check(proposal(side=1, qty=1), view)
    assert (denied.allowed_qty, denied.reason) == (0, DenialReason.reduce_only)
    assert risk.check(proposal(side=-1, qty=5), view) == RiskDecision(5, None, "")
    assert risk.denials == {"reduce_only": 2}


def test_reduce_only_order_flag() -> None:
    risk = engine()
    view = FakeView(positions={"BTC": -3})
    decision = risk.check(proposal(side=1, qty=5, reduce_only=True), view)
    assert (decision.allowed_qty, decision.reason) == (3, DenialReason.reduce_only)
    assert "order" in decision.detail


def test_order_rate_per_second_sliding_window() -> None:
    risk = engine(max_orders_per_second=3)
    view = FakeView()
    times = [0, 100, 200]
    for ts in times:
        assert risk.check(proposal(ts_ns=ts), view).passed
    assert risk.check(proposal(ts_ns=NS_PER_SECOND - 1), view).reason is (
        DenialReason.order_rate_second
    )
    # at exactly 1 s the first submission (ts 0) has left the window (now - 1s, now]
    assert risk.check(proposal(ts_ns=NS_PER_SECOND), view).passed
    assert risk.check(proposal(ts_ns=NS_PER_SECOND + 99), view).reason is (
        DenialReason.order_rate_second
    )
    assert risk.check(proposal(ts_ns=NS_PER_SECOND + 100), view).passed


def test_order_rate_denied_orders_do_not_count() -> None:
    risk = engine(max_orders_per_second=1, max_order_qty=5)
    view = FakeView()
    for ts in range(10):
        assert risk.check(proposal(qty=6, ts_ns=ts), view).reason is DenialReason.max_order_qty
    assert risk.check(proposal(ts_ns=10), view).passed


def test_order_rate_per_minute() -> None:
    risk = engine(max_orders_per_minute=2)
    view = FakeView()
    assert risk.check(proposal(ts_ns=0), view).passed
    assert risk.check(proposal(ts_ns=30 * NS_PER_SECOND), view).passed
    assert risk.check(proposal(ts_ns=59 * NS_PER_SECOND), view).reason is (
        DenialReason.order_rate_minute
    )
    assert risk.check(proposal(ts_ns=NS_PER_MINUTE), view).passed


def test_rule_order_names_first_failing_rule() -> None:
    risk = engine(max_order_qty=1, price_band_bps=1, max_position=1)
    view = FakeView(prices={"BTC": 10_000})
    assert risk.check(proposal(qty=2, price=1), view).reason is DenialReason.max_order_qty
    assert risk.check(proposal(qty=1, price=1), view).reason is DenialReason.price_band


def test_denials_sorted_and_buying_power_recorded() -> None:
    risk = engine(max_order_qty=1)
    view = FakeView()
    risk.check(proposal(qty=2), view)
    decision = risk.record_denial(DenialReason.insufficient_buying_power, 5, "cash 1 < 2")
    assert decision == RiskDecision(0, DenialReason.insufficient_buying_power, "cash 1 < 2")
    risk.record_denial(DenialReason.insufficient_buying_power, 6)
    assert list(risk.denials.items()) == [("insufficient_buying_power", 2), ("max_order_qty", 1)]


def test_config_refuses_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'risk\.max_pos'"):
        RiskConfig.from_mapping({"max_pos": 1})
    with pytest.raises(ConfigError, match="drawdown_cap"):
        RiskConfig.from_mapping({"drawdown_cap": 1.5})
    with pytest.raises(ConfigError, match="cooldown"):
        RiskConfig.from_mapping({"cooldown": "soon"})
    with pytest.raises(ConfigError, match="max_denials"):
        RiskConfig.from_mapping({"max_denials": 0})
    config = RiskConfig.from_mapping({"drawdown_cap": 0.1, "cooldown": "90s"})
    assert config.drawdown_cap == Decimal("0.1")  # from the float's shortest text
    assert config.cooldown == 90 * NS_PER_SECOND
    assert config.with_drawdown_cap("0.25").drawdown_cap == Decimal("0.25")
    with pytest.raises(ConfigError, match="--drawdown-cap"):
        config.with_drawdown_cap(2)
    with pytest.raises(ValueError, match="frozen"):
        config.cooldown = 1
