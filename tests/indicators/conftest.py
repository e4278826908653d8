"""The real bars of tests/data in integer ticks, loaded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from .real_data import Bars, read_bars


@pytest.fixture(scope="session")
def real_bars(msft_daily: Path, spy_minute: Path, btc_hourly: Path) -> dict[str, Bars]:
    """MSFT daily (1e-5 ticks: its adjusted prices have five decimals), SPY minutes and BTC
    hours (cents)."""
    return {"msft_daily": read_bars("msft_daily", msft_daily, 5),
            "spy_minute": read_bars("spy_minute", spy_minute, 2),
            "btc_hourly": read_bars("btc_hourly", btc_hourly, 2)}
