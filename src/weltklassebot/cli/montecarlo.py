"""``montecarlo``: one parameter set over many seeds of the stochastic fill models."""

from __future__ import annotations

from typing import Any

import click

from weltklassebot.cli.sweep import build_request, run_and_print, shared_options


@click.command("montecarlo")
@shared_options
def command(**options: Any) -> None:
    """Run one parameter set (--param K=V) over many seeds (--seeds 1..500) and report the
    spread of every statistic (quantiles 5, 25, 50, 75 and 95 %).

    The seed drives the stochastic fill models ([execution.slippage] model = "stochastic",
    [execution.latency] jitter); without one every seed gives the same run, and the output
    says so. Writes results.parquet, sweep.json and report.html as a sweep does.
    """
    as_json = options.pop("as_json")
    run_and_print(build_request("montecarlo", grids=(), **options), as_json)
