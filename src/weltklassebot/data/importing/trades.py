"""Trade ticks: read, map the side column to buy/sell, sort, drop repeated trade ids.

One trade id with two different trades makes the file contradict itself and is refused.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from weltklassebot.data.importing.anomalies import sort_rows
from weltklassebot.data.importing.context import MAX_NAMED_ROWS, ImportContext
from weltklassebot.data.importing.source import Opener, as_int64, floats, read_table, strings
from weltklassebot.data.importing.symbols import leading_columns, symbol_codes
from weltklassebot.data.importing.times import read_times
from weltklassebot.errors import InvalidSnapshot

_SIDES = {"buy": "buy", "b": "buy", "bid": "buy", "buyer": "buy", "long": "buy",
          "sell": "sell", "s": "sell", "ask": "sell", "seller": "sell", "short": "sell"}


def build_trades(opener: Opener, ctx: ImportContext, symbol: str | None,
                 tz: str | None) -> tuple[pa.Table, list[str]]:
    layout = ctx.layout
    fields = layout.fields
    text_cols = set(layout.ts_columns) | {fields[k] for k in ("symbol", "side") if k in fields}
    if "trade_id" in fields:
        text_cols.add(fields["trade_id"])
    table = read_table(opener, ctx, text_cols, set())
    ctx.extra["source_rows"] = table.num_rows
    ts = read_times(table, ctx, tz)
    codes, names, keep_symbol = symbol_codes(table, ctx, symbol, table.num_rows)
    price = floats(table, fields["price"])
    size = floats(table, fields["size"])
    n = ts.size
    line = np.arange(n, dtype=np.int64) + ctx.first_line

    side: pa.Array = pa.nulls(n, type=pa.string())
    if "side" in fields:
        raw = pc.utf8_lower(pc.utf8_trim_whitespace(strings(table, fields["side"])))
        label = layout.column_label(fields["side"])
        if layout.side_is_buyer_maker:
            mapping = {"true": "sell", "1": "sell", "false": "buy", "0": "buy"}
            ctx.fixes.append(f"side: {label} true -> sell, false -> buy (the taker's side)")
        else:
            mapping = dict(_SIDES)
        seen = [str(s) for s in pc.unique(raw).to_pylist()]
        side = pa.array([mapping.get(s) for s in seen], type=pa.string())
        side = pc.take(side, pc.index_in(raw, value_set=pa.array(seen, type=pa.string())))
        unknown = sorted(s for s in seen if s not in mapping and s)
        if unknown:
            ctx.warnings.append(f"side: values {', '.join(repr(u) for u in unknown[:5])} in "
                                f"column {label} are not buy/sell; stored as unknown (null)")
        if {"bid", "ask"} & set(seen):
            ctx.fixes.append(f"side: {label} 'bid' -> buy, 'ask' -> sell (taker side, as the "
                             "exchange's trade type reports it)")
    trade_id: np.ndarray | None = None
    if "trade_id" in fields:
        ids = strings(table, fields["trade_id"])
        try:
            trade_id = as_int64(ids)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            ctx.warnings.append(f"trade ids in column {layout.column_label(fields['trade_id'])} "
                                "are not integers; not kept")
    del table

    order = sort_rows(ts, codes, ctx.fixes, lambda rows: ctx.lines(rows, line), "trades",
                      tiebreak=trade_id)
    ts, codes, line, price, size = ts[order], codes[order], line[order], price[order], size[order]
    side = pc.take(side, pa.array(order))
    if trade_id is not None:
        trade_id = trade_id[order]
        by_id = np.argsort(trade_id, kind="stable")
        dup = np.flatnonzero(trade_id[by_id][1:] == trade_id[by_id][:-1]) + 1
        if dup.size:
            first, second = by_id[dup - 1], by_id[dup]
            side_list = side.to_pylist()
            same = ((ts[first] == ts[second]) & (price[first] == price[second])
                    & (size[first] == size[second])
                    & np.array([side_list[a] == side_list[b] for a, b in
                                zip(first.tolist(), second.tolist(), strict=True)]))
            if (~same).any():
                bad = np.flatnonzero(~same)[:MAX_NAMED_ROWS]
                raise InvalidSnapshot(
                    f"{ctx.src}: {int((~same).sum())} trade id(s) appear twice with different "
                    "trades, so the file contradicts itself: "
                    + "; ".join(f"id {int(trade_id[first[k]])} at lines {line[first[k]]} and "
                                f"{line[second[k]]}" for k in bad.tolist())
                    + ". Nothing was written. Remove the wrong rows and import again."
                )
            keep = np.ones(ts.size, dtype=bool)
            keep[second] = False
            ctx.fixes.append(f"dropped {dup.size} identical duplicate trade(s) (same trade id), "
                             f"at lines {', '.join(str(int(x)) for x in line[second][:5])}")
            ts, codes, line, price, size, trade_id = (a[keep] for a in
                                                      (ts, codes, line, price, size, trade_id))
            side = side.filter(pa.array(keep))
    columns = leading_columns(ts, codes, names, keep_symbol)
    columns["price"] = pa.array(price, type=pa.float64())
    columns["size"] = pa.array(size, type=pa.float64())
    columns["side"] = side
    if trade_id is not None:
        columns["trade_id"] = pa.array(trade_id, type=pa.int64())
    ctx.extra["line_of_row"] = line
    return pa.table(columns), names
