"""runs/outputs.py, runs/stats.py and runs/rundir.py: exact columns, statistics, atomic dirs."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from weltklassebot.core.timeutil import NS_PER_DAY, NS_PER_YEAR
from weltklassebot.engine.equity_hash import decimal_column
from weltklassebot.errors import UsageError
from weltklassebot.model.enums import BUY, SELL, Liquidity, OrderStatus, OrderType, TimeInForce
from weltklassebot.model.instrument import Instrument, MoneySpec
from weltklassebot.model.records import Fill, Order
from weltklassebot.runs.outputs import EquityWriter, write_fills, write_orders
from weltklassebot.runs.rundir import RunDirectory, refuse_non_empty
from weltklassebot.runs.stats import EquityStats

USD = MoneySpec("USD", Decimal("0.01"))
X = Instrument("X", Decimal("0.001"), Decimal("0.5"), USD)


def test_decimal_column_is_exact_for_int64_and_beyond() -> None:
    units = np.array([0, 1, -1, 2**62, -(2**62), 123_456_789], dtype=np.int64)
    got = decimal_column(units, 8).to_pylist()
    assert got == [Decimal(int(u)).scaleb(-8) for u in units]
    big = np.array([10**30, -(10**30)], dtype=object)
    assert decimal_column(big, 2).to_pylist() == [Decimal(10**28), Decimal(-(10**28))]


def test_equity_writer_streams_rows(tmp_path: Path) -> None:
    writer = EquityWriter(tmp_path / "equity.parquet", USD)
    writer.write(np.array([1, 2]), np.array([100, 250]), np.array([100, 50]),
                 np.array([0.0, 0.5]))
    writer.write(np.array([3]), np.array([-5]), np.array([-5]), np.array([1.05]))
    writer.close()
    table = pq.read_table(tmp_path / "equity.parquet")
    assert table.column_names == ["ts", "equity", "cash", "drawdown"]
    assert table.schema.field("ts").type == pa.timestamp("ns", tz="UTC")
    assert table.column("equity").to_pylist() == [Decimal("1.00"), Decimal("2.50"),
                                                  Decimal("-0.05")]
    assert table.schema.metadata[b"weltklassebot.run_schema"] == b"1"


def test_fills_and_orders_files(tmp_path: Path) -> None:
    fills = [Fill(1, 1, 10, "X", BUY, 12_345, 3, 4, 1852, Liquidity.TAKER),
             Fill(2, 2, 20, "X", SELL, 12_000, 1, -1, 600, Liquidity.MAKER)]
    write_fills(tmp_path / "fills.parquet", fills, {"X": X}, USD)
    table = pq.read_table(tmp_path / "fills.parquet")
    for column in ("ts", "symbol", "side", "price", "qty", "fee", "order_id", "fill_id"):
        assert column in table.column_names
    assert table.column("side").to_pylist() == ["buy", "sell"]
    assert table.column("price").to_pylist() == [Decimal("12.345"), Decimal("12.000")]
    assert table.column("qty").to_pylist() == [Decimal("1.5"), Decimal("0.5")]
    assert table.column("fee").to_pylist() == [Decimal("0.04"), Decimal("-0.01")]
    orders = [Order(1, "X", BUY, OrderType.STOP_LIMIT, 4, 12_500, 12_400, TimeInForce.GTC,
                    5000, 6000, filled=3, status=OrderStatus.CANCELLED, reason="ioc_remainder",
                    ts_closed_ns=20000, tag="t")]
    write_orders(tmp_path / "orders.parquet", orders, {"X": X})
    row = pq.read_table(tmp_path / "orders.parquet").to_pylist()[0]
    assert row["type"] == "stop_limit"
    assert row["limit_price"] == Decimal("12.500")
    assert row["stop_price"] == Decimal("12.400")
    assert (row["qty"], row["filled_qty"]) == (Decimal("2.0"), Decimal("1.5"))
    assert (row["status"], row["reason"], row["tag"]) == ("cancelled", "ioc_remainder", "t")


def test_empty_fills_file_keeps_its_schema(tmp_path: Path) -> None:
    write_fills(tmp_path / "fills.parquet", [], {"X": X}, USD)
    table = pq.read_table(tmp_path / "fills.parquet")
    assert table.num_rows == 0
    assert "fill_id" in table.column_names


def test_drawdown_and_its_time_across_chunks() -> None:
    stats = EquityStats(100)
    first = stats.update(np.array([1, 2]), np.array([110, 99]))
    assert first.tolist() == [0.0, pytest.approx(11 / 110)]
    second = stats.update(np.array([3, 4]), np.array([88, 120]))
    assert second.tolist() == [pytest.approx(22 / 110), 0.0]
    assert stats.max_drawdown == pytest.approx(0.2)
    assert stats.max_drawdown_ts == 3
    assert stats.peak == 120
    assert stats.total_return() == pytest.approx(0.2)


def test_drawdown_starts_from_initial_cash() -> None:
    stats = EquityStats(100)
    assert stats.update(np.array([1]), np.array([90])).tolist() == [pytest.approx(0.1)]


def test_sharpe_is_annualised_by_the_periods_per_year() -> None:
    stats = EquityStats(100)
    values = [101, 100, 102, 101, 103]
    stats.update(np.arange(5), np.array(values))
    returns = np.diff([100, *values]) / np.array([100, *values[:-1]])
    expect = returns.mean() / returns.std(ddof=1) * math.sqrt(NS_PER_YEAR / NS_PER_DAY)
    assert stats.sharpe(NS_PER_YEAR / NS_PER_DAY) == pytest.approx(expect)
    flat = EquityStats(100)
    flat.update(np.arange(3), np.array([100, 100, 100]))
    assert flat.sharpe(252) is None


def test_run_directory_commit_and_discard(tmp_path: Path) -> None:
    run = RunDirectory(tmp_path / "runs", None, "demo")
    assert run.tmp.name.startswith(".incomplete-demo-")
    run.path("a.json").write_text("{}")
    final = run.commit(tmp_path / "runs" / "r1")
    assert (final / "a.json").exists()
    assert not run.tmp.exists()
    other = RunDirectory(tmp_path / "runs", None, "demo")
    other.path("b").write_text("x")
    other.discard()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["r1"]


def test_existing_non_empty_output_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    refuse_non_empty(out)  # empty is fine
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="already exists and is not empty"):
        RunDirectory(tmp_path, out, "demo")
    assert (out / "keep.txt").read_text() == "mine"
    file_target = tmp_path / "file"
    file_target.write_text("x")
    with pytest.raises(UsageError):
        refuse_non_empty(file_target)


def test_commit_into_an_empty_existing_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    run = RunDirectory(tmp_path, out, "demo")
    run.path("summary.json").write_text("{}")
    assert run.commit(out) == out
    assert (out / "summary.json").exists()


def _mixed_orders() -> list[Order]:
    return [
        Order(1, "X", BUY, OrderType.LIMIT, 4, 12_500, None, TimeInForce.GTC, 5000, 6000,
              filled=4, status=OrderStatus.FILLED, ts_closed_ns=7000, tag="entry"),
        Order(2, "X", SELL, OrderType.STOP, 2, None, 12_400, TimeInForce.IOC, 5000, 5000,
              status=OrderStatus.CANCELLED, reason="ioc_remainder", ts_closed_ns=8000),
        Order(3, "X", BUY, OrderType.MARKET, 1, None, None, TimeInForce.GTC, 9000, 9000),
    ]


def test_struct_route_builds_the_same_tables_as_the_per_field_route(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-pass struct conversion and the exact per-field route give equal tables."""
    from weltklassebot.runs import outputs

    instruments = {"X": X}
    orders = _mixed_orders()
    fills = [Fill(1, 1, 10, "X", BUY, 12_345, 3, 4, 1852, Liquidity.TAKER),
             Fill(2, 2, 20, "X", SELL, 12_000, 1, -1, 600, Liquidity.MAKER)]
    order_schema = outputs.orders_schema(instruments)
    fill_schema = outputs.fills_schema(instruments, USD)
    fast_orders = outputs.orders_table(orders, instruments, order_schema)
    fast_fills = outputs.fills_table(fills, instruments, fill_schema)
    monkeypatch.setattr(outputs, "record_structs", lambda records, struct: None)
    slow_orders = outputs.orders_table(orders, instruments, order_schema)
    slow_fills = outputs.fills_table(fills, instruments, fill_schema)
    assert fast_orders.equals(slow_orders, check_metadata=True)
    assert fast_fills.equals(slow_fills, check_metadata=True)
    assert fast_orders.column("limit_price").null_count == 2


def test_struct_route_leaves_products_beyond_int64_to_the_exact_route() -> None:
    """Ticks that fit in int64 but whose decimal units do not (a quantity tick of 0.5 is 5
    units of 0.1) stay exact."""
    from weltklassebot.runs.outputs import orders_schema, orders_table

    big = 2**61
    orders = [Order(1, "X", BUY, OrderType.LIMIT, big, 12_500, None, TimeInForce.GTC, 1, 1)]
    table = orders_table(orders, {"X": X}, orders_schema({"X": X}))
    assert table.column("qty").to_pylist() == [Decimal(big * 5) / 10]
    assert table.column("limit_price").to_pylist() == [Decimal("12.500")]


def test_run_files_are_delta_and_dictionary_encoded(tmp_path: Path) -> None:
    """Ids and times delta encoded with statistics; text and quantities dictionary encoded;
    prices plain without statistics. The rows read back the same whatever the encoding."""
    path = tmp_path / "orders.parquet"
    write_orders(path, _mixed_orders(), {"X": X})
    meta = pq.ParquetFile(path).metadata.row_group(0)
    columns = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    assert "DELTA_BINARY_PACKED" in columns["order_id"].encodings
    assert "DELTA_BINARY_PACKED" in columns["ts_closed"].encodings
    assert columns["order_id"].statistics.max == 3
    for name in ("status", "tag", "qty"):
        assert "RLE_DICTIONARY" in columns[name].encodings, name
    assert "RLE_DICTIONARY" not in columns["stop_price"].encodings
    assert columns["stop_price"].statistics is None
    back = pq.read_table(path)
    assert back.column("status").to_pylist() == ["filled", "cancelled", "open"]
    assert back.column("ts_closed").null_count == 1


def test_output_thread_runs_tasks_in_order_and_raises_the_first_error() -> None:
    import time

    from weltklassebot.runs.outputs import OutputThread

    seen: list[int] = []
    worker = OutputThread(depth=2)
    for i in range(50):
        worker.submit(seen.append, i)
    worker.close()
    assert seen == list(range(50))

    def fail() -> None:
        raise OSError("disk full")

    failing = OutputThread()
    failing.submit(fail)
    deadline = time.monotonic() + 10
    while failing._error is None and time.monotonic() < deadline:
        time.sleep(0.001)
    with pytest.raises(OSError, match="disk full"):
        failing.submit(seen.append, 99)  # the next hand-over reports it
    failing.close()  # reported once: closing does not raise it again
    assert 99 not in seen

    late = OutputThread()
    late.submit(fail)
    late.submit(seen.append, 100)  # skipped after the failure
    with pytest.raises(OSError, match="disk full"):
        late.close()
    assert 100 not in seen


def test_sinks_write_the_same_bytes_in_a_worker_thread_as_inline(tmp_path: Path) -> None:
    """The equity and batch sinks hand their row groups to an OutputThread or run them in
    place: the same Parquet rows and the same hash text either way."""
    import io

    from weltklassebot.engine.backtest import EngineBatch
    from weltklassebot.runs import backtest
    from weltklassebot.runs.outputs import OutputThread, run_now

    class NoGate:
        gate = None

    instruments = {"X": X}
    orders = _mixed_orders()
    fills = [Fill(i, i, 10 * i, "X", BUY if i % 2 else SELL, 12_000 + i, 2, i, 100 * i,
                  Liquidity.TAKER) for i in range(1, 30)]
    results = []
    for name, threaded in (("inline", False), ("thread", True)):
        directory = tmp_path / name
        directory.mkdir()
        worker = OutputThread(depth=1) if threaded else None
        work = worker.submit if worker is not None else run_now
        equity_text, fill_text = io.BytesIO(), io.BytesIO()
        writer = EquityWriter(directory / "equity.parquet", USD)
        sink = backtest._EquitySink(writer, equity_text, EquityStats(100), USD.scale,
                                    work=work)
        batches = backtest._BatchSink(directory, instruments, USD, NoGate(),  # type: ignore[arg-type]
                                      fill_text, work=work)
        for step in range(3):
            ts = list(range(step * 5, step * 5 + 5))
            sink(ts, [100 + t for t in ts], [50 + t for t in ts])
            batches(EngineBatch(fills[step * 10:step * 10 + 10], orders[step:step + 1], [], []))
        sink.flush()
        batches.close()
        work(writer.close)
        if worker is not None:
            worker.close()
        tables = [pq.read_table(directory / f) for f in
                  ("equity.parquet", "fills.parquet", "orders.parquet")]
        results.append((tables, equity_text.getvalue(), fill_text.getvalue()))
    (inline_tables, *inline_text), (thread_tables, *thread_text) = results
    assert all(a.equals(b, check_metadata=True)
               for a, b in zip(inline_tables, thread_tables, strict=True))
    assert inline_text == thread_text
    assert inline_text[1].count(b"\n") == 29
