"""Shared fixtures. Builders live in ``tests/support`` (importable as ``support``)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from support.cli import REPO

DATA = Path(__file__).resolve().parent / "data"


def pytest_configure(config: pytest.Config) -> None:
    """Let the commands the tests start take Ctrl-C as from a terminal, however the suite was
    started. A shell without job control starts a background command (``cmd &`` in a script)
    with SIGINT ignored, and every child inherits that through exec: Python then installs no
    KeyboardInterrupt handler, and a test that interrupts a command waits for an exit that
    never comes. A handler here is reset to the default action in every child at exec."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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
