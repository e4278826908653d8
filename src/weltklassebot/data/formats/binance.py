"""Binance kline (candlestick) CSV, as published on data.binance.vision.

Spot files have no header; futures files have one. Twelve columns: open time, open, high, low,
close, volume (base asset), close time, quote asset volume, number of trades, taker buy base
volume, taker buy quote volume, ignore. Times are epoch milliseconds (microseconds in spot files
from 2025 on), so they are UTC by definition; the open time is the bar start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from weltklassebot.data.schema import KIND_BARS

if TYPE_CHECKING:
    from weltklassebot.data.formats import Layout

NCOLS = 12
OPEN_TIME, OPEN, HIGH, LOW, CLOSE, VOLUME, CLOSE_TIME, QUOTE_VOLUME = range(8)


def matches(sample: list[list[str]]) -> bool:
    """A header-less sample whose rows look like klines."""
    if not sample:
        return False
    for row in sample[:20]:
        if len(row) != NCOLS:
            return False
        if not (row[OPEN_TIME].isdigit() and row[CLOSE_TIME].isdigit()):
            return False
        if int(row[CLOSE_TIME]) <= int(row[OPEN_TIME]):
            return False
    return True


def header_matches(names: list[str]) -> bool:
    return {"open_time", "close_time", "open", "close"} <= set(names)


def layout(delimiter: str, ncols: int, data_at: int, banner: tuple[str, ...],
           header: tuple[str, ...] | None) -> Layout:
    from weltklassebot.data.formats import FORMAT_BINANCE, Layout, normalise

    if header is not None:
        names = [normalise(h) for h in header]
        fields = {key: names.index(key) for key in ("open", "high", "low", "close")}
        ts = names.index("open_time")
        volume = names.index("volume") if "volume" in names else VOLUME
    else:
        fields = {"open": OPEN, "high": HIGH, "low": LOW, "close": CLOSE}
        ts, volume = OPEN_TIME, VOLUME
    fields["volume"] = volume
    return Layout(
        format=FORMAT_BINANCE, kind=KIND_BARS, delimiter=delimiter,
        skip_lines=data_at + (1 if header is not None else 0), header=header, ncols=ncols,
        ts_columns=(ts,), fields=fields, volume_candidates=(volume,), banner=banner,
        notes=("Binance klines: open time taken as bar start; volume is the base-asset column "
               "(quote asset volume, trade counts and taker volumes dropped)",),
    )
