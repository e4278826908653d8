"""Cells, their keys and results, and the sweep hash.

A cell is one backtest: a parameter set, a seed, a snapshot and (walk-forward) a time window.
Its key is a digest of exactly that, so a resumed sweep finds its finished cells whatever order
they ran in; its row is what ``results.parquet`` holds for it. The sweep hash is the SHA-256 of
the rows in a canonical order (``row_order``), each written as canonical JSON: it is the same on
one worker, several or a cluster, and in any order.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from weltklassebot.runs.results import STATS_KEYS
from weltklassebot.runs.window import TimeWindow

OK, FAILED = "ok", "failed"
INT_STATS = frozenset({"max_drawdown_duration_s", "trades", "denials", "risk_state_changes"})
MONEY_STATS = frozenset({"expectancy", "avg_win", "avg_loss", "fees"})
FLOAT_STATS = tuple(k for k in STATS_KEYS if k not in INT_STATS and k not in MONEY_STATS)
BASE_COLUMNS = ("seed", "snapshot_sha256", "equity_hash", *STATS_KEYS, "status", "error")
WINDOW_COLUMNS = ("window", "phase", "start", "end", "warmup")
RESERVED = frozenset(BASE_COLUMNS) | frozenset(WINDOW_COLUMNS)


@dataclass(frozen=True)
class Cell:
    """One backtest of the sweep. ``params`` are texts, as ``--param`` takes them."""

    index: int
    params: tuple[tuple[str, str], ...]
    seed: int
    snapshot: int  # index into the sweep's snapshots
    window: TimeWindow | None = None
    tags: tuple[tuple[str, Any], ...] = ()  # walk-forward: window number and phase
    want_curve: bool = False  # return the equity curve (walk-forward out-of-sample cells)

    def key(self, snapshot_sha256: str) -> str:
        identity = {"params": [list(p) for p in self.params], "seed": self.seed,
                    "snapshot_sha256": snapshot_sha256,
                    "window": None if self.window is None else self.window.describe(),
                    "tags": [list(t) for t in self.tags]}
        return hashlib.sha256(canonical(identity).encode()).hexdigest()[:32]


@dataclass
class CellResult:
    """What a worker hands back for a cell (the journal keeps it)."""

    status: str
    equity_hash: str | None = None
    stats: dict[str, Any] | None = None
    error: str | None = None
    path: str = "engine"  # or "fast"
    bars: int = 0  # bars the cell stepped through (warm-up included)
    wall_s: float = 0.0
    curve: tuple[list[int], list[float]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        return {"status": self.status, "equity_hash": self.equity_hash, "stats": self.stats,
                "error": self.error, "path": self.path, "bars": self.bars,
                "wall_s": round(self.wall_s, 6)}

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> CellResult:
        return cls(str(data["status"]), data.get("equity_hash"), data.get("stats"),
                   data.get("error"), str(data.get("path") or "engine"),
                   int(data.get("bars") or 0), float(data.get("wall_s") or 0.0))


def canonical(value: Any) -> str:
    """JSON with sorted keys, no spaces and no NaN: one text per value."""
    return json.dumps(_finite(value), sort_keys=True, separators=(",", ":"), allow_nan=False,
                      ensure_ascii=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def row_order(row: dict[str, Any], param_names: list[str]) -> tuple[Any, ...]:
    """The canonical order of rows: snapshot, then each parameter (names sorted, values in
    their type's order), the seed, then the walk-forward window and phase."""
    params = tuple(_sortable(row.get(name)) for name in sorted(param_names))
    return (str(row["snapshot_sha256"]), params, int(row["seed"]),
            _sortable(row.get("window")), _sortable(row.get("phase")))


def _sortable(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (1, value)
    return (2, str(value))


def sweep_hash(rows: list[dict[str, Any]]) -> str:
    """SHA-256 over the rows (already in canonical order), one canonical JSON line each."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(canonical(row).encode())
        digest.update(b"\n")
    return digest.hexdigest()
