"""A backtest on real data with a tight drawdown cap halts, and says where and why."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]
MSFT = REPO / "tests" / "data" / "msft_1d_1986-2017.parquet"


def _backtest(tmp_path: Path, name: str, *args: str,
              strategy: str = "donchian_breakout") -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "cli", "backtest", "--data-snapshot", str(MSFT), "--json",
         "--out", str(tmp_path / name), "--strategy", strategy, "--param", "qty=1000", *args],
        cwd=tmp_path, capture_output=True, text=True, check=False, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_tight_drawdown_cap_halts_and_reports_where_and_why(tmp_path: Path) -> None:
    free = _backtest(tmp_path, "free")
    assert free["risk_state"] == "ACTIVE"
    assert free["risk_transitions"] == []
    capped = _backtest(tmp_path, "capped", "--drawdown-cap", "0.001")
    assert capped["risk_state"] == "HALTED"
    transitions = capped["risk_transitions"]
    assert isinstance(transitions, list)
    assert len(transitions) == 1
    halt = transitions[0]
    assert (halt["from"], halt["to"], halt["reason"]) == ("ACTIVE", "HALTED", "drawdown_cap")
    assert "reached the cap 0.1 %" in halt["detail"]
    # After the halt only reducing orders pass: risk-increasing ones are denied as `halted`.
    denials = capped["denials"]
    assert isinstance(denials, dict)
    assert denials.get("halted", 0) > 0
    manifest = json.loads((tmp_path / "capped" / "manifest.json").read_text())
    assert manifest["risk"]["transitions"] == transitions
    assert manifest["config"]["risk"]["drawdown_cap"] == "0.001"
    # The halt happened exactly at the first equity point whose drawdown reached the cap,
    # compared exactly: peak - equity >= cap x peak, the peak starting at initial cash.
    equity = pq.read_table(tmp_path / "capped" / "equity.parquet").to_pylist()
    peak = Decimal(1_000_000)
    breach_ts = None
    for row in equity:
        peak = max(peak, row["equity"])
        if peak - row["equity"] >= Decimal("0.001") * peak:
            breach_ts = row["ts"]
            break
    assert breach_ts is not None
    # Risk runs on the event clock: the breach is known at that bar's close event (+1 day).
    assert (int(breach_ts.timestamp()) + 86_400) * 1_000_000_000 == halt["ts_ns"]
    # No new position is opened after the halt.
    fills = pq.read_table(tmp_path / "capped" / "fills.parquet").to_pylist()
    after = [f for f in fills if int(f["ts"].timestamp() * 1e9) > int(halt["ts_ns"])]
    position = 0
    for fill in fills:
        if int(fill["ts"].timestamp() * 1e9) <= int(halt["ts_ns"]):
            position += int(fill["qty"]) if fill["side"] == "buy" else -int(fill["qty"])
    for fill in after:
        step = int(fill["qty"]) if fill["side"] == "buy" else -int(fill["qty"])
        assert abs(position + step) <= abs(position)
        position += step


def test_flatten_on_halt_closes_the_position(tmp_path: Path) -> None:
    config = tmp_path / "risk.toml"
    config.write_text('[risk]\ndrawdown_cap = "0.001"\nflatten_on_halt = true\n')
    result = _backtest(tmp_path, "flat", "--config", str(config), strategy="sma_cross")
    assert result["risk_state"] == "HALTED"
    orders = pq.read_table(tmp_path / "flat" / "orders.parquet").to_pylist()
    flatten = [o for o in orders if o["tag"] == "risk_flatten"]
    assert flatten, "entering HALTED with flatten_on_halt submits reducing market orders"
    assert all(o["status"] == "filled" for o in flatten)
    halt_ns = result["risk_transitions"][0]["ts_ns"]  # type: ignore[index]
    fills = pq.read_table(tmp_path / "flat" / "fills.parquet").to_pylist()
    position = sum(int(f["qty"]) * (1 if f["side"] == "buy" else -1) for f in fills)
    assert position == 0, "flattened, and nothing re-opened after the halt"
    assert all(o["ts_submitted"].timestamp() * 1e9 >= halt_ns for o in flatten)
