"""report.html and the comparison page in a real headless Chromium, opened from a file URL.

Fails on any console error, uncaught exception, failed request or request that leaves the file;
checks that every chart drew its data, that the trades table pages; keeps a full-page
screenshot of each page under the test's temporary directory (the path is printed). Needs
Debian's ``chromium``: with CI=true its absence fails the test, elsewhere it skips.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from support.chromium import CHART_CHECK, Browser, open_browser
from support.cli import run_cli
from support.live import sample_slice

REPORT_CHARTS = {"chart-equity", "chart-drawdown", "chart-price-0", "chart-monthly",
                 "chart-rolling-sharpe"}
COMPARE_CHARTS = {"chart-compare-equity", "chart-compare-drawdown"}


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    yield from open_browser()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two backtests on 6,000 hourly bars: sma_cross with a drawdown cap that halts it (risk
    events to show) and donchian_breakout."""
    tmp = tmp_path_factory.mktemp("runs")
    data = sample_slice(tmp / "btc.parquet", 6000, offset=9000)
    out = {}
    for name, args in (("capped", ("--drawdown-cap", "0.002")),
                       ("donchian", ("--strategy", "donchian_breakout", "--param", "entry=48",
                                     "--param", "exit=24"))):
        proc = run_cli("backtest", "--data-snapshot", data, "--out", tmp / name,
                       "--no-progress", *args)
        assert proc.returncode == 0, proc.stderr
        out[name] = tmp / name
    return out


def _check_page(browser: Browser, page: Path, charts: set[str], shot: Path) -> list[dict[str,
                                                                                       Any]]:
    browser.open(page)
    drawn = browser.evaluate(CHART_CHECK)
    path = browser.screenshot(shot)
    print(f"\nscreenshot of {page.name}: {path}")
    assert browser.log().problems() == []
    assert {c["id"] for c in drawn} == charts
    for chart in drawn:
        assert chart["width"] > 300, chart
        assert chart["height"] > 150, chart
        assert chart["points"] > 0, chart
        assert chart["lines"] + chart["heat"] + chart["markers"] > 0, chart
    assert path.stat().st_size > 50_000
    return list(drawn)


def test_report_renders_every_chart_offline(chromium: Browser, runs: dict[str, Path],
                                            tmp_path: Path) -> None:
    report = runs["capped"] / "report.html"
    drawn = {c["id"]: c for c in _check_page(chromium, report, REPORT_CHARTS,
                                              tmp_path / "report.png")}
    assert drawn["chart-equity"]["traces"] == 2  # the strategy and buy and hold
    assert drawn["chart-price-0"]["markers"] > 0  # entries and exits
    text = chromium.evaluate("document.body.innerText")
    for phrase in ("Buy & hold", "Sharpe", "HALTED", "Run identity", "Snapshot SHA-256",
                   "Equity hash", "Package version"):
        assert phrase in text, phrase
    summary = json.loads((runs["capped"] / "summary.json").read_text())
    assert summary["equity_hash"] in text
    assert chromium.log().problems() == []


def test_the_trades_table_pages(chromium: Browser, runs: dict[str, Path],
                                tmp_path: Path) -> None:
    report = runs["donchian"] / "report.html"
    _check_page(chromium, report, REPORT_CHARTS, tmp_path / "donchian.png")
    trades = json.loads((runs["donchian"] / "summary.json").read_text())["stats"]["trades"]
    assert trades > 25
    pager = ("Array.from(document.querySelectorAll('section.card'))"
             ".find(s => s.querySelector('h2').textContent === 'Trades')")
    info = f"{pager}.querySelector('.pager span').textContent"
    assert chromium.evaluate(info).startswith("Rows 1–25 of ")
    assert chromium.evaluate(f"{pager}.querySelectorAll('tbody tr').length") == 25
    chromium.evaluate(f"Array.from({pager}.querySelectorAll('.pager button'))"
                      ".find(b => b.textContent.startsWith('Next')).click()")
    assert chromium.evaluate(info).startswith("Rows 26–50 of ")
    chromium.evaluate(f"Array.from({pager}.querySelectorAll('.pager button'))"
                      ".find(b => b.textContent.startsWith('Last')).click()")
    rows = pq.read_table(runs["donchian"] / "trades.parquet").num_rows  # an open one too
    assert chromium.evaluate(info).endswith(f" of {rows:,} · page {(rows + 24) // 25} of "
                                            f"{(rows + 24) // 25}")
    last_rows = chromium.evaluate(f"{pager}.querySelectorAll('tbody tr').length")
    assert last_rows == rows - 25 * ((rows - 1) // 25)
    assert chromium.log().problems() == []


def test_compare_page_renders_offline(chromium: Browser, runs: dict[str, Path],
                                      tmp_path: Path) -> None:
    page = tmp_path / "compare.html"
    proc = run_cli("compare", runs["capped"], runs["donchian"], "--out", page)
    assert proc.returncode == 0, proc.stderr
    _check_page(chromium, page, COMPARE_CHARTS, tmp_path / "compare.png")
    text = chromium.evaluate("document.body.innerText")
    assert "Equity hashes differ" in text
    assert "Statistics side by side" in text
    # The same run twice: the hashes match.
    twin = tmp_path / "twin"
    shutil.copytree(runs["capped"], twin)
    same = tmp_path / "same.html"
    assert run_cli("compare", runs["capped"], twin, "--out", same).returncode == 0
    chromium.open(same)
    assert "Equity hashes match" in chromium.evaluate("document.body.innerText")
    assert chromium.log().problems() == []
