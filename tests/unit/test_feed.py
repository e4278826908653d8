"""The Parquet feed from a cursor: the bars from that bar on, the chunk holding it cut there."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from support.bars import DATA_DIR
from weltklassebot.data.feed import ParquetFeed
from weltklassebot.data.reader import open_snapshot
from weltklassebot.model.instrument import Instrument, MoneySpec

SAMPLE = DATA_DIR / "coinbase_btcusd_1h_2017-07_2019-10.parquet"


def feed(chunk_rows: int) -> ParquetFeed:
    usd = MoneySpec("USD", Decimal("0.01"))
    inst = Instrument("BTC/USD", Decimal("0.01"), Decimal("0.00000001"), usd)
    return ParquetFeed(open_snapshot(SAMPLE), {"BTC/USD": inst}, "BTC/USD",
                       chunk_rows=chunk_rows)


def column(chunks: object) -> np.ndarray:
    parts = [np.stack([c.ts, c.open, c.close]) for c in chunks]  # type: ignore[attr-defined]
    return np.concatenate(parts, axis=1) if parts else np.zeros((3, 0), dtype=np.int64)


@pytest.mark.parametrize("cursor", [0, 1, 999, 1000, 1001, 20_000])
def test_chunks_from_a_cursor_are_the_tail_of_the_whole_feed(cursor: int) -> None:
    whole = column(feed(1000).chunks())
    tail = column(feed(1000).chunks(cursor))
    assert np.array_equal(tail, whole[:, cursor:])


def test_a_cursor_past_the_end_is_refused() -> None:
    total = column(feed(5000).chunks()).shape[1]
    assert column(feed(5000).chunks(total)).shape[1] == 0
    with pytest.raises(ValueError, match="fewer than the cursor"):
        list(feed(5000).chunks(total + 1))


@pytest.mark.parametrize("cursor", [0, 1001])
def test_reading_ahead_gives_the_same_chunks(cursor: int) -> None:
    plain = feed(1000)
    plain.read_ahead = False
    assert np.array_equal(column(feed(1000).chunks(cursor)), column(plain.chunks(cursor)))


def test_read_ahead_raises_an_error_at_its_place_in_the_sequence() -> None:
    from collections.abc import Iterator

    from weltklassebot.data.feed import read_ahead

    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("damaged row group")

    values = read_ahead(items())
    assert [next(values), next(values)] == [1, 2]
    with pytest.raises(OSError, match="damaged row group"):
        next(values)


def test_read_ahead_stops_its_worker_when_the_caller_stops_early() -> None:
    import itertools
    import threading

    from weltklassebot.data.feed import read_ahead

    def workers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "weltklassebot-feed"]

    endless = read_ahead(itertools.count())
    assert [next(endless), next(endless)] == [0, 1]
    assert workers()
    endless.close()
    assert not workers()
