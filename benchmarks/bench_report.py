"""Report size and speed on a long run: ``python benchmarks/bench_report.py [--bars N]
[--strategy NAME] [--no-browser]``.

Backtests N one-minute bars (default 1,000,000; the seeded random walk of ``_bars.py``) without
a report, then writes its report as ``python -m cli report`` does and prints: the time to write
it (checking the record, reading the bars again, downsampling, rendering), the time to build
the page alone, the file's size and how much of it is plotly.js, and, when headless Chromium
and the ``bench`` extra's websocket-client are installed, the time from opening the file to
every chart drawn. Figures, not pass/fail: the report of a 1,000,000-bar run must stay under
20 MB (docs/reports.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bars import write_bars

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--strategy", default="sma_cross")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()

    from weltklassebot.runs.report import (
        build_report,
        plotly_js,
        read_run,
        rebuild_report,
        tape_of_record,
    )

    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        root = Path(tmp)
        bars = write_bars(root / "bars.parquet", args.bars)
        run = root / "run"
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "cli", "backtest", "--data-snapshot", str(bars), "--out",
             str(run), "--no-progress", "--no-report", "--strategy", args.strategy],
            cwd=REPO, capture_output=True, text=True, check=False)
        if proc.returncode:
            sys.stderr.write(proc.stderr)
            return 1
        backtest_s = time.perf_counter() - started
        summary = json.loads((run / "summary.json").read_text())
        started = time.perf_counter()
        written = rebuild_report(run)
        report_s = time.perf_counter() - started
        summary, manifest = read_run(run)
        tape, _ = tape_of_record(manifest)
        started = time.perf_counter()
        build_report(run, summary, manifest, tape)
        page_s = time.perf_counter() - started
        size = written.path.stat().st_size
        library = len(plotly_js().encode())
        print(f"bars                 {args.bars:,} ({args.strategy}, "
              f"{summary['stats']['trades']:,} closed trades, {summary['fills']:,} fills)")
        print(f"backtest             {backtest_s:.2f} s (whole process, no report)")
        print(f"report written       {report_s:.2f} s (record checked, bars read again, page)")
        print(f"page built           {page_s:.2f} s (downsampling and rendering alone)")
        print(f"report size          {size / 1e6:.2f} MB ({library / 1e6:.2f} MB of it plotly.js,"
              f" limit 20 MB)")
        if not args.no_browser:
            print(f"opened in Chromium   {_open_time(written.path)}")
    return 0


def _open_time(page: Path) -> str:
    try:
        sys.path.insert(0, str(REPO))
        from tests.report.chromium import Browser, find_chromium
    except ImportError as exc:  # websocket-client: pip install the bench extra
        return f"not measured ({exc})"
    executable = find_chromium()
    if executable is None:
        return "not measured (no chromium on PATH)"
    browser = Browser(executable)
    try:
        seconds = browser.open(page)
        problems = browser.log().problems()
    finally:
        browser.close()
    return f"{seconds:.2f} s to every chart drawn" + (f" (problems: {problems})"
                                                       if problems else "")


if __name__ == "__main__":
    raise SystemExit(main())
