"""Run an example strategy through the real CLI and read its run directory back.

Each test of ``tests/examples`` runs ``python -m cli backtest --strategy examples/NAME.py`` in a
subprocess, as a user would, on real data, and pins the result: the equity hash the manifest
records, the number of fills and the final equity.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from support.cli import REPO, run_cli

SAMPLE = REPO / "src" / "weltklassebot" / "sample" / "coinbase_btcusd_1h_2017-07_2019-10.parquet"
HOUR_NS = 3_600 * 10**9


@dataclass(frozen=True)
class Run:
    """What a run directory holds, as plain rows (``ts`` as integer ns)."""

    out: Path
    summary: dict[str, Any]
    manifest: dict[str, Any]
    fills: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    equity: list[tuple[int, Decimal]]

    @property
    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = self.manifest["strategy"]["params"]
        return params

    def orders_by_id(self) -> dict[int, dict[str, Any]]:
        return {o["order_id"]: o for o in self.orders}

    def fill_of(self) -> dict[int, dict[str, Any]]:
        """The (single) fill of each filled order, by order id."""
        fills: dict[int, dict[str, Any]] = {}
        for fill in self.fills:
            assert fill["order_id"] not in fills, "no partial fills without a volume cap"
            fills[fill["order_id"]] = fill
        return fills


def _rows(path: Path) -> list[dict[str, Any]]:
    table = pq.read_table(path)
    rows: list[dict[str, Any]] = table.to_pylist()
    for name in ("ts", "ts_submitted", "ts_closed"):
        if name in table.column_names:
            ns = table.column(name).cast(pa.int64()).to_pylist()
            for row, value in zip(rows, ns, strict=True):
                row[name] = value
    return rows


def backtest(out: Path, example: str, *args: str | Path,
             data: Path | None = SAMPLE) -> Run:
    """``python -m cli backtest --strategy examples/EXAMPLE.py`` on ``data``; fails on a
    non-zero exit or a traceback."""
    data_args: list[str | Path] = [] if data is None else ["--data-snapshot", data]
    proc = run_cli("backtest", "--strategy", f"examples/{example}.py", *data_args,
                   "--out", out, "--no-progress", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    equity = _rows(out / "equity.parquet")
    return Run(
        out=out,
        summary=json.loads((out / "summary.json").read_text()),
        manifest=json.loads((out / "manifest.json").read_text()),
        fills=_rows(out / "fills.parquet"),
        orders=_rows(out / "orders.parquet"),
        equity=[(row["ts"], row["equity"]) for row in equity],
    )


def assert_pinned(run: Run, *, equity_hash: str, fills: int, final_equity: str) -> None:
    """The run's equity hash (manifest), number of fills (fills.parquet) and final equity
    (summary) are the pinned ones. A change is either a regression or an intended change of
    the engine or the example: then re-pin with the figures this message gives."""
    got = (run.manifest["equity_hash"], len(run.fills), run.summary["final_equity"])
    assert run.manifest["equity_hash"] == run.summary["equity_hash"]
    assert run.manifest["counts"]["fills"] == run.summary["fills"] == len(run.fills)
    assert Decimal(run.summary["final_equity"]) == run.equity[-1][1]
    assert got == (equity_hash, fills, final_equity), (
        f"{run.manifest['strategy']['name']} on {run.manifest['snapshot']['path']}: got "
        f"equity_hash={got[0]!r}, fills={got[1]}, final_equity={got[2]!r}; pinned "
        f"{equity_hash!r}, {fills}, {final_equity!r}")


def positions_at_equity_points(run: Run) -> list[tuple[int, dict[str, Decimal]]]:
    """Each equity point's time and the non-zero positions it was valued with (the fills of
    a bar carry its ts and are in its equity point)."""
    held: dict[str, Decimal] = {}
    points: list[tuple[int, dict[str, Decimal]]] = []
    k = 0
    for ts, _equity in run.equity:
        while k < len(run.fills) and run.fills[k]["ts"] <= ts:
            fill = run.fills[k]
            signed = fill["qty"] if fill["side"] == "buy" else -fill["qty"]
            held[fill["symbol"]] = held.get(fill["symbol"], Decimal(0)) + signed
            k += 1
        points.append((ts, {s: q for s, q in held.items() if q != 0}))
    assert k == len(run.fills), "every fill falls on an equity point"
    return points


def equity_before(run: Run, ts: int) -> Decimal:
    """Equity at the last equity point before ``ts`` (the close a decision was taken at)."""
    previous = None
    for point, equity in run.equity:
        if point >= ts:
            break
        previous = equity
    assert previous is not None, f"no equity point before {ts}"
    return previous


def closes(path: Path = SAMPLE) -> dict[int, Decimal]:
    """A single-symbol snapshot's closes by bar start (ns), as the decimals the file holds."""
    table = pq.read_table(path, columns=["ts", "close"])
    ts = table.column("ts").cast(pa.int64()).to_pylist()
    return {t: Decimal(repr(c)) for t, c in zip(ts, table.column("close").to_pylist(),
                                                strict=True)}
