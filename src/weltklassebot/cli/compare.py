"""``compare``: one HTML page comparing runs (equity curves, statistics, equity hashes)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from weltklassebot.cli.options import json_option, print_json


@click.command("compare")
@click.argument("run_dirs", metavar="RUN_A RUN_B [...]", nargs=-1, required=True,
                type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="HTML file to write (default: ./compare-<UTC time>.html).")
@json_option
def command(run_dirs: tuple[Path, ...], out: Path | None, as_json: bool) -> None:
    """Compare two or more run directories on one page: equity curves overlaid (as cumulative
    return), drawdowns, statistics side by side, and whether the equity hashes match."""
    from weltklassebot.core.timeutil import ns_to_basic
    from weltklassebot.errors import UsageError
    from weltklassebot.runs.report import write_compare

    if len(run_dirs) < 2:
        raise UsageError("compare needs at least two run directories: "
                         "python -m cli compare RUN_A RUN_B [...].")
    target = out or Path(f"compare-{ns_to_basic(time.time_ns()).split('.')[0]}Z.html")
    written = write_compare(list(run_dirs), target)
    if as_json:
        print_json({"compare": str(written.path), "bytes": written.bytes,
                    "runs": [str(p) for p in run_dirs]})
        return
    sys.stdout.write(f"{written.path}\n")
