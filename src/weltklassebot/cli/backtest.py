"""``backtest``: run a strategy over a snapshot and write a run directory."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from weltklassebot.cli.options import (
    ENV_RUNS_DIR,
    config_option,
    config_path,
    json_option,
    print_json,
)

OTHER_COMMANDS_SECTIONS = ("snapshots", "state", "service", "metrics", "faults")


@click.command("backtest")
@click.option("--seed", type=click.IntRange(min=0, max=2**64 - 1), default=None,
              help="Run seed (default: config, else 0). Always recorded and printed.")
@click.option("--data-snapshot", "snapshot", type=click.Path(path_type=Path), default=None,
              help="Bars snapshot (.parquet); default: the bundled sample.")
@config_option
@click.option("--strategy", default=None,
              help="Built-in name, 'module:Class' or 'path/file.py[:Class]' (default sma_cross).")
@click.option("--param", "params", multiple=True, metavar="K=V",
              help="Strategy parameter; repeatable, overrides the config.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run directory to create (default: runs/<UTC>-<strategy>-<hash8>/).")
@click.option("--drawdown-cap", type=click.FloatRange(min=0, max=1, min_open=True),
              default=None, metavar="FRACTION",
              help="Halt trading when drawdown from peak equity reaches FRACTION (e.g. 0.1); "
                   "overrides [risk] drawdown_cap for this run.")
@click.option("--no-progress", is_flag=True, help="Never show a progress bar.")
@json_option
def command(seed: int | None, snapshot: Path | None, config_file: Path | None,
            strategy: str | None, params: tuple[str, ...], out: Path | None,
            drawdown_cap: float | None, no_progress: bool, as_json: bool) -> None:
    """Run a deterministic backtest and write a run directory.

    The snapshot is validated first; invalid data stops the run with exit status 1.
    """
    from weltklassebot.config.load import deep_merge, read_toml, validate_config
    from weltklassebot.config.model import BacktestConfig
    from weltklassebot.runs.backtest import RunRequest, execute
    from weltklassebot.strategy.loader import parse_param_pairs

    cfg_path = config_path(config_file)
    raw: dict[str, Any] = read_toml(cfg_path) if cfg_path is not None else {}
    # One config file serves every command: sections owned by other commands are theirs.
    raw = {k: v for k, v in raw.items() if k not in OTHER_COMMANDS_SECTIONS}
    if cfg_path is not None:
        # The file must be valid on its own: a flag never hides an error in it.
        validate_config(BacktestConfig, raw, f"config {cfg_path}")
    overrides: dict[str, Any] = {}
    if seed is not None:
        overrides["seed"] = seed
    if snapshot is not None:
        overrides.setdefault("data", {})["snapshot"] = str(snapshot)
    if strategy is not None:
        overrides.setdefault("strategy", {})["name"] = strategy
        if strategy != raw.get("strategy", {}).get("name"):
            raw.get("strategy", {}).pop("params", None)  # params belong to the configured one
    if params:
        overrides.setdefault("strategy", {})["params"] = parse_param_pairs(params)
    if drawdown_cap is not None:
        # Through its shortest text, so 0.1 means exactly one tenth.
        overrides.setdefault("risk", {})["drawdown_cap"] = repr(drawdown_cap)
    env_runs = os.environ.get(ENV_RUNS_DIR)
    if env_runs:
        overrides.setdefault("output", {})["runs_dir"] = env_runs
    source = f"config {cfg_path}" if cfg_path else "settings"
    config = validate_config(BacktestConfig, deep_merge(raw, overrides), source)
    request = RunRequest(
        config=config,
        config_file=str(cfg_path) if cfg_path else None,
        argv=list(sys.orig_argv),  # exactly as the process was started
        out=out,
        runs_dir=Path(config.output.runs_dir),
    )
    show = not no_progress and sys.stderr.isatty()
    outcome = _run_with_progress(request, show, execute)
    if as_json:
        print_json(outcome.summary)
    else:
        print_summary(outcome.summary)


def _run_with_progress(request: Any, show: bool, execute: Callable[..., Any]) -> Any:
    if not show:
        return execute(request)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(TextColumn("[bold]backtest"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("bars"), TimeElapsedColumn(), console=console,
                  transient=True) as progress:
        task = progress.add_task("bars", total=None)

        def factory(total: int) -> Callable[[int], None]:
            progress.update(task, total=total)
            return lambda n: progress.advance(task, n)

        return execute(request, progress_factory=factory)


SUMMARY_ROWS = (
    ("strategy", "Strategy"), ("seed", "Seed"), ("bars", "Bars"),
    ("first_ts", "From"), ("last_ts", "To"), ("initial_equity", "Initial equity"),
    ("final_equity", "Final equity"), ("total_return", "Total return"),
    ("max_drawdown", "Max drawdown"), ("sharpe", "Sharpe (annualised)"), ("fills", "Fills"),
    ("fees_paid", "Fees paid"), ("denials", "Risk denials"), ("risk_state", "Risk state"),
    ("risk_transitions", "Risk changes"), ("equity_hash", "Equity hash"),
    ("run_dir", "Run directory"),
)


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key in ("total_return", "max_drawdown"):
        return f"{value * 100:.2f} %"
    if key == "sharpe":
        return f"{value:.3f}"
    if key == "denials":
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "0"
    if key == "risk_transitions":
        return "; ".join(f"{t['ts']} {t['from']}->{t['to']} ({t['reason']}: {t['detail']})"
                         for t in value) or "none"
    return str(value)


def print_summary(summary: dict[str, Any]) -> None:
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column()
        for key, label in SUMMARY_ROWS:
            table.add_row(label, _fmt(key, summary.get(key)))
        Console().print(table)
        return
    width = max(len(label) for _, label in SUMMARY_ROWS)
    for key, label in SUMMARY_ROWS:
        sys.stdout.write(f"{label:<{width}}  {_fmt(key, summary.get(key))}\n")
