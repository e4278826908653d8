"""The equity hash: SHA-256 of a canonical text of every fill and every equity point.

The text, byte for byte (UTF-8, each line ending in a single ``\\n``)::

    weltklassebot-equity-hash v1
    <ts>,<symbol>,<side>,<price>,<qty>,<fee>,<order_id>,<fill_id>     one line per fill, fill order
    <ts>,<equity>                                                     one line per equity point

``ts`` is integer nanoseconds since the Unix epoch (UTC); ``side`` is ``buy`` or ``sell``;
``price``, ``qty``, ``fee`` and ``equity`` are decimals in plain notation: no exponent, no
trailing zeros, no trailing point, ``0`` for zero, ``-`` for negatives; ids are integers.
The digest is lowercase hex. docs/equity-hash.md has a worked example.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from weltklassebot.core.decimal import format_scaled
from weltklassebot.model.enums import side_label
from weltklassebot.model.instrument import Instrument
from weltklassebot.model.records import Fill

HEADER = "weltklassebot-equity-hash v1\n"


def fill_line(fill: Fill, instrument: Instrument) -> str:
    money = instrument.money
    return (
        f"{fill.ts_ns},{fill.symbol},{side_label(fill.side)},{instrument.price_text(fill.price)},"
        f"{instrument.qty_text(fill.qty)},{money.text(fill.fee)},{fill.order_id},{fill.fill_id}\n"
    )


# A fill record as an Arrow struct, field for field (liquidity as its text).
FILL_STRUCT = pa.struct(list(zip(
    Fill._fields, (pa.int64(), pa.int64(), pa.int64(), pa.string(), pa.int64(), pa.int64(),
                   pa.int64(), pa.int64(), pa.int64(), pa.string()), strict=True)))
_FIELD = {name: i for i, name in enumerate(Fill._fields)}
_LIMIT = 1 << 62


def record_structs(records: Sequence[tuple[Any, ...]],
                   struct: pa.StructType) -> pa.StructArray | None:
    """Records (named tuples) as one struct array, converted in a single pass (much cheaper
    than a pass per field); None when a value does not fit its field (an integer beyond
    int64), for the exact per-field route."""
    try:
        array: pa.StructArray = pa.array(records, type=struct)
    except (OverflowError, pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return array


def fill_lines_text(fills: list[Fill], instruments: dict[str, Instrument],
                    structs: pa.StructArray | None = None) -> bytes:
    """All fill lines at once, rendered with Arrow kernels (same bytes as ``fill_line``).

    ``structs``: ``record_structs(fills, FILL_STRUCT)`` when the caller has it. Fills of
    several symbols, or with a value whose units reach 2**62, take ``fill_line`` one by one."""
    if not fills:
        return b""
    if structs is None:
        structs = record_structs(fills, FILL_STRUCT)
    columns = None if structs is None else _fill_columns(structs, fills[0].symbol, instruments)
    if columns is None:
        return "".join(fill_line(f, instruments[f.symbol]) for f in fills).encode()
    lines = pc.binary_join_element_wise(*columns, ",")
    return bytes(_string_array_bytes(pc.binary_join_element_wise(lines, "", "\n")))


def _fill_columns(structs: pa.StructArray, first: str,
                  instruments: dict[str, Instrument]) -> list[pa.Array] | None:
    """The text columns of the fill lines when every fill is of ``first``'s symbol and every
    price, quantity and fee in units stays below 2**62; otherwise None."""
    field = structs.field
    symbol = field(_FIELD["symbol"])
    if symbol.null_count or not pc.all(pc.equal(symbol, first)).as_py():
        return None
    inst = instruments[first]
    if inst.price_step >= _LIMIT or inst.qty_step >= _LIMIT:
        return None
    price = field(_FIELD["price"]).to_numpy()
    qty = field(_FIELD["qty"]).to_numpy()
    fee = field(_FIELD["fee"]).to_numpy()
    if (peak_magnitude(price) * inst.price_step >= _LIMIT
            or peak_magnitude(qty) * inst.qty_step >= _LIMIT or peak_magnitude(fee) >= _LIMIT):
        return None
    return [
        field(_FIELD["ts_ns"]).cast(pa.string()),
        symbol,
        pc.if_else(pc.greater(field(_FIELD["side"]), 0), "buy", "sell"),
        format_scaled_array(price * inst.price_step, inst.price_scale),
        format_scaled_array(qty * inst.qty_step, inst.qty_scale),
        format_scaled_array(fee, inst.money.scale),
        field(_FIELD["order_id"]).cast(pa.string()),
        field(_FIELD["fill_id"]).cast(pa.string()),
    ]


def peak_magnitude(values: np.ndarray) -> int:
    """The largest magnitude in ``values`` (0 when empty), exact (Python ints for an object
    array)."""
    if not values.size:
        return 0
    if values.dtype == object:
        return max(abs(int(v)) for v in values.tolist())
    return max(int(values.max()), -int(values.min()))


def decimal_column(units: np.ndarray, scale: int) -> pa.Array:
    """int64 units of ``10**-scale`` -> decimal128(38, scale), zero-copy and exact.

    An object array (Python ints beyond int64) takes the exact, slower route through ``Decimal``.
    """
    if units.dtype == object:
        return pa.array([Decimal(int(u)).scaleb(-scale) for u in units],
                        type=pa.decimal128(38, scale))
    units = np.ascontiguousarray(units, dtype=np.int64)
    limbs = np.empty((units.size, 2), dtype=np.int64)
    limbs[:, 0] = units
    limbs[:, 1] = units >> 63  # sign extension: decimal128 is 16-byte two's complement
    return pa.Array.from_buffers(pa.decimal128(38, scale), units.size,
                                 [None, pa.py_buffer(limbs)])


def format_scaled_array(units: np.ndarray, scale: int) -> pa.Array:
    """Vectorised ``format_scaled`` for int64 money units: canonical decimal strings.

    Arrow renders a decimal in plain notation unless its adjusted exponent is below -6 (then it
    writes ``1E-8``); those rare small values (|value| < 1e-6, zero included) take the digit-wise
    route, everything else is Arrow's text with trailing zeros and point trimmed.
    """
    if scale >= 19:  # 10**scale is beyond int64: Python ints, exact (such units are rare)
        return pa.array([format_scaled(int(u), scale) for u in np.asarray(units).tolist()],
                        type=pa.string())
    units = np.asarray(units, dtype=np.int64)
    if scale <= 0:
        return pa.array(units * 10 ** (-scale)).cast(pa.string())
    text = pc.utf8_rtrim(pc.utf8_rtrim(decimal_column(units, scale).cast(pa.string()),
                                       characters="0"), characters=".")
    if scale >= 7:
        small = np.abs(units) < 10 ** (scale - 6)
        if small.any():
            text = pc.if_else(pa.array(small), _digitwise(units, scale), text)
    return text


def _digitwise(units: np.ndarray, scale: int) -> pa.Array:
    magnitude = np.abs(units)
    base = np.int64(10**scale)
    whole = pa.array(magnitude // base).cast(pa.string())
    frac = pa.array(magnitude % base).cast(pa.string())
    frac = pc.utf8_rtrim(pc.utf8_lpad(frac, width=scale, padding="0"), characters="0")
    has_frac = pc.greater(pc.utf8_length(frac), 0)
    text = pc.if_else(has_frac, pc.binary_join_element_wise(whole, frac, "."), whole)
    return pc.if_else(pa.array(units < 0), pc.binary_join_element_wise("-", text, ""), text)


class EquityHasher:
    """Feeds the canonical text to SHA-256 incrementally: header, all fills, then equity."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256(HEADER.encode())
        self._equity_started = False

    def add_fills(self, lines: list[str] | bytes) -> None:
        if self._equity_started:
            raise RuntimeError("fills must be hashed before equity points")
        self._sha.update(lines if isinstance(lines, bytes) else "".join(lines).encode())

    def add_equity(self, ts_ns: np.ndarray, equity_units: np.ndarray, scale: int) -> None:
        self.add_equity_text(equity_text(ts_ns, equity_units, scale))

    def add_equity_text(self, text: bytes | memoryview) -> None:
        """Equity lines already rendered by ``equity_text`` (e.g. spooled during a run)."""
        self._equity_started = True
        self._sha.update(text)

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def equity_text(ts_ns: np.ndarray, equity_units: np.ndarray, scale: int) -> bytes | memoryview:
    """The canonical ``<ts>,<equity>\\n`` lines of a chunk of equity points."""
    if len(ts_ns) == 0:
        return b""
    if equity_units.dtype == object:  # beyond int64: exact but slow path
        return "".join(
            f"{t},{format_scaled(int(v), scale)}\n"
            for t, v in zip(np.asarray(ts_ns).tolist(), equity_units.tolist(), strict=True)
        ).encode()
    ts_text = pa.array(np.asarray(ts_ns, dtype=np.int64)).cast(pa.string())
    body = pc.binary_join_element_wise(ts_text, format_scaled_array(equity_units, scale), ",")
    return _string_array_bytes(pc.binary_join_element_wise(body, "", "\n"))


def _string_array_bytes(array: pa.Array) -> bytes | memoryview:
    """The concatenated UTF-8 bytes of a string array, without building Python strings."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)
    start = int(offsets[array.offset])
    end = int(offsets[array.offset + len(array)])
    return memoryview(array.buffers()[2])[start:end]
