"""Instruments: the symbol code of every row, and a symbol's base and quote currency."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from weltklassebot.data.importing.context import ImportContext
from weltklassebot.data.importing.source import strings
from weltklassebot.errors import UnusableInput, UsageError

QUOTE_CURRENCIES: tuple[str, ...] = (
    "USDT", "USDC", "BUSD", "TUSD", "FDUSD", "DAI", "USD", "EUR", "GBP", "JPY", "CHF", "AUD",
    "CAD", "KRW", "TRY", "BRL", "BTC", "ETH", "BNB",
)


def split_symbol(symbol: str | None) -> tuple[str | None, str | None]:
    if not symbol:
        return None, None
    text = symbol.upper()
    for sep in ("/", "-", "_", ":"):
        if sep in text:
            base, quote = text.split(sep, 1)
            return base or None, quote or None
    for quote in QUOTE_CURRENCIES:
        if text.endswith(quote) and len(text) > len(quote):
            return text[: -len(quote)], quote
    return None, None


_EXTENSIONS = (".gz", ".zip", ".csv", ".txt", ".tsv", ".dat", ".prn")


def symbol_from_file_name(src: Path) -> str:
    """The instrument a file's name names: the first run of letters and digits that holds a
    letter, once ``.csv``, ``.txt``, ``.gz``, ``.zip`` and the like are taken off
    (``BTCUSDT-1m-2024-03.zip`` -> ``BTCUSDT``, ``EURUSD_H1.csv`` -> ``EURUSD``); ``""`` if none."""
    name = src.name
    while True:
        lowered = name.lower()
        ext = next((e for e in _EXTENSIONS if lowered.endswith(e) and len(name) > len(e)), None)
        if ext is None:
            break
        name = name[: -len(ext)]
    return next((run for run in re.findall(r"[A-Za-z0-9]+", name)
                 if any(ch.isalpha() for ch in run)), "")


def symbol_codes(table: pa.Table, ctx: ImportContext, symbol: str | None,
                 n: int) -> tuple[np.ndarray, list[str], bool]:
    """Symbol code per row, the names, and whether the snapshot keeps a symbol column."""
    index = ctx.layout.fields.get("symbol")
    if index is None:
        if symbol is not None:
            return np.zeros(n, dtype=np.int32), [symbol], True
        named = symbol_from_file_name(ctx.src)
        if named:
            ctx.fixes.append(f"symbol: {named!r}, taken from the file name {ctx.src.name!r} (the "
                             "file has no symbol column); recorded in the metadata, no symbol "
                             "column written. Pass --symbol to name the instrument otherwise")
            ctx.extra["symbol_from"] = "file name"
        else:
            ctx.warnings.append(f"no symbol: the file has no symbol column and its name "
                                f"{ctx.src.name!r} holds no letters; pass --symbol to name the "
                                "instrument")
        return np.zeros(n, dtype=np.int32), [named], False
    column = pc.utf8_trim_whitespace(strings(table, index))
    encoded = pc.dictionary_encode(column)
    names = [str(v) for v in encoded.dictionary.to_pylist()]
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int32)
    label = ctx.layout.column_label(index)
    if "" in names:
        rows = np.flatnonzero(codes == names.index(""))
        raise UnusableInput(f"{ctx.src}: column {label} is empty at {ctx.lines(rows)}; every "
                            "row needs its symbol.")
    if len(names) == 1:
        if symbol is not None and symbol != names[0]:
            ctx.fixes.append(f"symbol: the file says {names[0]!r}; --symbol {symbol!r} used")
            return codes, [symbol], True
        if symbol is None:
            ctx.fixes.append(f"symbol: one instrument ({names[0]!r}) recorded in the metadata; "
                             "no symbol column written (pass --symbol to write one)")
            return codes, names, False
        return codes, names, True
    if symbol is not None:
        raise UsageError(
            f"{ctx.src} holds {len(names)} symbols ({', '.join(sorted(names)[:5])}...) in column "
            f"{label}; --symbol names a single instrument. Drop --symbol to keep them all."
        )
    ctx.fixes.append(f"symbols: {len(names)} instruments kept in a symbol column")
    return codes, names, True


def leading_columns(ts: np.ndarray, codes: np.ndarray, names: list[str],
                    keep_symbol: bool) -> dict[str, pa.Array]:
    """The ``ts`` column every snapshot starts with, and the ``symbol`` column when kept."""
    columns: dict[str, pa.Array] = {"ts": pa.array(ts, type=pa.timestamp("ns", tz="UTC"))}
    if keep_symbol:
        columns["symbol"] = pa.DictionaryArray.from_arrays(
            pa.array(codes, type=pa.int32()), pa.array(names, type=pa.string())
        ).cast(pa.string())
    return columns


def symbol_suffix(names: list[str], code: Any, keep_symbol: bool) -> str:
    return f" ({names[int(code)]})" if keep_symbol and len(names) > 1 else ""
