"""Fixtures for the state-store tests."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs


@pytest.fixture(autouse=True)
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """Capture the store's structured log events instead of printing them."""
    with capture_logs() as captured:
        yield captured


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"
