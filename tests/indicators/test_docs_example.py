"""The strategy in docs/indicators.md runs on real bars: it trades, and the engine-computed RSI
it reads gives the same run whether the bars come one at a time or all at once."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from support.bars import DATA_DIR, read_rows
from support.engine import instrument, run_engine

PAGE = Path(__file__).resolve().parents[2] / "docs" / "indicators.md"


def _example() -> Any:
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)
    source = next(b for b in blocks if "class BandReversion" in b)
    namespace: dict[str, Any] = {"__name__": "indicators_doc"}
    exec(compile(source, str(PAGE), "exec"), namespace)
    return namespace["BandReversion"]


def test_the_documented_strategy_trades_the_same_in_any_chunks() -> None:
    strategy = _example()
    bars = read_rows(DATA_DIR / "coinbase_btcusd_1h_2017-07_2019-10.parquet", limit=3000)
    inst = instrument("BTC-USD", price="0.01", qty="0.01")
    params = {"window": 20, "k": 2, "oversold": 30, "qty": "0.01"}
    runs = [run_engine(bars, lambda: strategy(**params), inst=inst, chunk_rows=chunk)
            for chunk in (1, None)]
    assert len(runs[0].fills) >= 4
    assert runs[0].fills == runs[1].fills
    assert runs[0].eq_val == runs[1].eq_val
