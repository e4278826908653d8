"""Binance kline (candlestick) and trade CSVs, as published on data.binance.vision.

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


_BOOL = {"true", "false"}


def trades_match(sample: list[list[str]]) -> bool:
    """A header-less sample of Binance ``trades`` (7 columns) or ``aggTrades`` (8 columns)."""
    if not sample or len(sample[0]) not in (7, 8):
        return False
    time_col = 4 if len(sample[0]) == 7 else 5
    for row in sample[:20]:
        if len(row) != len(sample[0]):
            return False
        if not (row[0].isdigit() and row[time_col].isdigit()):
            return False
        if row[-2].lower() not in _BOOL or row[-1].lower() not in _BOOL:
            return False
    return True


def trades_layout(delimiter: str, ncols: int, data_at: int, banner: tuple[str, ...]) -> Layout:
    from weltklassebot.data.formats import FORMAT_TRADES, Layout
    from weltklassebot.data.schema import KIND_TRADES

    time_col = 4 if ncols == 7 else 5
    return Layout(
        format=FORMAT_TRADES, kind=KIND_TRADES, delimiter=delimiter, skip_lines=data_at,
        header=None, ncols=ncols, ts_columns=(time_col,),
        fields={"price": 1, "size": 2, "side": ncols - 2, "trade_id": 0},
        banner=banner, side_is_buyer_maker=True,
        notes=(f"Binance {'trades' if ncols == 7 else 'aggTrades'} dump (no header): id, price, "
               "quantity, time and is_buyer_maker taken; the other columns dropped",),
    )
