"""Shared fixtures. Builders live in ``tests/support`` (importable as ``support``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.cli import REPO

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def msft_daily() -> Path:
    return DATA / "msft_1d_1986-2017.parquet"


@pytest.fixture(scope="session")
def spy_minute() -> Path:
    return DATA / "ninjatrader_spy_1m_2011-03.parquet"


@pytest.fixture(scope="session")
def btc_hourly() -> Path:
    return DATA / "coinbase_btcusd_1h_2017-07_2019-10.parquet"


@pytest.fixture(scope="session")
def mtgox_trades() -> Path:
    return DATA / "mtgox_btcusd_trades_2013-01-01.parquet"
