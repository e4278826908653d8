"""The sweep report in a real headless Chromium, opened from a file URL: no console error,
no failed or outside request, the heatmap, the distribution over seeds, the top cells and the
walk-forward and Monte Carlo parts drawn with their data. Needs Debian's ``chromium``: with
CI=true its absence fails the test, elsewhere it skips."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.chromium import Browser, open_browser
from weltklassebot.sweep.walkforward import make_spec

from .helpers import STOCHASTIC, sweep

CHECK = """
(() => Array.from(document.querySelectorAll('.chart')).map(div => ({
  id: div.id,
  width: div.getBoundingClientRect().width,
  heat: div.querySelectorAll('.heatmaplayer image').length,
  bars: div.querySelectorAll('.barlayer path').length,
  lines: Array.from(div.querySelectorAll('.scatterlayer path.js-line'))
    .filter(p => (p.getAttribute('d') || '').length > 10).length,
  points: (div.data || []).reduce((n, t) =>
    n + ((t.x && t.x.length) || 0) + ((t.z && t.z.length) || 0), 0),
})))()
"""


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    yield from open_browser()


def open_page(browser: Browser, page: Path, shot: Path) -> dict[str, dict[str, Any]]:
    browser.open(page)
    drawn = {c["id"]: c for c in browser.evaluate(CHECK)}
    print(f"\nscreenshot of {page}: {browser.screenshot(shot)}")
    assert browser.log().problems() == []
    for chart in drawn.values():
        assert chart["width"] > 300, chart
        assert chart["points"] > 0, chart
    return drawn


def test_sweep_report(chromium: Browser, tmp_path: Path,
                      small_snapshots: tuple[Path, Path]) -> None:
    sweep(tmp_path / "s", small_snapshots[:1], ("fast=5,10,40", "slow=30,60"), seeds="1..3",
          base=STOCHASTIC, workers=2)
    drawn = open_page(chromium, tmp_path / "s" / "report.html", tmp_path / "sweep.png")
    assert set(drawn) == {"chart-heatmap", "chart-seeds"}
    assert drawn["chart-heatmap"]["heat"] == 1
    assert drawn["chart-seeds"]["bars"] > 0
    assert chromium.evaluate("document.querySelectorAll('#top-cells tbody tr').length") == 15
    failed = chromium.evaluate("document.querySelector('#failed-cells').innerText")
    assert "fast (40) must be smaller than slow (30)" in failed
    # Another statistic redraws the heatmap and the table with it.
    title = """document.getElementById('chart-heatmap').data[0].colorbar.title.text"""
    assert chromium.evaluate(title) == "sharpe"
    chromium.evaluate("""(() => { const s = document.querySelector('select');
        s.value = 'max_drawdown'; s.dispatchEvent(new Event('change')); })()""")
    assert chromium.evaluate(title) == "max_drawdown"
    assert chromium.log().problems() == []


def test_walkforward_and_montecarlo_reports(chromium: Browser, tmp_path: Path,
                                            small_snapshots: tuple[Path, Path]) -> None:
    spec = make_spec("20d", "10d", None, "total_return", 30)
    sweep(tmp_path / "wf", small_snapshots[:1], ("fast=5,10", "slow=30"), seeds="1..2",
          base=STOCHASTIC, kind="walkforward", walkforward=spec, workers=2)
    drawn = open_page(chromium, tmp_path / "wf" / "report.html", tmp_path / "wf.png")
    assert drawn["chart-stitched"]["lines"] == 2
    assert chromium.evaluate("document.querySelectorAll('#wf-windows tbody tr').length") == 5
    sweep(tmp_path / "mc", small_snapshots[:1], seeds="1..6", base=STOCHASTIC,
          kind="montecarlo", params=("fast=5", "slow=30"), workers=1)
    drawn = open_page(chromium, tmp_path / "mc" / "report.html", tmp_path / "mc.png")
    assert drawn["chart-seeds"]["bars"] > 0
    rows = chromium.evaluate("document.querySelectorAll('#mc-quantiles-0 tbody tr').length")
    assert rows == 20
