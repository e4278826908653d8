"""NinjaTrader text export: ``yyyyMMdd HHmmss;open;high;low;close;volume``, no header.

NinjaTrader stamps each bar with its END time; the importer moves every intraday bar to its
start (time minus the bar interval) and records that in the metadata. Daily exports
(``yyyyMMdd;...``) carry the session date, which is kept. The times carry no zone: they are in
the zone NinjaTrader was set to when exporting, so the importer needs ``--tz``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from weltklassebot.data.schema import KIND_BARS

if TYPE_CHECKING:
    from weltklassebot.data.formats import Layout

_TIME = re.compile(r"^\d{8}( \d{4}(\d{2})?)?$")


def matches(sample: list[list[str]], delimiter: str) -> bool:
    if delimiter != ";" or not sample:
        return False
    return all(len(row) == 6 and _TIME.match(row[0]) for row in sample[:20])


def layout(ncols: int, data_at: int, banner: tuple[str, ...]) -> Layout:
    from weltklassebot.data.formats import FORMAT_NINJATRADER, Layout

    return Layout(
        format=FORMAT_NINJATRADER, kind=KIND_BARS, delimiter=";", skip_lines=data_at,
        header=None, ncols=ncols, ts_columns=(0,),
        fields={"open": 1, "high": 2, "low": 3, "close": 4, "volume": 5},
        volume_candidates=(5,), banner=banner, end_of_bar_times=True,
    )
