"""What every run directory gets once its fills and equity are written: ``trades.parquet``, the
``stats`` and ``benchmark`` objects of ``summary.json`` (backtest and live service alike).

``exposure`` is the mean, over equity points, of the gross value of the open positions (each
at its symbol's last close) over equity: 1.0 is fully invested, 0.02 is 2 % of equity at
work. ``turnover`` is the traded notional of every fill over the mean equity of the run
(2.0: the mean equity bought and sold once). ``expectancy`` is the mean PnL per closed trade,
fees included. docs/statistics.md has every definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from weltklassebot.model.instrument import Instrument, MoneySpec
from weltklassebot.runs.benchmark import (
    MarketTape,
    benchmark_exposure,
    benchmark_trades,
    buy_and_hold,
)
from weltklassebot.runs.record import decimal_units
from weltklassebot.runs.stats import (
    Annualisation,
    EquityStats,
    infer_periods_per_year,
    number,
    return_stats,
)
from weltklassebot.runs.trades import (
    TRADES,
    FillRows,
    exact_ints,
    exact_sum,
    pnl_stats,
    read_fills,
    round_trips,
    trade_stats,
    write_trades,
)

STATS_KEYS = ("total_return", "cagr", "volatility_ann", "sharpe", "sortino", "max_drawdown",
              "max_drawdown_duration_s", "calmar", "trades", "win_rate", "profit_factor",
              "expectancy", "avg_win", "avg_loss", "exposure", "turnover", "fees",
              "periods_per_year", "denials", "risk_state_changes")


@dataclass(frozen=True)
class RunAnalysis:
    stats: dict[str, Any]
    benchmark: dict[str, Any]
    annualisation: Annualisation


# The last equity.parquet read: a run's statistics, its report and a sweep cell's curve read
# the same file one after the other. Recognised by path, device, inode, size and modification
# time; its arrays are read-only, so no caller can change what the next one gets.
_last_equity: tuple[tuple[Any, ...], np.ndarray, np.ndarray, int] | None = None


def equity_units(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """``equity.parquet``'s timestamps (int64 ns), equity in exact units of ``10**-scale``
    (int64, or Python ints where a value does not fit) and that scale."""
    global _last_equity
    key = _file_key(path)
    if _last_equity is not None and _last_equity[0] == key:
        return _last_equity[1:]
    table = pq.read_table(path, columns=["ts", "equity"]).combine_chunks()
    if table.num_rows == 0:
        ts, units, scale = np.zeros(0, np.int64), np.zeros(0, np.int64), 0
    else:
        ts = np.asarray(table.column("ts").cast("int64").to_numpy(), dtype=np.int64)
        units, scale = decimal_units(table.column("equity").chunk(0), path.name, "equity")
    ts.setflags(write=False)
    units.setflags(write=False)
    _last_equity = (key, ts, units, scale)
    return ts, units, scale


def remember_equity(path: Path, ts: np.ndarray, units: np.ndarray, scale: int) -> None:
    """Take ``ts`` (int64 ns) and ``units`` (int64) as what ``equity_units(path)`` would read:
    the points a writer has just written to ``path`` and closed, so the run's statistics and
    report do not read and decode the file again. Other units (Python ints) are left to the
    file."""
    global _last_equity
    if not ts.size or ts.dtype != np.int64 or units.dtype != np.int64:
        return
    ts.setflags(write=False)
    units.setflags(write=False)
    _last_equity = (_file_key(path), ts, units, scale)


def _file_key(path: Path) -> tuple[Any, ...]:
    stat = path.stat()
    return (str(path.resolve()), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def equity_points(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``equity.parquet``'s timestamps (int64 ns) and equity (float64, money units)."""
    ts, units, _scale = equity_units(path)
    return ts, units.astype(np.float64)


def analyse_run(run_dir: Path, *, instruments: dict[str, Instrument], money: MoneySpec,
                initial_cash: int, equity: EquityStats, tape: MarketTape, base_interval: int,
                periods_per_year: float | None, fees_paid: int,
                risk: dict[str, Any]) -> RunAnalysis:
    """Write ``trades.parquet`` into ``run_dir`` and compute the strategy's and the benchmark's
    statistics from the run's equity curve, fills and bars."""
    fills = read_fills(run_dir / "fills.parquet", instruments, money)
    trips = round_trips(fills, instruments, tape)
    write_trades(run_dir / TRADES, trips, instruments, money)
    ts, values = equity_points(run_dir / "equity.parquet")
    annual = (Annualisation(float(periods_per_year), "config", "[data] periods_per_year")
              if periods_per_year is not None else infer_periods_per_year(equity, base_interval))
    ppy = annual.periods_per_year
    denials = sum(int(v) for v in risk.get("denials", {}).values())
    changes = len(risk.get("transitions", []))
    mean_equity = equity.mean_equity()
    stats = {
        **return_stats(equity, ppy),
        **trade_stats(trips, money),
        "exposure": number(exposure(fills, instruments, tape, ts, values)),
        "turnover": number(float(exact_sum(fills.notional)) / mean_equity) if mean_equity > 0
        else None,
        "fees": money.text(fees_paid),
        "periods_per_year": ppy,
        "denials": denials,
        "risk_state_changes": changes,
    }
    curve = buy_and_hold(tape, ts, float(initial_cash))
    held = EquityStats(float(initial_cash))
    held.update(ts, curve)
    bought = float(initial_cash) if any(s.ts.size for s in tape.symbols.values()) else 0.0
    benchmark = {
        **return_stats(held, ppy),
        **pnl_stats(benchmark_trades(tape, float(initial_cash)), money, exact=False),
        "exposure": number(benchmark_exposure(tape, ts, curve, float(initial_cash))),
        "turnover": number(bought / held.mean_equity()) if held.mean_equity() > 0 else None,
        "fees": money.text(0),
        "periods_per_year": ppy,
        "denials": 0,
        "risk_state_changes": 0,
    }
    return RunAnalysis({k: stats[k] for k in STATS_KEYS},
                       {k: benchmark[k] for k in STATS_KEYS}, annual)


def exposure(fills: FillRows, instruments: dict[str, Instrument], tape: MarketTape,
              ts: np.ndarray, equity: np.ndarray) -> float:
    """Mean of gross position value / equity over the equity points with positive equity."""
    if not len(fills) or not ts.size:
        return 0.0
    gross = np.zeros(ts.size, dtype=np.float64)
    fill_ts = np.asarray(fills.ts, dtype=np.int64)
    symbols = np.asarray(fills.symbol, dtype=object)
    # Each signed quantity is exact before it becomes the nearest double.
    signed = (np.asarray(fills.side, dtype=np.int64) * exact_ints(fills.qty)).astype(np.float64)
    in_order = _ordered(ts)
    for name, bars in tape.symbols.items():
        mask = symbols == name
        if not mask.any() or not bars.ts.size:
            continue
        held = np.cumsum(signed[mask]) * float(instruments[name].quantity_increment)
        position = _position_at(fill_ts[mask], held, ts, in_order)
        index, price = bars.close_at(ts)
        gross += np.where(index >= 0, np.abs(position) * np.nan_to_num(price), 0.0)
    # Money units per quote-currency unit: the equity column is in units of the cash scale.
    scale = 10.0 ** next(iter(instruments.values())).money.scale
    positive = equity > 0
    if not positive.any():
        return 0.0
    return float(np.mean(gross[positive] * scale / equity[positive]))


def _ordered(values: np.ndarray) -> bool:
    return bool((values[1:] >= values[:-1]).all())


def _position_at(fill_ts: np.ndarray, held: np.ndarray, ts: np.ndarray,
                 ts_in_order: bool) -> np.ndarray:
    """The position after the last fill at or before each point (0 before the first).

    With the points and the fills in time order, each held value covers a run of points:
    one ``repeat`` instead of a search per point."""
    if ts_in_order and _ordered(fill_ts):
        bounds = np.searchsorted(ts, fill_ts, side="left")  # first point at or after each fill
        runs = np.diff(np.concatenate(([0], bounds, [ts.size])))
        position: np.ndarray = np.repeat(np.concatenate(([0.0], held)), runs)
        return position
    at = np.searchsorted(fill_ts, ts, side="right") - 1
    return np.where(at >= 0, held[np.maximum(at, 0)], 0.0)
