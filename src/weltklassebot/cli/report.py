"""``report``: write a run directory's HTML report (self-contained, works offline)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from weltklassebot.cli.options import json_option, print_json


@click.command("report")
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="HTML file to write (default: RUN_DIR/report.html).")
@json_option
def command(run_dir: Path, out: Path | None, as_json: bool) -> None:
    """Write the report of RUN_DIR: equity with the buy-and-hold benchmark, drawdown, price
    with entries and exits, monthly returns, rolling Sharpe, statistics, trades, risk events
    and the run's identity, in one HTML file that needs no network.

    The record is checked first (as replay checks it); a damaged record is refused with exit 2.
    The price chart needs the run's snapshot, unchanged, where the manifest says.
    """
    from weltklassebot.runs.report import rebuild_report

    written = rebuild_report(run_dir, out)
    if as_json:
        print_json({"report": str(written.path), "bytes": written.bytes,
                    "price_chart": written.price_chart, "note": written.note})
        return
    if written.note:
        sys.stderr.write(f"note: {written.note}.\n")
    sys.stdout.write(f"{written.path}\n")
