"""Volume-column choice: of several volume-like columns, keep the one in base currency.

A column that is about price times another is the quote-currency volume; failing that, the
column names decide; failing that, the first is taken with a warning.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from weltklassebot.data.formats import Layout, normalise
from weltklassebot.data.importing.context import ImportContext
from weltklassebot.data.importing.source import floats
from weltklassebot.data.importing.symbols import QUOTE_CURRENCIES, split_symbol
from weltklassebot.errors import UnusableInput


def choose_volume(table: pa.Table, ctx: ImportContext, close: np.ndarray,
                  symbol: str | None) -> tuple[np.ndarray, str | None]:
    """Pick the base-currency volume column; returns it and the quote currency if learnt."""
    layout = ctx.layout
    candidates = list(layout.volume_candidates)
    if not candidates:
        header = ", ".join(layout.header or ())
        raise UnusableInput(
            f"{ctx.src} has no volume column (columns: {header}). Snapshots need volume; add "
            "a 'volume' column (0 where unknown is allowed but disables volume-capped fills)."
        )
    if len(candidates) == 1:
        return floats(table, candidates[0]), None
    base_ccy, quote_ccy = split_symbol(symbol)
    arrays = {i: floats(table, i) for i in candidates}
    names = {i: normalise(layout.header[i]) if layout.header else f"c{i}" for i in candidates}
    finite_close = close[np.isfinite(close) & (close > 0)]
    price = float(np.median(finite_close)) if finite_close.size else float("nan")
    chosen: int | None = None
    quote_col: int | None = None
    how = ""
    if np.isfinite(price) and not 0.5 < price < 2.0:
        for a in candidates:
            for b in candidates:
                if a == b:
                    continue
                both = (arrays[a] > 0) & (arrays[b] > 0)
                if both.sum() < 3:
                    continue
                ratio = float(np.median(arrays[a][both] / arrays[b][both]))
                if 0.5 < ratio / price < 2.0:
                    chosen, quote_col = b, a
                    how = (f"'{_label(layout, a)}' is about price x '{_label(layout, b)}', so "
                           f"it is the quote-currency volume")
                    break
            if chosen is not None:
                break
    if chosen is None:
        base_words = ["base", "from", "coin", "asset"] + ([base_ccy.lower()] if base_ccy else [])
        quote_words = ["quote", "currency", "to", "usd", "usdt", "usdc", "eur", "notional",
                       "value", "turnover"] + ([quote_ccy.lower()] if quote_ccy else [])
        for i in candidates:
            tokens = set(names[i].split("_"))
            if tokens & set(base_words) and not tokens & set(quote_words):
                chosen = i
                how = "its name marks it as base currency"
                break
        if chosen is None:
            chosen = candidates[0]
            ctx.warnings.append(
                f"could not tell which volume column is in base units; took "
                f"'{_label(layout, chosen)}' (the first). Check the snapshot's volume."
            )
    dropped = [f"'{_label(layout, i)}'" for i in candidates if i != chosen]
    ctx.fixes.append(f"volume: took column '{_label(layout, chosen)}' (base currency"
                     + (f"; {how}" if how else "") + f"); dropped {', '.join(dropped)}")
    ctx.extra["volume_column"] = _label(layout, chosen)
    learnt = None
    if quote_col is not None:
        quote_tokens = names[quote_col].split("_")
        learnt = next((t.upper() for t in quote_tokens if t.upper() in QUOTE_CURRENCIES), None)
    return arrays[chosen], learnt


def _label(layout: Layout, index: int) -> str:
    return layout.header[index] if layout.header else f"column {index + 1}"
