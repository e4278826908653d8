"""``walkforward``: rolling in-sample optimisation and out-of-sample evaluation."""

from __future__ import annotations

from typing import Any

import click

from weltklassebot.cli.sweep import build_request, run_and_print, shared_options


@click.command("walkforward")
@click.option("--grid", "grids", multiple=True, metavar="NAME=VALUES",
              help="A parameter optimised in-sample: fast=5:50:5, slow=20,50,100; repeatable.")
@click.option("--train", required=True, metavar="PERIOD",
              help="In-sample period: 2y, 6m (months), 3w, 10d, 12h.")
@click.option("--test", required=True, metavar="PERIOD", help="Out-of-sample period.")
@click.option("--step", default=None, metavar="PERIOD",
              help="How far each window moves (default: --test; not shorter than --test).")
@click.option("--optimise", default="sharpe", show_default=True, metavar="STAT",
              help="The statistic the in-sample cells are ranked by (docs/statistics.md).")
@click.option("--warmup", type=click.IntRange(min=0), default=0, show_default=True,
              metavar="N", help="Bars before each train and test segment fed to the strategy "
                                "without trading (at least the longest lookback).")
@shared_options
def command(grids: tuple[str, ...], train: str, test: str, step: str | None, optimise: str,
            warmup: int, **options: Any) -> None:
    """Walk forward: optimise the grid in each train window, run the winner on the next test
    window, and chain the test segments into one out-of-sample curve.

    Every cell is `backtest --start --end --warmup` of its segment. Writes results.parquet
    (a row per train and test cell), walkforward.parquet (the stitched curves), sweep.json
    (windows, winners, in-sample vs out-of-sample gap) and report.html.
    """
    from weltklassebot.sweep.walkforward import make_spec

    spec = make_spec(train, test, step, optimise, warmup)
    as_json = options.pop("as_json")
    run_and_print(build_request("walkforward", grids=grids, walkforward=spec, **options),
                  as_json)
