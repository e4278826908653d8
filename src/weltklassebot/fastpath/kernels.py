"""The compiled loop of the fast path: the engine's venue, fill model, costs and ledger for one
symbol, with the built-in strategies' decisions, in numba over int64 arrays.

Every jitted function lives in this one file on purpose: numba's on-disk cache is keyed by the
content of the file that defines a function, so a cached kernel can never outlive a change to
any part of it (a helper in another file could change without invalidating the cache).

Money, prices and quantities are int64 counts exactly as in the engine (ticks, cash units);
every product that could exceed int64 is bounded before the run (``fastpath.runner``), and the
few quantities that grow with the run (position, cash, fees) are checked as they change: the
kernel then stops with ``OVERFLOW`` and the caller falls back to the engine. Nothing here rounds
through a float.

Unsigned arithmetic (the PCG64 generator) is written with ``np.uint64`` operands only: numba
turns a mix of signed and unsigned 64-bit integers into a float.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

# Kernel status.
OK = 0
OVERFLOW = 1

# Strategies.
SMA_CROSS = 1
DONCHIAN = 2

# Order types, liquidity, order status and close reasons (codes; the runner names them).
MARKET = 0
LIMIT = 1
STOP = 2
STOP_LIMIT = 3
TAKER = 0
MAKER = 1
OPEN = 0
FILLED = 1
CANCELLED = 2
EXPIRED = 3
REJECTED = 4
R_NONE = 0
R_CANCELLED = 1  # cancelled_by_strategy
R_END = 2  # end_of_data
R_BUYING_POWER = 3  # insufficient_buying_power

# Order tags of the built-ins.
TAG_NONE = 0
TAG_ENTRY = 1
TAG_EXIT = 2
TAG_LONG_ENTRY = 3
TAG_SHORT_ENTRY = 4
TAG_LONG_EXIT = 5
TAG_SHORT_EXIT = 6

NONE = -(2**63)  # no limit / no stop price
LIMIT_62 = 2**62

# Indices of the int64 parameter vector ``prm``.
P_STRATEGY = 0
P_A = 1  # sma_cross: fast; donchian_breakout: entry
P_B = 2  # sma_cross: slow; donchian_breakout: exit
P_QTY = 3  # the strategy's order quantity in ticks
P_INTERVAL = 4
P_CASH = 5  # initial cash
P_VNUM = 6  # notional = half_even(qty * price * VNUM / VDEN) * STEP
P_VDEN = 7
P_STEP = 8
P_TAKER_NUM = 9  # fee = half_even(|notional| * NUM / DEN) * STEP, then the minimum
P_TAKER_DEN = 10
P_MAKER_NUM = 11
P_MAKER_DEN = 12
P_MIN_FEE = 13
P_SLIP = 14  # 0 none, 1 fixed, 2 stochastic
P_SLIP_BUY = 15  # fixed: price * BUY / DEN rounded up for buys, * SELL / DEN down for sells
P_SLIP_SELL = 16
P_SLIP_DEN = 17
P_SLIP_BOUND = 18  # stochastic: draws below this bound are thousandths of a bp
P_DELAY = 19
P_JITTER = 20
P_LEV_NUM = 21
P_LEV_DEN = 22
P_HAS_CAP = 23
P_QTY_LIMIT = 24  # |position| and order quantities stay at or below this
P_CASH_LIMIT = 25  # |cash| and fees paid stay at or below this
P_FRACTION_NUM = 26  # sma_cross's fraction of equity per entry (0: its qty instead)
P_FRACTION_DEN = 27
P_RATIO_NUM = 28  # the instrument's notional ratio: money units per price tick x qty tick
P_RATIO_DEN = 29
P_SIZE = 30

# Columns of a resting order (the book) and of a closed order (the output).
B_ID, B_SIDE, B_TYPE, B_QTY, B_LIMIT, B_STOP, B_SUB, B_ACT, B_FILLED, B_TRIG, B_TAG = range(11)
B_COLS = 11
C_ID, C_SIDE, C_TYPE, C_QTY, C_LIMIT, C_STOP, C_SUB, C_ACT, C_FILLED = range(9)
C_STATUS, C_TRIG, C_REASON, C_CLOSED, C_TAG = range(9, 14)
C_COLS = 14
# Columns of a fill.
F_ID, F_ORDER, F_TS, F_SIDE, F_PRICE, F_QTY, F_FEE, F_NOTIONAL, F_LIQ = range(9)
F_COLS = 9

_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_S58 = np.uint64(58)
_U0 = np.uint64(0)
_U10 = np.uint64(10)
_U100 = np.uint64(100)
_U63 = np.uint64(63)
_U64 = np.uint64(64)
# PCG64's 128-bit multiplier (numpy's PCG64: step the LCG, then the XSL-RR output).
_MUL_HI = np.uint64(2549297995355413924)
_MUL_LO = np.uint64(4865540595714422341)


# -- the named random streams ------------------------------------------------------------------

@njit(cache=False)
def _mul_64x64(a: Any, b: Any) -> Any:
    """The 128-bit product of two uint64 as (high, low) words."""
    a_lo = a & _M32
    a_hi = a >> _S32
    b_lo = b & _M32
    b_hi = b >> _S32
    p0 = a_lo * b_lo
    p1 = a_lo * b_hi
    p2 = a_hi * b_lo
    p3 = a_hi * b_hi
    mid = (p0 >> _S32) + (p1 & _M32) + (p2 & _M32)
    low = (mid << _S32) | (p0 & _M32)
    high = p3 + (p1 >> _S32) + (p2 >> _S32) + (mid >> _S32)
    return high, low


@njit(cache=False)
def pcg64_raw(state: Any) -> Any:
    """One raw draw of numpy's PCG64: ``state`` is [state_hi, state_lo, inc_hi, inc_lo]."""
    s_hi = state[0]
    s_lo = state[1]
    high, low = _mul_64x64(s_lo, _MUL_LO)
    high = high + s_hi * _MUL_LO + s_lo * _MUL_HI
    low2 = low + state[3]
    carry = np.uint64(1) if low2 < low else _U0
    high = high + state[2] + carry
    state[0] = high
    state[1] = low2
    x = high ^ low2
    rot = high >> _S58
    return (x >> rot) | (x << ((_U64 - rot) & _U63))


@njit(cache=False)
def pcg64_below(state: Any, bound: Any) -> Any:
    """``RandomStream.below(bound)``: rejection sampling, then the draw modulo ``bound``."""
    b = np.uint64(bound)
    rem = (_U0 - b) % b  # 2**64 mod bound
    limit = _U0 - rem  # 2**64 - rem, when rem > 0
    while True:
        draw = pcg64_raw(state)
        if rem == _U0 or draw < limit:
            return np.int64(draw % b)


# -- exact integer helpers ---------------------------------------------------------------------
# a * b / d for int64 a, b and 0 < d < 2**62, rounded as the engine rounds (half-even, floor or
# ceiling of the exact rational). When |a * b| < 2**62 (decided on a float product, whose
# relative error is far below the margin) plain int64 arithmetic does it; otherwise the product
# is formed in 128 bits and divided by long division. A quotient that does not fit is reported
# (``ok`` False): the caller stops with OVERFLOW.

_FITS = 4.0e18  # below 2**62 by more than any float rounding of a product


@njit(cache=False)
def _nlz(x: Any) -> Any:
    """Leading zero bits of a non-zero uint64."""
    n = np.uint64(0)
    if x <= np.uint64(0x00000000FFFFFFFF):
        n += np.uint64(32)
        x = x << np.uint64(32)
    if x <= np.uint64(0x0000FFFFFFFFFFFF):
        n += np.uint64(16)
        x = x << np.uint64(16)
    if x <= np.uint64(0x00FFFFFFFFFFFFFF):
        n += np.uint64(8)
        x = x << np.uint64(8)
    if x <= np.uint64(0x0FFFFFFFFFFFFFFF):
        n += np.uint64(4)
        x = x << np.uint64(4)
    if x <= np.uint64(0x3FFFFFFFFFFFFFFF):
        n += np.uint64(2)
        x = x << np.uint64(2)
    if x <= np.uint64(0x7FFFFFFFFFFFFFFF):
        n += np.uint64(1)
    return n


@njit(cache=False)
def udivrem_128(u1: Any, u0: Any, v: Any) -> Any:
    """(u1 * 2**64 + u0) divided by v, all uint64, for u1 < v: (quotient, remainder).

    Knuth's algorithm D on two 32-bit digits (Hacker's Delight, ``divlu``).
    """
    b = np.uint64(1) << _S32
    s = _nlz(v)
    v = v << s
    vn1 = v >> _S32
    vn0 = v & _M32
    un32 = u1 if s == _U0 else (u1 << s) | (u0 >> (_U64 - s))  # no shift by 64
    un10 = u0 << s
    un1 = un10 >> _S32
    un0 = un10 & _M32
    q1 = un32 // vn1
    rhat = un32 - q1 * vn1
    while q1 >= b or q1 * vn0 > b * rhat + un1:
        q1 -= np.uint64(1)
        rhat += vn1
        if rhat >= b:
            break
    un21 = un32 * b + un1 - q1 * v
    q0 = un21 // vn1
    rhat = un21 - q0 * vn1
    while q0 >= b or q0 * vn0 > b * rhat + un0:
        q0 -= np.uint64(1)
        rhat += vn1
        if rhat >= b:
            break
    remainder = (un21 * b + un0 - q0 * v) >> s
    return q1 * b + q0, remainder


@njit(cache=False)
def floor_divmod_product(a: Any, b: Any, d: Any) -> Any:
    """(ok, q, r) with a * b = q * d + r and 0 <= r < d (Python's divmod of the exact
    product), for int64 a, b, 0 < d < 2**62; ok is False when q does not fit."""
    if abs(float(a) * float(b)) < _FITS:
        x = a * b
        if d == 1:
            return True, x, 0
        q = x // d
        return True, q, x - q * d
    negative = (a < 0) != (b < 0)
    high, low = _mul_64x64(np.uint64(abs(a)), np.uint64(abs(b)))
    ud = np.uint64(d)
    if high >= ud:
        return False, 0, 0
    uq, ur = udivrem_128(high, low, ud)
    if uq >= np.uint64(LIMIT_62):
        return False, 0, 0
    q = np.int64(uq)
    r = np.int64(ur)
    if not negative:
        return True, q, r
    if r == 0:
        return True, -q, 0
    return True, -q - 1, d - r


@njit(cache=False)
def half_even_product(a: int, b: int, d: int) -> Any:
    """(ok, round_half_even(a * b / d)): ``div_round_half_even`` of the exact product."""
    ok, q, r = floor_divmod_product(a, b, d)
    twice = 2 * r
    if twice > d or (twice == d and (q & 1) == 1):
        q += 1
    return ok, q


@njit(cache=False)
def product_exceeds(a: int, b: int, c: int, d: int) -> Any:
    """a * b > c * d, exactly, for int64 operands."""
    if abs(float(a) * float(b)) < _FITS and abs(float(c) * float(d)) < _FITS:
        return a * b > c * d
    left_high, left_low = _signed_128(a, b)
    right_high, right_low = _signed_128(c, d)
    if left_high != right_high:
        return left_high > right_high
    return left_low > right_low


@njit(cache=False)
def _signed_128(a: int, b: int) -> Any:
    """a * b in two's complement 128 bits: (high word as int64, low word as uint64)."""
    high, low = _mul_64x64(np.uint64(abs(a)), np.uint64(abs(b)))
    if (a < 0) != (b < 0) and (high != _U0 or low != _U0):
        low = ~low + np.uint64(1)
        high = ~high + (np.uint64(1) if low == _U0 else _U0)
    return np.int64(high), low


@njit(cache=False)
def _fee(notional: int, liquidity: int, prm: Any) -> Any:
    """(ok, fee): ``FeeModel.fee``."""
    if liquidity == MAKER:
        num = prm[P_MAKER_NUM]
        den = prm[P_MAKER_DEN]
    else:
        num = prm[P_TAKER_NUM]
        den = prm[P_TAKER_DEN]
    ok, fee = half_even_product(abs(notional), num, den)
    fee *= prm[P_STEP]
    if 0 < fee < prm[P_MIN_FEE]:
        return ok, prm[P_MIN_FEE]
    return ok, fee


# -- the fill model (engine/fill_model.py) -----------------------------------------------------

@njit(cache=False)
def _buy_limit(limit: int, o: int, lo: int) -> Any:
    if o <= limit:
        return True, o, TAKER, False
    if lo <= limit:
        return True, limit, MAKER, False
    return False, 0, MAKER, False


@njit(cache=False)
def _buy_fill(kind: int, limit: int, stop: int, triggered: bool, o: int, h: int,
              lo: int) -> Any:
    if kind == MARKET or (kind == STOP and triggered):
        return True, o, TAKER, False
    if kind == LIMIT or (kind == STOP_LIMIT and triggered):
        return _buy_limit(limit, o, lo)
    if kind == STOP:
        if o >= stop:
            return True, o, TAKER, True
        if h >= stop:
            return True, stop, TAKER, True
        return False, 0, TAKER, False
    if o >= stop:
        has, price, liquidity, _ = _buy_limit(limit, o, lo)
        return has, price, liquidity, True
    if h >= stop:
        if stop <= limit:
            return True, stop, TAKER, True
        if lo <= limit:
            return True, limit, MAKER, True
        return False, 0, MAKER, True
    return False, 0, TAKER, False


@njit(cache=False)
def fill_point(kind: int, side: int, limit: int, stop: int, triggered: bool, bar_open: int,
               bar_high: int, bar_low: int) -> Any:
    """(fills, price, liquidity, triggered in this bar): a sell is a buy in the mirrored
    price space, as in the engine."""
    if side > 0:
        has, price, liquidity, now = _buy_fill(kind, limit, stop, triggered, bar_open,
                                               bar_high, bar_low)
        return has, price, liquidity, now
    lim = NONE if limit == NONE else -limit
    stp = NONE if stop == NONE else -stop
    has, price, liquidity, now = _buy_fill(kind, lim, stp, triggered, -bar_open, -bar_low,
                                           -bar_high)
    return has, -price, liquidity, now


# -- indicators --------------------------------------------------------------------------------

@njit(cache=False)
def _reduced(num: Any, den: Any) -> Any:
    """num / den in lowest terms (den > 0)."""
    a = abs(num)
    b = den
    while b != 0:
        a, b = b, a % b
    return num // a, den // a


@njit(cache=False)
def rolling_extreme(values: Any, window: Any, sign: Any) -> Any:
    """Highest (``sign`` 1) or lowest (``sign`` -1) of the last ``window`` values at each
    position, fewer at the start: the maximum of ``sign * values``, times ``sign`` (prices are
    far from int64's ends, so negating them is exact).

    Van Herk / Gil-Werman: maxima from each block's start and to each block's end (blocks of
    ``window`` values); a full window is the end of one block and the start of the next.
    """
    n = values.size
    out = np.empty(n, dtype=np.int64)
    if n == 0:
        return out
    w = min(window, n)
    tail = np.empty(n, dtype=np.int64)  # from i to the end of i's block
    last = (n - 1) // w * w  # start of the last block
    block_end = n - 1
    for i in range(n - 1, -1, -1):
        v = sign * values[i]
        if i == block_end:
            tail[i] = v
        else:
            tail[i] = max(v, tail[i + 1])
        if i == last:
            block_end = i - 1
            last -= w
    head = sign * values[0]  # from the start of i's block to i
    k = 0  # position of i in its block
    for i in range(n):
        v = sign * values[i]
        head = v if k == 0 else max(head, v)
        k += 1
        if k == w:
            k = 0
        out[i] = sign * (head if i < w - 1 else max(tail[i - w + 1], head))
    return out


# -- the equity lines of the equity hash --------------------------------------------------------

@njit(cache=False)
def render_equity(ts: Any, values: Any, scale: Any, out: Any) -> Any:
    """Write ``<ts>,<value>\\n`` for every point into the uint8 buffer ``out`` and return the
    length: ``value`` is ``format_scaled(value, scale)`` (plain decimal, no trailing zeros, no
    trailing point, ``0`` for zero, ``-`` for negatives), the text of docs/equity-hash.md.
    ``out`` must hold 23 + max(21, scale + 3) bytes per point."""
    digits = np.empty(24, dtype=np.int64)
    pos = 0
    for i in range(ts.size):
        for field in range(2):
            v = ts[i] if field == 0 else values[i]
            places = 0 if field == 0 else scale
            if v < 0:
                out[pos] = 45  # '-'
                pos += 1
            # Unsigned, two digits per division: a division by a constant becomes a
            # multiplication.
            m = np.uint64(abs(v))
            nd = 0
            while m >= _U100:
                q = m // _U100
                pair = m - q * _U100
                tens = pair // _U10
                digits[nd] = np.int64(pair - tens * _U10)
                digits[nd + 1] = np.int64(tens)
                nd += 2
                m = q
            top = np.int64(m)  # below 100
            digits[nd] = top % 10
            nd += 1
            if top >= 10:
                digits[nd] = top // 10
                nd += 1
            # The lowest non-zero digit of the fraction (places: none when it is zero).
            low = places
            for d in range(min(places, nd)):
                if digits[d] != 0:
                    low = d
                    break
            if nd > places:
                for d in range(nd - 1, places - 1, -1):
                    out[pos] = 48 + digits[d]
                    pos += 1
            else:
                out[pos] = 48  # a whole part of zero
                pos += 1
            if low < places:
                out[pos] = 46  # '.'
                pos += 1
                for d in range(places - 1, low - 1, -1):
                    out[pos] = 48 + (digits[d] if d < nd else 0)
                    pos += 1
            out[pos] = 44 if field == 0 else 10  # ',' after the time, a newline after it all
            pos += 1
    return pos


# -- tables and the run's state ----------------------------------------------------------------
# The run's scalars live in one int64 vector so the steps below can be separate (small)
# functions: numba compiles a few small functions much faster than one large one. Tables grow
# only between calls of ``run_bars``, which asks for room before a bar that might not fit.

S_CASH = 0
S_FEES = 1
S_POSITION = 2
S_NEXT_ORDER = 3
S_NEXT_FILL = 4
S_BOOK = 5  # resting orders
S_FILLS = 6
S_CLOSED = 7
S_DENIALS = 8
S_STATUS = 9
S_MARK_NUM = 10  # the position's marking factor in lowest terms: position * vnum / vden
S_MARK_DEN = 11
S_SUM_A = 12  # sma_cross: the window sums and the last sign of their difference
S_SUM_B = 13
S_SIGN = 14
S_HOW_FILLED = 15  # constants passed as values (see ``_close``)
S_HOW_CANCELLED = 16
S_HOW_EXPIRED = 17
S_ZERO = 18
S_NOW = 19  # the event clock after the last close event
S_SIZE = 20


@njit(cache=False)
def _close(st: Any, closed: Any, book: Any, k: Any, how: Any, ts: Any) -> None:
    """Take resting order ``k`` out of the book (the rest stay in id order) and append its
    final record; ``how`` is status * 16 + reason (one argument, never a compile-time
    constant per call site: numba would compile a copy for each)."""
    n = st[S_CLOSED]
    for c in range(B_TRIG):
        closed[n, c] = book[k, c]  # id .. filled: the same columns in both tables
    closed[n, C_STATUS] = how // 16
    closed[n, C_TRIG] = book[k, B_TRIG]
    closed[n, C_REASON] = how % 16
    closed[n, C_CLOSED] = ts
    closed[n, C_TAG] = book[k, B_TAG]
    st[S_CLOSED] = n + 1
    n_book = st[S_BOOK]
    for j in range(k, n_book - 1):
        for c in range(B_COLS):
            book[j, c] = book[j + 1, c]
    st[S_BOOK] = n_book - 1


@njit(cache=False)
def _find(book: Any, n_book: Any, order_id: Any) -> Any:
    for k in range(n_book):
        if book[k, B_ID] == order_id:
            return k
    return -1


@njit(cache=False)
def _fill(prm: Any, st: Any, book: Any, fills: Any, k: Any, ts: Any, price: Any, qty: Any,
          liquidity: Any, slip_state: Any) -> None:
    """Fill ``qty`` of resting order ``k`` at ``price`` (before slippage): the venue's
    ``_fill`` and the ledger's ``apply``."""
    side = book[k, B_SIDE]
    kind = book[k, B_TYPE]
    slip = prm[P_SLIP]
    if liquidity == TAKER and slip != 0:
        if slip == 1:
            num_buy = prm[P_SLIP_BUY]
            num_sell = prm[P_SLIP_SELL]
            den = prm[P_SLIP_DEN]
        else:
            milli = pcg64_below(slip_state, prm[P_SLIP_BOUND])
            num_buy = 10_000_000 + milli
            num_sell = 10_000_000 - milli
            den = np.int64(10_000_000)
        if side > 0:  # against the trader: buys round up, sells down
            ok, q, r = floor_divmod_product(price, num_buy, den)
            price = q + 1 if r > 0 else q
        else:
            ok, price, r = floor_divmod_product(price, num_sell, den)
        limit = book[k, B_LIMIT]
        if limit != NONE and (kind == LIMIT or book[k, B_TRIG] != 0):
            price = min(price, limit) if side > 0 else max(price, limit)
        if not ok:
            st[S_STATUS] = OVERFLOW
            return
    ok, notional = half_even_product(qty * prm[P_VNUM], price, prm[P_VDEN])
    notional *= prm[P_STEP]
    ok_fee, fee = _fee(notional, liquidity, prm)
    if not ok or not ok_fee:
        st[S_STATUS] = OVERFLOW
        return
    n = st[S_FILLS]
    fills[n, F_ID] = st[S_NEXT_FILL]
    fills[n, F_ORDER] = book[k, B_ID]
    fills[n, F_TS] = ts
    fills[n, F_SIDE] = side
    fills[n, F_PRICE] = price
    fills[n, F_QTY] = qty
    fills[n, F_FEE] = fee
    fills[n, F_NOTIONAL] = notional
    fills[n, F_LIQ] = liquidity
    st[S_FILLS] = n + 1
    st[S_NEXT_FILL] += 1
    cash = st[S_CASH] - (side * notional + fee)
    fees = st[S_FEES] + fee
    position = st[S_POSITION] + side * qty
    st[S_CASH] = cash
    st[S_FEES] = fees
    st[S_POSITION] = position
    limit_cash = prm[P_CASH_LIMIT]
    if abs(position) > prm[P_QTY_LIMIT] or abs(cash) > limit_cash or abs(fees) > limit_cash:
        st[S_STATUS] = OVERFLOW
        return
    mark_num, mark_den = _reduced(position * prm[P_VNUM], prm[P_VDEN])
    st[S_MARK_NUM] = mark_num
    st[S_MARK_DEN] = mark_den
    book[k, B_FILLED] += qty


@njit(cache=False)
def _execute(prm: Any, st: Any, book: Any, fills: Any, closed: Any, snapshot: Any, ts: Any,
             o: Any, h: Any, low: Any, available: Any, slip_state: Any) -> None:
    """The venue's ``process_bar``: every resting order that is active and reached, in id
    order, against this bar (``available`` quantity ticks in all, -1 for no cap). The caller
    made room for a fill and a closed record per resting order."""
    up = h if h > o else o
    down = low if low < o else o
    n_snap = st[S_BOOK]
    for s in range(n_snap):
        snapshot[s] = book[s, B_ID]
    for s in range(n_snap):
        k = _find(book, st[S_BOOK], snapshot[s])
        if k < 0:
            continue  # cancelled from on_fill in this bar
        side = book[k, B_SIDE]
        kind = book[k, B_TYPE]
        if book[k, B_TRIG] == 0:
            if kind == LIMIT:
                level = book[k, B_LIMIT]
                reached = down <= level if side > 0 else up >= level
            elif kind == MARKET:
                reached = True
            else:
                level = book[k, B_STOP]
                reached = up >= level if side > 0 else down <= level
            if not reached:
                continue
        if book[k, B_ACT] > ts:
            continue
        has, price, liquidity, now_triggered = fill_point(
            kind, side, book[k, B_LIMIT], book[k, B_STOP], book[k, B_TRIG] != 0, o, h, low)
        if now_triggered:
            book[k, B_TRIG] = 1
        if not has or available == 0:
            continue
        qty = book[k, B_QTY] - book[k, B_FILLED]
        if available > 0:
            qty = min(qty, available)
            available -= qty
        _fill(prm, st, book, fills, k, ts, price, qty, liquidity, slip_state)
        if st[S_STATUS] != OK:
            return
        if book[k, B_FILLED] == book[k, B_QTY]:
            _close(st, closed, book, k, st[S_HOW_FILLED], ts)
        # on_fill: donchian_breakout cancels its entries once a position is open.
        if prm[P_STRATEGY] == DONCHIAN and st[S_POSITION] != 0:
            j = 0
            while j < st[S_BOOK]:
                if book[j, B_TAG] in (TAG_LONG_ENTRY, TAG_SHORT_ENTRY):
                    _close(st, closed, book, j, st[S_HOW_CANCELLED], ts)
                else:
                    j += 1


@njit(cache=False)
def _submit(prm: Any, st: Any, book: Any, closed: Any, wanted: Any, n_wanted: Any,
            close: Any, now: Any, lat_state: Any) -> None:
    """The engine's ``submit`` for each wanted order in turn: buying power, then latency,
    then the book. The caller made room for every wanted order in the book and in the closed
    records."""
    for w in range(n_wanted):
        side = wanted[w, 0]
        if side == 0:
            continue
        qty = wanted[w, 1]
        stop = wanted[w, 2]
        kind = MARKET if stop == NONE else STOP
        order_id = st[S_NEXT_ORDER]
        st[S_NEXT_ORDER] = order_id + 1
        if qty > prm[P_QTY_LIMIT]:
            st[S_STATUS] = OVERFLOW
            return
        open_side = 0
        for j in range(st[S_BOOK]):
            if book[j, B_SIDE] == side:
                open_side += book[j, B_QTY] - book[j, B_FILLED]
        position = st[S_POSITION]
        before = position + side * open_side
        after = abs(before + side * qty)
        if after > abs(before):
            # The order adds to the exposure: refused when the exposure after it (at its stop,
            # or the last close) would cost more than equity x leverage.
            reference = close if stop == NONE else stop
            ok, needed = half_even_product(after * prm[P_VNUM], reference, prm[P_VDEN])
            ok_mark, mark = half_even_product(st[S_MARK_NUM], close, st[S_MARK_DEN])
            if not ok or not ok_mark:
                st[S_STATUS] = OVERFLOW
                return
            worth = st[S_CASH] + mark * prm[P_STEP]
            if product_exceeds(needed * prm[P_STEP], prm[P_LEV_DEN], worth, prm[P_LEV_NUM]):
                n = st[S_CLOSED]
                closed[n, C_ID] = order_id
                closed[n, C_SIDE] = side
                closed[n, C_TYPE] = kind
                closed[n, C_QTY] = qty
                closed[n, C_LIMIT] = NONE
                closed[n, C_STOP] = stop
                closed[n, C_SUB] = now
                closed[n, C_ACT] = now
                closed[n, C_FILLED] = 0
                closed[n, C_STATUS] = REJECTED
                closed[n, C_TRIG] = 0
                closed[n, C_REASON] = R_BUYING_POWER
                closed[n, C_CLOSED] = now
                closed[n, C_TAG] = wanted[w, 3]
                st[S_CLOSED] = n + 1
                st[S_DENIALS] += 1
                continue
        delay = prm[P_DELAY]
        if prm[P_JITTER] > 0:
            delay += pcg64_below(lat_state, prm[P_JITTER] + 1)
        n = st[S_BOOK]
        book[n, B_ID] = order_id
        book[n, B_SIDE] = side
        book[n, B_TYPE] = kind
        book[n, B_QTY] = qty
        book[n, B_LIMIT] = NONE
        book[n, B_STOP] = stop
        book[n, B_SUB] = now
        book[n, B_ACT] = now + delay
        book[n, B_FILLED] = 0
        book[n, B_TRIG] = 0
        book[n, B_TAG] = wanted[w, 3]
        st[S_BOOK] = n + 1


# -- the run -----------------------------------------------------------------------------------

@njit(cache=False)
def run_bars(prm: Any, st: Any, ts: Any, op: Any, hi: Any, lo: Any, cl: Any, caps: Any,
          slip_state: Any, lat_state: Any, entry_high: Any, entry_low: Any, exit_high: Any,
          exit_low: Any, equity: Any, cash_out: Any, book: Any, fills: Any, closed: Any,
          snapshot: Any, wanted: Any, start: Any) -> Any:
    """Bars ``start``.. in the engine's event order: per bar, the resting orders against the
    bar at its start, then the strategy at its close (ts + interval), then the equity point.

    Returns the bar to go on from: the end, where the run stopped (OVERFLOW), or a bar whose
    step might not fit the tables (nothing of it done yet): ``runner.run_tables`` grows them
    and calls again. It does so in Python so that this is the compiled entry point: numba
    optimises a callee again inside every caller, and a level less compiles faster.

    No array variable is reassigned in here, and the work of every bar is inline: numba counts
    the references of arrays handed to another function (atomic operations), which would cost
    more than the rest of a bar. Helpers that take arrays are called per order or fill.
    """
    n = ts.size
    strategy = prm[P_STRATEGY]
    interval = prm[P_INTERVAL]
    has_cap = prm[P_HAS_CAP] != 0
    step = prm[P_STEP]
    fast = prm[P_A]
    slow = prm[P_B]
    # sma_cross's window sums and the sign of their difference at the previous bar: locals
    # (registers) here, saved in ``st`` wherever this returns.
    sum_a = st[S_SUM_A]
    sum_b = st[S_SUM_B]
    prev = st[S_SIGN]
    for i in range(start, n):
        resting = st[S_BOOK]
        if (fills.shape[0] < st[S_FILLS] + resting
                or closed.shape[0] < st[S_CLOSED] + resting + 2
                or book.shape[0] < resting + 2 or snapshot.size < resting):
            st[S_SUM_A] = sum_a
            st[S_SUM_B] = sum_b
            st[S_SIGN] = prev
            return i
        t = ts[i]
        if resting > 0:
            # The venue's reach check: a bar that neither reaches a resting stop or limit nor
            # meets a market or triggered order that is active leaves the book as it is.
            o = op[i]
            h = hi[i]
            low = lo[i]
            up = h if h > o else o
            down = low if low < o else o
            busy = False
            for j in range(resting):
                if book[j, B_ACT] > t:
                    continue
                kind = book[j, B_TYPE]
                side = book[j, B_SIDE]
                if book[j, B_TRIG] != 0 or kind == MARKET:
                    busy = True
                elif kind == LIMIT:
                    level = book[j, B_LIMIT]
                    busy = down <= level if side > 0 else up >= level
                else:
                    level = book[j, B_STOP]
                    busy = up >= level if side > 0 else down <= level
                if busy:
                    break
            if busy:
                _execute(prm, st, book, fills, closed, snapshot, t, o, h, low,
                         caps[i] if has_cap else -1, slip_state)
                if st[S_STATUS] != OK:
                    break
        now = t + interval
        st[S_NOW] = now
        close = cl[i]
        n_wanted = 0
        if strategy == SMA_CROSS:
            # sma_cross.on_bar: the crossing of the window means, exact on the sums (as
            # CrossSeries), then the market order it sends, if any.
            sum_a += close
            sum_b += close
            if i >= fast:
                sum_a -= cl[i - fast]
            if i >= slow:
                sum_b -= cl[i - slow]
            sign = 0
            if i + 1 >= fast and i + 1 >= slow:
                diff = sum_a * slow - sum_b * fast
                sign = 1 if diff > 0 else (-1 if diff < 0 else 0)
            if prev != 0 and sign != 0 and prev != sign and st[S_BOOK] == 0:
                position = st[S_POSITION]
                if sign > 0 and position == 0:
                    qty = prm[P_QTY]
                    if prm[P_FRACTION_NUM] > 0:
                        # ctx.qty_for_fraction: the largest quantity worth at most the fraction
                        # of equity (flat: the cash) at this close, rounded down; none at 0.
                        worth = st[S_CASH]
                        qty = 0
                        if worth > 0:
                            ok, qty, _ = floor_divmod_product(
                                worth, prm[P_FRACTION_NUM] * prm[P_RATIO_DEN],
                                prm[P_FRACTION_DEN] * close * prm[P_RATIO_NUM])
                            if not ok:
                                st[S_STATUS] = OVERFLOW
                                break
                    if qty > 0:
                        wanted[0, 0] = 1
                        wanted[0, 1] = qty
                        wanted[0, 2] = NONE
                        wanted[0, 3] = TAG_ENTRY
                        n_wanted = 1
                elif sign < 0 and position > 0:
                    wanted[0, 0] = -1
                    wanted[0, 1] = position
                    wanted[0, 2] = NONE
                    wanted[0, 3] = TAG_EXIT
                    n_wanted = 1
            prev = sign
        elif i + 1 >= fast:
            # donchian_breakout.on_bar (fast is its entry window): the stops the position
            # wants; a resting one that is right is kept, the others are cancelled.
            position = st[S_POSITION]
            if position == 0:
                wanted[0, 0] = 1
                wanted[0, 1] = prm[P_QTY]
                wanted[0, 2] = entry_high[i] + 1
                wanted[0, 3] = TAG_LONG_ENTRY
                n_wanted = 1
                if entry_low[i] > 1:
                    wanted[1, 0] = -1
                    wanted[1, 1] = prm[P_QTY]
                    wanted[1, 2] = entry_low[i] - 1
                    wanted[1, 3] = TAG_SHORT_ENTRY
                    n_wanted = 2
            elif position > 0:
                if exit_low[i] > 1:
                    wanted[0, 0] = -1
                    wanted[0, 1] = position
                    wanted[0, 2] = exit_low[i] - 1
                    wanted[0, 3] = TAG_LONG_EXIT
                    n_wanted = 1
            else:
                wanted[0, 0] = 1
                wanted[0, 1] = -position
                wanted[0, 2] = exit_high[i] + 1
                wanted[0, 3] = TAG_SHORT_EXIT
                n_wanted = 1
            j = 0
            while j < st[S_BOOK]:
                keep = False
                if book[j, B_FILLED] == 0:
                    for w in range(n_wanted):
                        if (wanted[w, 0] != 0 and book[j, B_SIDE] == wanted[w, 0]
                                and book[j, B_QTY] == wanted[w, 1]
                                and book[j, B_STOP] == wanted[w, 2]
                                and book[j, B_TAG] == wanted[w, 3]):
                            wanted[w, 0] = 0  # kept: nothing to send
                            keep = True
                            break
                if keep:
                    j += 1
                else:
                    _close(st, closed, book, j, st[S_HOW_CANCELLED], now)
        if n_wanted > 0 and (wanted[0, 0] != 0 or (n_wanted > 1 and wanted[1, 0] != 0)):
            _submit(prm, st, book, closed, wanted, n_wanted, close, now, lat_state)
            if st[S_STATUS] != OK:
                break
        cash = st[S_CASH]
        cash_out[i] = cash
        if st[S_POSITION] != 0:
            ok, mark = half_even_product(st[S_MARK_NUM], close, st[S_MARK_DEN])
            if not ok:
                st[S_STATUS] = OVERFLOW
                break
            equity[i] = cash + mark * step
        else:
            equity[i] = cash
    st[S_SUM_A] = sum_a
    st[S_SUM_B] = sum_b
    st[S_SIGN] = prev
    return n
