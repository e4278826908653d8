"""The run statistics against independent computations, on the real data in tests/data.

The returns-based statistics (Sharpe, Sortino, volatility, max drawdown, CAGR, Calmar) of the
strategy and of the buy-and-hold benchmark are compared with empyrical on the same returns, to
1e-9 relative; the trade-based ones (win rate, profit factor, expectancy, exposure, turnover)
with a plain reference written here from fills.parquet and the snapshot's closes.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from weltklassebot.config.model import BacktestConfig
from weltklassebot.runs.backtest import RunRequest, execute

empyrical = pytest.importorskip("empyrical", reason="empyrical-reloaded is a test dependency: "
                                                    "bash scripts/setup.sh installs it")

REL = 1e-9
CASES = [
    ("msft_daily", "sma_cross", {}),
    ("spy_minute", "donchian_breakout", {"entry": 120, "exit": 60}),
    ("btc_hourly", "donchian_breakout", {"entry": 48, "exit": 24}),
]


def _run(tmp: Path, snapshot: Path, strategy: str, params: dict[str, Any],
         **config: Any) -> Path:
    raw = {"data": {"snapshot": str(snapshot)}, "strategy": {"name": strategy, "params": params},
           **config}
    out = tmp / "run"
    execute(RunRequest(config=BacktestConfig.model_validate(raw), config_file=None, argv=[],
                       out=out, runs_dir=tmp, write_report=False))
    return out


def _summary(run: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((run / "summary.json").read_text())
    return summary


def _equity(run: Path) -> tuple[np.ndarray, np.ndarray]:
    table = pq.read_table(run / "equity.parquet")
    ts = np.asarray(table.column("ts").cast(pa.int64()).to_numpy(), dtype=np.int64)
    equity = np.array([float(v) for v in table.column("equity").to_pylist()])
    return ts, equity


def _returns(equity: np.ndarray, initial: float) -> np.ndarray:
    previous = np.concatenate(([initial], equity[:-1]))
    return np.asarray(equity / previous - 1.0)


def _close(actual: float | None, expected: float) -> None:
    assert actual is not None
    assert actual == pytest.approx(expected, rel=REL, abs=1e-12)


def _check_returns_stats(stats: dict[str, Any], returns: np.ndarray, ppy: float) -> None:
    _close(stats["sharpe"], empyrical.sharpe_ratio(returns, annualization=ppy))
    _close(stats["sortino"], empyrical.sortino_ratio(returns, annualization=ppy))
    _close(stats["volatility_ann"], empyrical.annual_volatility(returns, annualization=ppy))
    _close(stats["max_drawdown"], -empyrical.max_drawdown(returns))
    _close(stats["cagr"], empyrical.annual_return(returns, annualization=ppy))
    _close(stats["calmar"], empyrical.calmar_ratio(returns, annualization=ppy))
    _close(stats["total_return"], float(np.prod(1.0 + returns) - 1.0))


@pytest.mark.parametrize(("data", "strategy", "params"), CASES,
                         ids=[c[0] for c in CASES])
def test_returns_statistics_equal_empyrical(tmp_path: Path, request: pytest.FixtureRequest,
                                            data: str, strategy: str,
                                            params: dict[str, Any]) -> None:
    snapshot: Path = request.getfixturevalue(data)
    run = _run(tmp_path, snapshot, strategy, params)
    summary = _summary(run)
    stats, bench = summary["stats"], summary["benchmark"]
    assert list(stats) == list(bench) == [
        "total_return", "cagr", "volatility_ann", "sharpe", "sortino", "max_drawdown",
        "max_drawdown_duration_s", "calmar", "trades", "win_rate", "profit_factor",
        "expectancy", "avg_win", "avg_loss", "exposure", "turnover", "fees",
        "periods_per_year", "denials", "risk_state_changes"]
    assert stats["trades"] > 5, "the strategy must trade for the check to mean anything"
    ppy = stats["periods_per_year"]
    initial = float(summary["initial_equity"])
    ts, equity = _equity(run)
    _check_returns_stats(stats, _returns(equity, initial), ppy)
    # Buy and hold, rebuilt here from the snapshot's closes at the equity points' times.
    table = pq.read_table(snapshot, columns=["ts", "close"])
    bar_ts = np.asarray(table.column("ts").cast(pa.int64()).to_numpy(), dtype=np.int64)
    close = table.column("close").to_numpy()
    at = np.searchsorted(bar_ts, ts, side="right") - 1
    held = initial * close[at] / close[0]
    _check_returns_stats(bench, _returns(held, initial), ppy)
    assert bench["exposure"] == pytest.approx(1.0)
    assert bench["trades"] == 1
    # The longest drawdown, counted point by point.
    assert stats["max_drawdown_duration_s"] == _longest_drawdown_s(ts, equity, initial)
    assert bench["max_drawdown_duration_s"] == pytest.approx(
        _longest_drawdown_s(ts, held, initial), abs=1)


def _longest_drawdown_s(ts: np.ndarray, equity: np.ndarray, initial: float) -> float:
    """The longest span from a peak to the next point at or above it (or to the end)."""
    peak, peak_ts, longest, under = initial, int(ts[0]), 0, False
    for t, value in zip(ts.tolist(), equity.tolist(), strict=True):
        if value >= peak:
            if under:
                longest = max(longest, t - peak_ts)
            peak, peak_ts, under = value, t, False
        else:
            under = True
            longest = max(longest, t - peak_ts)
    return longest / 1e9


def test_periods_per_year_follow_the_data(tmp_path: Path, msft_daily: Path, spy_minute: Path,
                                          btc_hourly: Path) -> None:
    expected = {msft_daily: 252.0, btc_hourly: 24 * 365.25}
    for snapshot in (msft_daily, spy_minute, btc_hourly):
        run = _run(tmp_path / snapshot.stem, snapshot, "sma_cross", {})
        summary = _summary(run)
        ppy = summary["stats"]["periods_per_year"]
        assert summary["annualisation"]["source"] == "data"
        if snapshot in expected:
            assert ppy == expected[snapshot], snapshot.name
        else:  # session data: the median bars of a trading day, 252 days
            ts, _ = _equity(run)
            _, per_day = np.unique(ts // 86_400_000_000_000, return_counts=True)
            assert ppy == float(np.median(per_day)) * 252
            assert 90_000 < ppy < 250_000  # nowhere near the calendar's 525,600 minutes
    # The config key overrides the rule, and says so.
    run = _run(tmp_path / "override", msft_daily, "sma_cross", {},
               data={"snapshot": str(msft_daily), "periods_per_year": 260})
    summary = _summary(run)
    assert summary["stats"]["periods_per_year"] == 260
    assert summary["annualisation"]["source"] == "config"


# --- trade statistics against a plain reference from fills.parquet ---------------------------

def _reference_trades(fills: pa.Table) -> list[dict[str, Any]]:
    """Flat-to-flat round trips with Decimal arithmetic; a reversal's money is shared out in
    proportion to quantity, exactly (no rounding), so PnLs may differ from the run's by less
    than one cash unit per reversal."""
    trips: list[dict[str, Any]] = []
    open_trip: dict[str, dict[str, Any]] = {}
    position: dict[str, Decimal] = {}
    for row in fills.to_pylist():
        symbol, qty = row["symbol"], Decimal(row["qty"])
        sign = 1 if row["side"] == "buy" else -1
        notional, fee = Decimal(row["notional"]), Decimal(row["fee"])
        held = position.get(symbol, Decimal(0))
        if held and (held > 0) != (sign > 0):
            closing = min(qty, abs(held))
            share = closing / qty
            trip = open_trip[symbol]
            trip["cash"] -= sign * notional * share
            trip["fees"] += fee * share
            held += sign * closing
            if held == 0:
                trips.append(open_trip.pop(symbol))
            qty -= closing
            notional -= notional * share
            fee -= fee * share
        if qty:
            trip = open_trip.setdefault(symbol, {"cash": Decimal(0), "fees": Decimal(0),
                                                 "entry": notional * 0})
            trip["cash"] -= sign * notional
            trip["fees"] += fee
            trip["entry"] += notional
            held += sign * qty
        position[symbol] = held
    for trip in trips:
        trip["pnl"] = trip["cash"] - trip["fees"]
    return trips


@pytest.mark.parametrize(("data", "strategy", "params"), CASES[1:], ids=[c[0] for c in CASES[1:]])
def test_trade_statistics_equal_a_reference_from_the_fills(
        tmp_path: Path, request: pytest.FixtureRequest, data: str, strategy: str,
        params: dict[str, Any]) -> None:
    snapshot: Path = request.getfixturevalue(data)
    run = _run(tmp_path, snapshot, strategy, params)
    summary = _summary(run)
    stats = summary["stats"]
    fills = pq.read_table(run / "fills.parquet")
    reference = _reference_trades(fills)
    pnls = [t["pnl"] for t in reference]
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    unit = Decimal("1e-8")  # the default cash increment
    assert stats["trades"] == len(reference) > 5
    assert stats["win_rate"] == pytest.approx(len(wins) / len(pnls), rel=REL)
    assert stats["profit_factor"] == pytest.approx(float(sum(wins) / -sum(losses)), rel=1e-7)
    assert abs(Decimal(stats["expectancy"]) - sum(pnls) / len(pnls)) <= unit
    assert abs(Decimal(stats["avg_win"]) - sum(wins) / len(wins)) <= unit
    assert abs(Decimal(stats["avg_loss"]) - sum(losses) / len(losses)) <= unit
    assert Decimal(stats["fees"]) == sum(Decimal(f) for f in fills.column("fee").to_pylist())
    # turnover: traded notional over mean equity; exposure: mean gross position / equity.
    ts, equity = _equity(run)
    traded = sum(float(n) for n in fills.column("notional").to_pylist())
    assert stats["turnover"] == pytest.approx(traded / equity.mean(), rel=REL)
    table = pq.read_table(snapshot, columns=["ts", "close"])
    bar_ts = np.asarray(table.column("ts").cast(pa.int64()).to_numpy(), dtype=np.int64)
    close = table.column("close").to_numpy()
    fill_ts = np.asarray(fills.column("ts").cast(pa.int64()).to_numpy(), dtype=np.int64)
    signed = np.array([float(q) * (1 if s == "buy" else -1) for q, s in
                       zip(fills.column("qty").to_pylist(), fills.column("side").to_pylist(),
                           strict=True)])
    held = np.cumsum(signed)
    gross = []
    for t in ts.tolist():
        k = int(np.searchsorted(fill_ts, t, side="right")) - 1
        position = held[k] if k >= 0 else 0.0
        price = close[int(np.searchsorted(bar_ts, t, side="right")) - 1]
        gross.append(abs(position) * price)
    assert stats["exposure"] == pytest.approx(float(np.mean(np.array(gross) / equity)),
                                              rel=1e-6)
    # trades.parquet: the trips, with exact money adding up to the change in equity.
    trades = pq.read_table(run / "trades.parquet")
    assert pa.types.is_decimal(trades.schema.field("pnl").type)
    assert pa.types.is_decimal(trades.schema.field("entry_price").type)
    total = sum(trades.column("pnl").to_pylist(), Decimal(0))
    assert total == Decimal(summary["final_equity"]) - Decimal(summary["initial_equity"])
    closed = [p for p, o in zip(trades.column("pnl").to_pylist(),
                                trades.column("open").to_pylist(), strict=True) if not o]
    for mine, theirs in zip(closed, pnls, strict=True):
        assert abs(mine - theirs) <= unit
    assert min(trades.column("bars_held").to_pylist()) >= 0


def test_results_do_not_depend_on_the_step(tmp_path: Path, btc_hourly: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine steps 4,096 bars at a time for a smooth progress bar; whole chunks give the
    same fills, orders, equity and events."""
    import weltklassebot.runs.backtest as backtest

    ticks: list[int] = []

    def factory(total: int) -> Any:
        assert total == 20111
        return ticks.append

    config = BacktestConfig.model_validate({"data": {"snapshot": str(btc_hourly)}})
    small = execute(RunRequest(config=config, config_file=None, argv=[], out=tmp_path / "a",
                               runs_dir=tmp_path, write_report=False), progress_factory=factory)
    assert sum(ticks) == 20111
    assert len(ticks) >= 5  # several updates, not one jump at the end
    monkeypatch.setattr(backtest, "STEP_BARS", 1 << 30)
    whole = execute(RunRequest(config=config, config_file=None, argv=[], out=tmp_path / "b",
                               runs_dir=tmp_path, write_report=False))
    assert small.summary["equity_hash"] == whole.summary["equity_hash"]
    for name in ("fills.parquet", "orders.parquet", "equity.parquet", "trades.parquet"):
        assert pq.read_table(small.run_dir / name).equals(pq.read_table(whole.run_dir / name))
    assert ((small.run_dir / "events.jsonl").read_bytes()
            == (whole.run_dir / "events.jsonl").read_bytes())
    assert small.summary["stats"] == whole.summary["stats"]
    assert math.isfinite(small.summary["stats"]["sharpe"])
