"""CSV layouts the importer recognises, found from the first lines of a file.

``sniff`` looks at the head of a file (a few dozen lines) and returns a ``Layout``: the delimiter,
how many banner lines sit above the header, whether there is a header, and which source column
feeds which snapshot column. The importer then reads the whole file with that layout.

Formats (``--format``):

- ``ohlcv-csv``: a header naming a time column (ts, timestamp, date, time, ... or separate date
  and time columns) and open/high/low/close/volume; or, without a header, columns in the order
  ts, open, high, low, close[, volume].
- ``binance-klines``: see ``formats.binance``.
- ``ninjatrader``: see ``formats.ninjatrader``.
- ``trades-csv``: trade ticks: a time column (or epoch-microsecond trade ids), price, size
  (amount, qty) and optionally side and a trade id.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field

from weltklassebot.data.schema import KIND_BARS, KIND_TRADES
from weltklassebot.errors import UnusableInput

FORMAT_AUTO = "auto"
FORMAT_OHLCV = "ohlcv-csv"
FORMAT_BINANCE = "binance-klines"
FORMAT_NINJATRADER = "ninjatrader"
FORMAT_TRADES = "trades-csv"
FORMATS: tuple[str, ...] = (
    FORMAT_AUTO, FORMAT_OHLCV, FORMAT_BINANCE, FORMAT_NINJATRADER, FORMAT_TRADES,
)

DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|")
MAX_BANNER_LINES = 10

# Normalised header names (lower case, runs of other characters -> "_") per snapshot column,
# best first.
TS_NAMES: tuple[str, ...] = (
    "ts", "timestamp", "datetime", "date_time", "time_stamp", "timestamp_utc", "datetime_utc",
    "open_time", "opentime", "start_time", "time_period_start", "bar_start", "unix",
    "unix_timestamp", "epoch", "time_utc", "date_utc", "gmt_time", "utc_time", "local_time",
    "trade_time", "time", "date", "day", "t",
)
OPEN_NAMES: tuple[str, ...] = ("open", "o", "open_price", "opening_price", "price_open", "first")
HIGH_NAMES: tuple[str, ...] = ("high", "h", "high_price", "price_high", "max")
LOW_NAMES: tuple[str, ...] = ("low", "l", "low_price", "price_low", "min")
CLOSE_NAMES: tuple[str, ...] = (
    "close", "c", "close_price", "closing_price", "price_close", "last",
)
SYMBOL_NAMES: tuple[str, ...] = ("symbol", "ticker", "instrument", "pair", "market", "sym")
PRICE_NAMES: tuple[str, ...] = ("price", "rate", "p", "trade_price")
SIZE_NAMES: tuple[str, ...] = (
    "size", "amount", "qty", "quantity", "base_amount", "volume", "trade_size", "q",
)
SIDE_NAMES: tuple[str, ...] = (
    "side", "taker_side", "type", "direction", "trade_type", "is_buyer_maker",
)
TRADE_ID_NAMES: tuple[str, ...] = ("trade_id", "tid", "id", "tradeid")
IGNORED_VOLUME_WORDS: tuple[str, ...] = ("taker", "buy", "sell", "count", "trades", "number")

_TIME_OF_DAY = re.compile(r"^\d{1,2}:\d{2}(:\d{2}(\.\d{1,9})?)?$")
_DATE_ONLY = re.compile(
    r"^(\d{4}-\d{1,2}-\d{1,2}|\d{4}[/.]\d{1,2}[/.]\d{1,2}|\d{1,2}[/.]\d{1,2}[/.]\d{4}|\d{8})$"
)
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def normalise(name: str) -> str:
    """Header name in comparable form: ``"Volume BTC"`` -> ``"volume_btc"``."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().strip("\ufeff").lower()).strip("_")


def is_number(text: str) -> bool:
    return bool(_NUMBER.match(text.strip()))


@dataclass(frozen=True)
class Layout:
    """How to read one CSV file."""

    format: str
    kind: str
    delimiter: str
    skip_lines: int
    """Lines before the first data row (banner lines plus the header line)."""
    header: tuple[str, ...] | None
    """Original header names, or ``None`` for a file without header."""
    ncols: int
    ts_columns: tuple[int, ...]
    """Index of the time column, or (date column, time-of-day column)."""
    fields: dict[str, int]
    """Snapshot column -> source column index (open, high, ..., symbol; price, size, side, ...)."""
    volume_candidates: tuple[int, ...] = ()
    """Bars: every volume-like column; the importer picks the base-currency one."""
    banner: tuple[str, ...] = ()
    ts_from_trade_id: bool = False
    end_of_bar_times: bool = False
    side_is_buyer_maker: bool = False
    """The side column is Binance's ``is_buyer_maker`` (true: the taker sold)."""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def column_label(self, index: int) -> str:
        if self.header is not None:
            return f"'{self.header[index]}'"
        return f"#{index + 1}"


def _split_rows(lines: list[str], delimiter: str) -> list[list[str]]:
    return [[cell.strip() for cell in row] for row in csv.reader(lines, delimiter=delimiter)]


def _choose_delimiter(lines: list[str]) -> tuple[str, int]:
    tail = lines[-20:] if len(lines) > 1 else lines
    best: tuple[float, int, str] | None = None
    for delimiter in DELIMITERS:
        counts = Counter(len(row) for row in _split_rows(tail, delimiter))
        width, seen = counts.most_common(1)[0]
        if width < 2:
            continue
        score = (seen / len(tail), width, delimiter)
        if best is None or score[:2] > best[:2]:
            best = score
    if best is None:
        raise UnusableInput(
            "the file is not a delimited table: no line splits into columns at ',', ';', tab "
            "or '|'. Pass a CSV export of bars or trades."
        )
    return best[2], best[1]


def _find(names: list[str], choices: tuple[str, ...]) -> int | None:
    for choice in choices:
        if choice in names:
            return names.index(choice)
    return None


def _header_score(row: list[str]) -> int:
    names = {normalise(c) for c in row}
    vocabulary = set(TS_NAMES + OPEN_NAMES + HIGH_NAMES + LOW_NAMES + CLOSE_NAMES + PRICE_NAMES
                     + SIZE_NAMES + SIDE_NAMES + SYMBOL_NAMES)
    score = len(names & vocabulary)
    score += sum(1 for n in names if n.startswith("vol"))
    return score


def _looks_like_data(row: list[str]) -> bool:
    numeric = sum(1 for c in row if is_number(c))
    return numeric >= max(1, len(row) // 2)


def sniff(head: str, fmt: str = FORMAT_AUTO) -> Layout:
    """Work out the layout from the first lines of the file (``head``)."""
    from weltklassebot.data.formats import binance, ninjatrader

    lines = head.splitlines()
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    non_empty = [line for line in lines if line.strip()]
    if not non_empty:
        raise UnusableInput("the file holds no data lines.")
    if fmt == FORMAT_NINJATRADER:
        delimiter, ncols = ";", 6
    else:
        delimiter, ncols = _choose_delimiter(non_empty)
    # Indexes into ``rows`` are physical line numbers (0-based); blank lines give empty rows.
    rows = _split_rows(lines, delimiter)

    header_at: int | None = None
    for i, row in enumerate(rows[: MAX_BANNER_LINES + 1]):
        if len(row) == ncols and not _looks_like_data(row) and _header_score(row) >= 2:
            header_at = i
            break
    if header_at is None:
        data_at = next((i for i, row in enumerate(rows[: MAX_BANNER_LINES + 1])
                        if len(row) == ncols and _looks_like_data(row)), None)
        if data_at is None:
            raise UnusableInput(
                "no header naming the columns (ts/date/time, open, high, low, close, volume, or "
                "price and size for trades) and no numeric data rows were found in the first "
                f"{MAX_BANNER_LINES + 1} lines. First line: {non_empty[0][:120]!r}."
            )
        banner = tuple(lines[:data_at])
        sample = [r for r in rows[data_at:] if len(r) == ncols]
        if fmt in (FORMAT_NINJATRADER, FORMAT_AUTO) and ninjatrader.matches(sample, delimiter):
            return ninjatrader.layout(ncols, data_at, banner)
        if fmt == FORMAT_NINJATRADER:
            raise UnusableInput(
                "the file is not a NinjaTrader export: expected ';'-separated lines "
                "'yyyyMMdd HHmmss;open;high;low;close;volume', found "
                f"{lines[data_at][:120]!r}."
            )
        if fmt in (FORMAT_BINANCE, FORMAT_AUTO) and binance.matches(sample):
            return binance.layout(delimiter, ncols, data_at, banner, header=None)
        if fmt in (FORMAT_TRADES, FORMAT_AUTO) and binance.trades_match(sample):
            return binance.trades_layout(delimiter, ncols, data_at, banner)
        if fmt == FORMAT_BINANCE:
            raise UnusableInput(
                "the file is not a Binance kline CSV: expected 12 comma-separated columns "
                f"starting with the open time in epoch ms or us, found {lines[data_at][:120]!r}."
            )
        if fmt == FORMAT_TRADES:
            raise UnusableInput(
                "a trades file needs a header naming its columns (e.g. ts,price,size,side)."
            )
        if ncols in (5, 6, 7):
            fields = {"open": 1, "high": 2, "low": 3, "close": 4}
            if ncols >= 6:
                fields["volume"] = 5
            return Layout(
                format=FORMAT_OHLCV, kind=KIND_BARS, delimiter=delimiter, skip_lines=data_at,
                header=None, ncols=ncols, ts_columns=(0,), fields=fields,
                volume_candidates=(5,) if ncols >= 6 else (), banner=banner,
                notes=("no header: columns taken in the order ts, open, high, low, close"
                       + (", volume" if ncols >= 6 else "") + (", (ignored)" if ncols == 7
                                                               else ""),),
            )
        raise UnusableInput(
            f"the file has no header and {ncols} columns, which matches no known layout "
            "(Binance klines: 12 columns; NinjaTrader: 6 ';'-separated; plain: ts, open, "
            "high, low, close[, volume]). Add a header line naming the columns."
        )

    header = tuple(rows[header_at])
    banner = tuple(lines[:header_at])
    names = [normalise(h) for h in header]
    sample = [r for r in rows[header_at + 1:] if len(r) == ncols]
    if fmt in (FORMAT_BINANCE, FORMAT_AUTO) and binance.header_matches(names):
        return binance.layout(delimiter, ncols, header_at, banner, header=header)
    if fmt == FORMAT_NINJATRADER:
        raise UnusableInput(
            "the file has a header line; NinjaTrader exports have none. Use --format auto or "
            "ohlcv-csv."
        )
    if fmt == FORMAT_BINANCE:
        raise UnusableInput(
            "the header does not look like Binance klines (open_time, open, high, low, close, "
            f"volume, close_time, ...): found {', '.join(header)}."
        )
    return _header_layout(header, names, sample, delimiter, header_at, banner, fmt)


def _header_layout(header: tuple[str, ...], names: list[str], sample: list[list[str]],
                   delimiter: str, header_at: int, banner: tuple[str, ...], fmt: str) -> Layout:
    ncols = len(header)
    notes: list[str] = []
    side_is_buyer_maker = False
    price_cols = {key: _find(names, choices) for key, choices in
                  (("open", OPEN_NAMES), ("high", HIGH_NAMES), ("low", LOW_NAMES),
                   ("close", CLOSE_NAMES))}
    has_bars = all(v is not None for v in price_cols.values())
    kind = KIND_BARS if has_bars and fmt != FORMAT_TRADES else KIND_TRADES
    if kind == KIND_BARS and fmt == FORMAT_TRADES:
        raise UnusableInput("--format trades-csv given, but the file has open/high/low/close.")
    fields: dict[str, int] = {}
    symbol = _find(names, SYMBOL_NAMES)
    if symbol is not None:
        fields["symbol"] = symbol

    if kind == KIND_BARS:
        for key, index in price_cols.items():
            assert index is not None
            fields[key] = index
        used = set(fields.values())
        volume_candidates = tuple(
            i for i, n in enumerate(names)
            if i not in used and (n in ("v", "vol") or n.startswith(("volume", "vol_")))
            and not any(word in n for word in IGNORED_VOLUME_WORDS)
        )
        for i, n in enumerate(names):
            if n in ("adj_close", "adjusted_close", "adjclose"):
                notes.append(f"column '{header[i]}' not used: close is taken as given")
    else:
        price = _find(names, PRICE_NAMES)
        size = _find(names, SIZE_NAMES)
        if price is None or size is None:
            missing = [label for label, idx in (("open/high/low/close or price", price),
                                                ("size (amount, qty)", size)) if idx is None]
            raise UnusableInput(
                f"the header names no {' and no '.join(missing)} column, so the file is neither "
                f"bars nor trades. Columns found: {', '.join(header)}. Rename the columns to "
                "ts,open,high,low,close,volume (bars) or ts,price,size,side (trades)."
            )
        fields["price"] = price
        fields["size"] = size
        side = _find(names, SIDE_NAMES)
        if side is not None:
            fields["side"] = side
            side_is_buyer_maker = names[side] == "is_buyer_maker"
        trade_id = _find(names, TRADE_ID_NAMES)
        if trade_id is not None:
            fields["trade_id"] = trade_id
        volume_candidates = ()

    used = set(fields.values()) | set(volume_candidates)
    candidates = [i for i, n in enumerate(names) if i not in used]
    ts_columns = _pick_ts_columns(names, candidates, sample)
    ts_from_trade_id = False
    if ts_columns is None:
        if kind == KIND_TRADES and "trade_id" in fields and _ids_look_like_epoch_us(
                [r[fields["trade_id"]] for r in sample]):
            ts_columns = (fields["trade_id"],)
            ts_from_trade_id = True
            notes.append(
                f"no time column: trade ids in '{header[fields['trade_id']]}' are microseconds "
                "since the epoch (the Mt.Gox convention) and were taken as the trade times"
            )
        else:
            raise UnusableInput(
                "the header names no time column (ts, timestamp, date, time, datetime, "
                f"open_time, unix, ...). Columns found: {', '.join(header)}."
            )
    if len(ts_columns) == 2:
        notes.append(f"times combined from date column '{header[ts_columns[0]]}' and time "
                     f"column '{header[ts_columns[1]]}'")
    return Layout(
        format=FORMAT_OHLCV if kind == KIND_BARS else FORMAT_TRADES, kind=kind,
        delimiter=delimiter, skip_lines=header_at + 1, header=header, ncols=ncols,
        ts_columns=ts_columns, fields=fields, volume_candidates=volume_candidates,
        banner=banner, ts_from_trade_id=ts_from_trade_id,
        side_is_buyer_maker=side_is_buyer_maker, notes=tuple(notes),
    )


def _pick_ts_columns(names: list[str], candidates: list[int],
                     sample: list[list[str]]) -> tuple[int, ...] | None:
    available = {names[i]: i for i in reversed(candidates)}
    date_i, time_i = available.get("date"), available.get("time")
    if date_i is not None and time_i is not None and sample:
        dates = [r[date_i] for r in sample[:50]]
        times = [r[time_i] for r in sample[:50]]
        if all(_DATE_ONLY.match(d) for d in dates) and all(_TIME_OF_DAY.match(t) for t in times):
            return (date_i, time_i)
    for choice in TS_NAMES:
        if choice in available:
            return (available[choice],)
    return None


def _ids_look_like_epoch_us(values: list[str]) -> bool:
    # Microseconds between 2009 and 2100.
    lo, hi = 1_230_768_000_000_000, 4_102_444_800_000_000
    try:
        numbers = [int(v) for v in values if v]
    except ValueError:
        return False
    return bool(numbers) and all(lo <= n < hi for n in numbers)
