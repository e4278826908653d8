"""The default fill model: where, and whether, an order fills inside one bar.

Pessimistic and written down (docs/fill-model.md). The path inside a bar is
open -> adverse extreme -> favourable extreme -> close, adverse for the order's side (a buy sees
the high first, a sell the low). Hence:

* market: the open of the first bar starting at or after decision time + latency;
* limit: on touch, at the limit, or at the open when the open is already better (taker);
* stop: at the worse of the stop and the open (a gap through the stop fills at the open);
  once triggered it is a market order, so a remainder (volume cap) fills at later opens;
* stop-limit: becomes a limit in the bar it triggers; if the trigger price is within the
  limit it fills there, otherwise it fills later in the path only if the limit is touched.

Sells are buys in a mirrored price space (every price negated), so one routine serves both.
"""

from __future__ import annotations

from weltklassebot.model.enums import Liquidity, OrderType

# (fill price ticks or None, liquidity, triggered-in-this-bar)
FillPoint = tuple[int | None, Liquidity, bool]

_NO_FILL_TAKER: FillPoint = (None, Liquidity.TAKER, False)


def fill_point(
    order_type: OrderType,
    side: int,
    limit: int | None,
    stop: int | None,
    triggered: bool,
    bar_open: int,
    bar_high: int,
    bar_low: int,
) -> FillPoint:
    """Decide the fill price of one order in one bar (quantity is decided by the venue)."""
    if side > 0:
        o, h, lo = bar_open, bar_high, bar_low
        lim, stp = limit, stop
    else:
        o, h, lo = -bar_open, -bar_low, -bar_high
        lim = None if limit is None else -limit
        stp = None if stop is None else -stop
    price, liquidity, now_triggered = _buy_fill(order_type, lim, stp, triggered, o, h, lo)
    if price is not None and side < 0:
        price = -price
    return price, liquidity, now_triggered


def _buy_fill(
    order_type: OrderType,
    limit: int | None,
    stop: int | None,
    triggered: bool,
    o: int,
    h: int,
    lo: int,
) -> FillPoint:
    if order_type is OrderType.MARKET or (order_type is OrderType.STOP and triggered):
        return o, Liquidity.TAKER, False
    if order_type is OrderType.LIMIT or (order_type is OrderType.STOP_LIMIT and triggered):
        assert limit is not None
        return _buy_limit(limit, o, lo)
    assert stop is not None
    if order_type is OrderType.STOP:
        if o >= stop:
            return o, Liquidity.TAKER, True
        if h >= stop:
            return stop, Liquidity.TAKER, True
        return _NO_FILL_TAKER
    # Stop-limit, not yet triggered.
    assert limit is not None
    if o >= stop:
        price, liquidity, _ = _buy_limit(limit, o, lo)
        return price, liquidity, True
    if h >= stop:
        if stop <= limit:
            return stop, Liquidity.TAKER, True
        if lo <= limit:
            return limit, Liquidity.MAKER, True
        return None, Liquidity.MAKER, True
    return _NO_FILL_TAKER


def path_stage(
    order_type: OrderType,
    side: int,
    limit: int | None,
    stop: int | None,
    triggered: bool,
    bar_open: int,
    bar_high: int,
    bar_low: int,
) -> int | None:
    """Where on the bar's path an order fills: 0 at the open, 1 on the way to the adverse
    extreme, 2 on the way to the favourable one; None when it does not fill in this bar.

    Two legs of one-cancels-other on the same side share the path: the one at the lower stage
    fills first (docs/fill-model.md). Read off ``fill_point``: a maker fill is a limit touched
    on the way to the favourable extreme; a taker fill is at the open, or else a stop reached
    on the way to the adverse one (intrabar stops lie strictly beyond the open).
    """
    price, liquidity, _ = fill_point(order_type, side, limit, stop, triggered, bar_open,
                                     bar_high, bar_low)
    if price is None:
        return None
    if liquidity is Liquidity.MAKER:
        return 2
    return 0 if price == bar_open else 1


def _buy_limit(limit: int, o: int, lo: int) -> FillPoint:
    if o <= limit:
        return o, Liquidity.TAKER, False
    if lo <= limit:
        return limit, Liquidity.MAKER, False
    return None, Liquidity.MAKER, False
