"""``sma_cross`` on real series against an independent, plain-Python reference.

The reference reads the closes and opens, converts them once to integer ticks (exact decimal of the
float's shortest text, half-even), and walks the bars: at the close of bar i, with f and s the
simple moving averages over ``fast`` and ``slow`` closes, a crossing from f < s at i-1 to f > s at
i while flat signals a buy of ``qty``; from f > s to f < s while long, a sell of the position.
Comparisons use exact integer window sums (a tie is never a crossing). A market order fills at
the next bar's open; an order signalled on the last bar never fills; nothing is liquidated at the
end (equity is the cash plus the position marked at the last close). Fees are 10 bps, half-even
to the cash increment (1e-8). The engine's fills (ts, side, price, qty, fee), final cash and final
equity must equal the reference's exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from support.bars import write_table
from weltklassebot.config.model import BacktestConfig
from weltklassebot.runs.backtest import RunRequest, execute

DATA = Path(__file__).resolve().parent.parent / "data"
TICK = Decimal("0.00000001")


@dataclass(frozen=True)
class RefFill:
    ts: int
    side: str
    price: int  # ticks of 1e-8
    qty: int  # ticks of 1e-8
    fee: int  # units of 1e-8


def ticks(value: float) -> int:
    return int((Decimal(repr(value)) / TICK).to_integral_value(rounding=ROUND_HALF_EVEN))


def half_even(value: Fraction) -> int:
    whole, rest = divmod(value.numerator, value.denominator)
    twice = 2 * rest
    if twice > value.denominator or (twice == value.denominator and whole % 2):
        whole += 1
    return whole


def reference(path: Path, fast: int, slow: int, qty: int = 1, rows: int | None = None
              ) -> tuple[list[RefFill], int, int]:
    """Fills, final cash and final equity (units of 1e-8) of sma_cross, the plain way."""
    table = pq.read_table(path, columns=["ts", "open", "close"])
    if rows is not None:
        table = table.slice(0, rows)
    ts = table.column("ts").cast(pa.int64()).to_pylist()
    opens = [ticks(v) for v in table.column("open").to_pylist()]
    closes = [ticks(v) for v in table.column("close").to_pylist()]
    qty_ticks = qty * 10**8
    cash = 1_000_000 * 10**8
    position = 0
    pending: tuple[str, int] | None = None
    fills: list[RefFill] = []
    previous_sign: int | None = None
    for i in range(len(closes)):
        if pending is not None:
            side, amount = pending
            # price ticks x qty ticks are units of 1e-16: to the 1e-8 cash unit, half-even.
            notional = half_even(Fraction(opens[i] * amount, 10**8))
            fee = half_even(Fraction(notional * 10, 10_000))
            fills.append(RefFill(ts[i], side, opens[i], amount, fee))
            if side == "buy":
                cash -= notional + fee
                position += amount
            else:
                cash += notional - fee
                position -= amount
            pending = None
        if i + 1 < slow:
            continue
        fast_sum = sum(closes[i + 1 - fast:i + 1])
        slow_sum = sum(closes[i + 1 - slow:i + 1])
        difference = fast_sum * slow - slow_sum * fast
        sign = (difference > 0) - (difference < 0)
        if previous_sign is not None:
            if previous_sign < 0 < sign and position == 0:
                pending = ("buy", qty_ticks)
            elif previous_sign > 0 > sign and position > 0:
                pending = ("sell", position)
        previous_sign = sign
    mark = half_even(Fraction(position * closes[-1], 10**8))
    return fills, cash, cash + mark


def run_engine(tmp_path: Path, snapshot: Path, fast: int, slow: int) -> tuple[
        list[RefFill], int, int, dict[str, object]]:
    config = BacktestConfig.model_validate({
        "data": {"snapshot": str(snapshot)},
        "strategy": {"name": "sma_cross", "params": {"fast": fast, "slow": slow}},
    })
    out = tmp_path / f"run-{snapshot.stem}-{fast}-{slow}"
    outcome = execute(RunRequest(config=config, config_file=None, argv=["test"], out=out,
                                 runs_dir=tmp_path))
    table = pq.read_table(out / "fills.parquet")
    fill_ts = table.column("ts").cast(pa.int64()).to_pylist()
    fills = [
        RefFill(t, row["side"], int(row["price"] / TICK), int(row["qty"] / TICK),
                int(row["fee"] / TICK))
        for t, row in zip(fill_ts, table.to_pylist(), strict=True)
    ]
    summary = outcome.summary
    cash = int(Decimal(summary["final_cash"]) / TICK)
    equity = int(Decimal(summary["final_equity"]) / TICK)
    return fills, cash, equity, summary


CASES = [
    ("msft_1d_1986-2017.parquet", 10, 30),
    ("msft_1d_1986-2017.parquet", 5, 20),
    ("ninjatrader_spy_1m_2011-03.parquet", 10, 30),
    ("ninjatrader_spy_1m_2011-03.parquet", 20, 50),
]


@pytest.mark.parametrize(("name", "fast", "slow"), CASES,
                         ids=[f"{n.split('_')[0]}-{f}-{s}" for n, f, s in CASES])
def test_engine_fills_equal_the_reference(tmp_path: Path, name: str, fast: int,
                                          slow: int) -> None:
    snapshot = DATA / name
    want_fills, want_cash, want_equity = reference(snapshot, fast, slow)
    got_fills, got_cash, got_equity, summary = run_engine(tmp_path, snapshot, fast, slow)
    assert len(want_fills) > 20, "the series must actually trade"
    assert [f.side for f in want_fills[:2]] == ["buy", "sell"]
    assert got_fills == want_fills
    assert (got_cash, got_equity) == (want_cash, want_equity)
    assert summary["fills"] == len(want_fills)


def test_a_signal_on_the_last_bar_expires_and_nothing_is_liquidated(tmp_path: Path) -> None:
    snapshot = DATA / "msft_1d_1986-2017.parquet"
    full, _, _ = reference(snapshot, 10, 30)
    table = pq.read_table(snapshot)
    ts = table.column("ts").cast(pa.int64()).to_pylist()
    # Cut the series right at the bar that signals the 5th and the 6th fill.
    for k in (4, 5):
        last_bar = ts.index(full[k].ts) - 1
        cut = write_table(tmp_path / f"cut{k}.parquet", table.slice(0, last_bar + 1))
        want_fills, want_cash, want_equity = reference(cut, 10, 30)
        assert want_fills == full[:k]
        got_fills, got_cash, got_equity, summary = run_engine(tmp_path, cut, 10, 30)
        assert got_fills == want_fills
        assert (got_cash, got_equity) == (want_cash, want_equity)
        assert summary["orders"] == k + 1  # the last one expired unfilled
        orders = pq.read_table(Path(str(summary["run_dir"])) / "orders.parquet").to_pylist()
        assert (orders[-1]["status"], orders[-1]["reason"]) == ("expired", "end_of_data")
    # Still long at the end of the 5th-fill cut: equity marks the position, nothing is sold.
    long_cut = reference(tmp_path / "cut5.parquet", 10, 30)
    assert long_cut[2] != long_cut[1]
