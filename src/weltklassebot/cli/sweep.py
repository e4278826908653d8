"""``sweep``: a grid of parameters x seeds x snapshots, each cell an ordinary backtest.

The options shared with ``walkforward`` and ``montecarlo`` are declared here once.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from weltklassebot.cli.options import ENV_RUNS_DIR, config_option, config_path, json_option

F = TypeVar("F", bound=Callable[..., Any])
TITLES = {"sweep": "Sweep", "walkforward": "Walk-forward", "montecarlo": "Monte Carlo"}


def shared_options(func: F) -> F:
    """Strategy, data, seeds, backend and output options of every sweep command."""
    options = [
        click.option("--strategy", default=None,
                     help="Built-in name, 'module:Class' or 'path/file.py[:Class]' "
                          "(default: the config's, else sma_cross)."),
        click.option("--param", "params", multiple=True, metavar="K=V",
                     help="A fixed strategy parameter (a column with one value); repeatable."),
        click.option("--seeds", default=None, metavar="A..B|LIST",
                     help="Seeds: 1..20 (both ends), 1,5,9, or one (default: the config's "
                          "seed, else 0)."),
        click.option("--data-snapshot", "snapshots", multiple=True,
                     type=click.Path(path_type=Path),
                     help="Bars snapshot (.parquet); repeatable: every cell runs on each "
                          "(default: the config's, else the bundled sample)."),
        config_option,
        click.option("--backend", type=click.Choice(["local", "ray"]), default="local",
                     show_default=True,
                     help="local: a process pool on this machine; ray: a Ray cluster."),
        click.option("--address", default=None, metavar="HOST:PORT",
                     help="The Ray cluster's head (--backend ray); without it a local Ray "
                          "is started."),
        click.option("--workers", type=click.IntRange(min=1), default=None, metavar="N",
                     help="Worker processes (default: every CPU this process may use)."),
        click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Output directory (default: runs/<kind>-<UTC>-<strategy>/)."),
        click.option("--resume", is_flag=True,
                     help="Finish the sweep in --out: cells already journaled are skipped."),
        click.option("--no-hash", is_flag=True,
                     help="Do not compute each cell's equity hash (faster; equity_hash is "
                          "empty and cells cannot be checked against a backtest)."),
        click.option("--no-fast-path", is_flag=True,
                     help="Run every cell on the engine, even where a compiled fast path "
                          "exists."),
        click.option("--stat", "report_stat", default="sharpe", show_default=True,
                     help="The statistic the report's heatmap and top cells start with."),
        click.option("--no-progress", is_flag=True, help="Never show a progress bar."),
        click.option("--no-report", is_flag=True, help="Do not write report.html."),
        json_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def build_request(kind: str, *, strategy: str | None, grids: tuple[str, ...],
                  params: tuple[str, ...], seeds: str | None, snapshots: tuple[Path, ...],
                  config_file: Path | None, backend: str, address: str | None,
                  workers: int | None, out: Path | None, resume: bool, no_hash: bool,
                  no_fast_path: bool, report_stat: str, no_progress: bool, no_report: bool,
                  walkforward: Any = None) -> Any:
    """The sweep request of a command line: the config file and flags resolved as
    ``backtest`` resolves them, without the snapshot, the seed and the swept parameters."""
    from weltklassebot.config.load import deep_merge, read_toml, validate_config
    from weltklassebot.config.model import BacktestConfig
    from weltklassebot.config.service import OTHER_COMMANDS_SECTIONS
    from weltklassebot.core.timeutil import ns_to_basic
    from weltklassebot.errors import UsageError
    from weltklassebot.runs.results import STATS_KEYS
    from weltklassebot.sweep.grid import parse_axis, parse_seeds
    from weltklassebot.sweep.runner import SweepRequest

    if report_stat not in STATS_KEYS:
        raise UsageError(f"--stat {report_stat!r} is not a statistic; choose one of "
                         f"{', '.join(STATS_KEYS)}.")
    if resume and out is None:
        raise UsageError("--resume finishes the sweep in --out DIR: name the directory.")
    cfg_path = config_path(config_file)
    raw: dict[str, Any] = read_toml(cfg_path) if cfg_path is not None else {}
    raw = {k: v for k, v in raw.items() if k not in OTHER_COMMANDS_SECTIONS}
    if cfg_path is not None:
        validate_config(BacktestConfig, raw, f"config {cfg_path}")
    overrides: dict[str, Any] = {}
    if strategy is not None:
        overrides.setdefault("strategy", {})["name"] = strategy
        if strategy != raw.get("strategy", {}).get("name"):
            raw.get("strategy", {}).pop("params", None)
    env_runs = os.environ.get(ENV_RUNS_DIR)
    if env_runs:
        overrides.setdefault("output", {})["runs_dir"] = env_runs
    source = f"config {cfg_path}" if cfg_path else "settings"
    config = validate_config(BacktestConfig, deep_merge(raw, overrides), source)
    axes = [parse_axis(g) for g in grids] + [parse_axis(p, "--param") for p in params]
    base = deep_merge(raw, overrides)
    base.pop("seed", None)
    base.get("data", {}).pop("snapshot", None)
    base = deep_merge(base, {"strategy": {"name": config.strategy.name}})
    if not snapshots and config.data.snapshot:
        snapshots = (Path(config.data.snapshot),)
    if out is None:
        stamp = ns_to_basic(time.time_ns()).split(".")[0] + "Z"
        out = Path(config.output.runs_dir) / f"{kind}-{stamp}-{config.strategy.name}"
    return SweepRequest(
        kind=kind, strategy=config.strategy.name, base=base,
        config_file=str(cfg_path) if cfg_path else None, snapshots=tuple(snapshots),
        axes=tuple(axes), seeds=parse_seeds(seeds, config.seed), out=out,
        argv=list(sys.orig_argv), backend=backend, address=address, workers=workers,
        resume=resume, with_hash=not no_hash, fast_path=not no_fast_path,
        show_progress=not no_progress, write_report=not no_report, walkforward=walkforward,
        report_stat=report_stat)


def run_and_print(request: Any, as_json: bool) -> None:
    from weltklassebot.cli.options import print_json
    from weltklassebot.sweep.runner import run_sweep

    outcome = run_sweep(request)
    summary = outcome.summary
    if as_json:
        print_json(summary)
    else:
        print_summary(summary, outcome.rows, request)
    failed = summary["counts"]["failed"]
    if failed:
        first = summary["failed"][0]["error"] if summary["failed"] else ""
        sys.stderr.write(f"warning: {failed} of {summary['counts']['cells']} cells failed; each "
                         f"is in results.parquet with its error (first: {first})\n")


def print_summary(summary: dict[str, Any], rows: list[dict[str, Any]], request: Any) -> None:
    from weltklassebot.sweep.walkforward import score

    counts, timings = summary["counts"], summary["timings"]
    names = [a.name for a in request.axes]
    lines = [
        f"{TITLES[summary['kind']]} of {summary['inputs']['strategy']['name']}: "
        f"{counts['cells']:,} cells ({counts['ok']:,} ok, {counts['failed']:,} failed, "
        f"{counts['resumed']:,} from before --resume)",
        f"Backend       {timings['backend']}, {timings['workers'] or 0} worker(s); "
        f"{counts['fast_path']:,} cells on the fast path, {counts['engine_path']:,} on the engine",
        f"Time          {timings['wall_seconds']:.1f} s"
        + (f", {timings['bar_evaluations_per_second']:,} bar evaluations/s per core"
           if timings["bar_evaluations_per_second"] else ""),
        f"Sweep hash    {summary['sweep_hash']}",
        f"Directory     {request.out}",
    ]
    stat = request.report_stat
    ranked = sorted((r for r in rows if r["status"] == "ok" and score(r, stat) is not None),
                    key=lambda r: -float(score(r, stat) or 0.0))[:5]
    if ranked:
        lines.append(f"Top by {stat}:")
        for row in ranked:
            params = ", ".join(f"{n}={row[n]}" for n in names)
            where = f" window {row['window']} {row['phase']}" if "window" in row else ""
            lines.append(f"  {row[stat]!s:<16} {params} seed={row['seed']}{where}")
    wf = summary.get("walkforward")
    if wf:
        lines.append(f"Walk-forward  {len(wf['windows'])} windows; mean {wf['statistic']} "
                     f"in-sample {_num(wf['in_sample_mean'])}, out-of-sample "
                     f"{_num(wf['out_of_sample_mean'])}, gap {_num(wf['gap_mean'])}")
        for stitched in wf["stitched"]:
            stats = stitched["stats"] or {}
            lines.append(f"  stitched seed {stitched['seed']}: total return "
                         f"{_num(stats.get('total_return'))}, sharpe {_num(stats.get('sharpe'))}"
                         f", max drawdown {_num(stats.get('max_drawdown'))}")
    mc = summary.get("montecarlo")
    if mc:
        for group in mc["groups"]:
            spread = group["statistics"].get(stat, {})
            lines.append(f"Monte Carlo   {group['seeds']} seeds: {stat} 5 % "
                         f"{_num(spread.get('q05'))}, median {_num(spread.get('q50'))}, "
                         f"95 % {_num(spread.get('q95'))}")
        if mc.get("notice"):
            lines.append(f"Notice        {mc['notice']}")
    if summary["files"].get("report"):
        lines.append(f"Report        {request.out / summary['files']['report']}")
    sys.stdout.write("".join(f"{line}\n" for line in lines))


def _num(value: Any) -> str:
    return "-" if value is None else f"{float(value):.4g}"


@click.command("sweep")
@click.option("--grid", "grids", multiple=True, metavar="NAME=VALUES",
              help="A swept parameter: fast=5:50:5 (both ends), slow=20,50,100 or fast=10; "
                   "repeatable, the cells are the cartesian product.")
@shared_options
def command(grids: tuple[str, ...], **options: Any) -> None:
    """Run every cell of a grid of parameters x seeds x snapshots as a backtest.

    Writes DIR/results.parquet (a row per cell), DIR/sweep.json (inputs, the sweep hash,
    counts, timings) and DIR/report.html. A killed sweep continues with --resume.
    """
    as_json = options.pop("as_json")
    run_and_print(build_request("sweep", grids=grids, **options), as_json)
