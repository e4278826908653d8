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
from weltklassebot.config.service import OTHER_COMMANDS_SECTIONS

ENV_SNAPSHOT_DIR = "WELTKLASSE_SNAPSHOT_DIR"  # as data.catalog.settings reads it


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
@click.option("--start", default=None, metavar="TIME",
              help="Trade the bars starting at or after TIME (ISO 8601; no zone: UTC).")
@click.option("--end", default=None, metavar="TIME",
              help="Trade the bars starting before TIME (ISO 8601; no zone: UTC).")
@click.option("--warmup", type=click.IntRange(min=0), default=0, metavar="N",
              help="Feed the N bars before --start to the strategy without trading "
                   "(docs/sweeps.md, Warm-up).")
@click.option("--no-progress", is_flag=True, help="Never show a progress bar.")
@click.option("--no-report", is_flag=True,
              help="Do not write report.html (write it later with `report RUN_DIR`).")
@json_option
def command(seed: int | None, snapshot: Path | None, config_file: Path | None,
            strategy: str | None, params: tuple[str, ...], out: Path | None,
            drawdown_cap: float | None, start: str | None, end: str | None, warmup: int,
            no_progress: bool, no_report: bool, as_json: bool) -> None:
    """Run a deterministic backtest and write a run directory with its report.

    The snapshot is validated first; invalid data stops the run with exit status 1.
    --start/--end run a time range of it, --warmup N feeds the N bars before --start to the
    strategy without trading.
    """
    from weltklassebot.config.load import deep_merge, read_toml, validate_config
    from weltklassebot.config.model import BacktestConfig
    from weltklassebot.runs.backtest import RunRequest, execute
    from weltklassebot.runs.window import TimeWindow
    from weltklassebot.strategy.loader import parse_param_pairs

    window = TimeWindow.from_options(start, end, warmup)  # checked before any work
    cfg_path = config_path(config_file)
    raw: dict[str, Any] = read_toml(cfg_path) if cfg_path is not None else {}
    snapshot_dir = configured_snapshot_dir(raw, cfg_path)
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
    notice = None
    if config.data.snapshot is None and snapshot_dir is not None:
        notice = sample_notice(*snapshot_dir)
        sys.stderr.write(f"notice: {notice}\n")
        sys.stderr.flush()
    request = RunRequest(
        config=config,
        config_file=str(cfg_path) if cfg_path else None,
        argv=list(sys.orig_argv),  # exactly as the process was started
        out=out,
        runs_dir=Path(config.output.runs_dir),
        write_report=not no_report,
        notice=notice,
        window=window,
    )
    show = not no_progress and sys.stderr.isatty()
    outcome = _run_with_progress(request, show, execute)
    if as_json:
        print_json(outcome.summary)
    else:
        print_summary(outcome.summary)


def configured_snapshot_dir(raw: dict[str, Any], cfg_path: Path | None) -> tuple[Path,
                                                                                 str] | None:
    """The snapshot directory a user configured (``WELTKLASSE_SNAPSHOT_DIR`` > the config's
    ``[snapshots] snapshot_dir``), and where that came from; None when neither is set."""
    env = os.environ.get(ENV_SNAPSHOT_DIR, "").strip()
    if env:
        return Path(env), ENV_SNAPSHOT_DIR
    section = raw.get("snapshots")
    value = section.get("snapshot_dir") if isinstance(section, dict) else None
    if isinstance(value, str) and value.strip():
        return Path(value), f"[snapshots] snapshot_dir in {cfg_path}"
    return None


def sample_notice(directory: Path, source: str) -> str:
    """Says plainly that the bundled sample ran, not the configured directory's snapshot."""
    latest = directory / "latest.parquet"
    text = (f"this run used the bundled sample, not {latest} from the snapshot directory "
            f"set by {source}; pass --data-snapshot {latest} to run on it")
    if not latest.exists():
        text += (" (it has no latest.parquet yet: promote one with `python -m cli snapshot "
                 "promote FILE`)")
    return text + "."


def _run_with_progress(request: Any, show: bool, execute: Callable[..., Any]) -> Any:
    if not show:
        return execute(request)
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Bars per second over the last seconds (rich's own speed estimate)."""

        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:,.0f} bars/s", style="cyan")

    console = Console(stderr=True)
    # The engine reports every step of a few thousand bars: many updates a second.
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
                  MofNCompleteColumn(), TextColumn("bars"), RateColumn(),
                  TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("left"),
                  TimeRemainingColumn(), console=console, transient=True,
                  refresh_per_second=12, speed_estimate_period=5.0) as progress:
        task = progress.add_task("validating", total=None)

        def factory(total: int) -> Callable[[int], None]:
            progress.update(task, total=total, description="backtest")
            return lambda n: progress.advance(task, n)

        return execute(request, progress_factory=factory)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value * 100:.2f} %"


def _ratio(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def _money(value: Any) -> str:
    return "-" if value is None else str(value)


def _count(value: Any) -> str:
    return "-" if value is None else f"{value:,}"


def _times(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _duration(seconds: Any) -> str:
    if seconds is None:
        return "-"
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:,.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min"


STAT_ROWS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("Total return", "total_return", _pct), ("CAGR", "cagr", _pct),
    ("Volatility (ann.)", "volatility_ann", _pct), ("Sharpe (annualised)", "sharpe", _ratio),
    ("Sortino", "sortino", _ratio), ("Max drawdown", "max_drawdown", _pct),
    ("Longest drawdown", "max_drawdown_duration_s", _duration), ("Calmar", "calmar", _ratio),
    ("Closed trades", "trades", _count), ("Win rate", "win_rate", _pct),
    ("Profit factor", "profit_factor", _ratio), ("Expectancy", "expectancy", _money),
    ("Average win", "avg_win", _money), ("Average loss", "avg_loss", _money),
    ("Exposure", "exposure", _pct), ("Turnover", "turnover", _times), ("Fees paid", "fees", _money),
)


def summary_rows(summary: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(label, value, buy-and-hold value or None), in the order printed."""
    data = summary.get("data") or {}
    params = ", ".join(f"{k}={v}" for k, v in (summary.get("params") or {}).items())
    strategy = f"{summary.get('strategy')} {summary.get('strategy_version') or ''}".strip()
    rows: list[tuple[str, str, str | None]] = [
        ("Strategy", f"{strategy} ({params})" if params else strategy, None),
        ("Data", f"{Path(str(data.get('file'))).name} (sha256 {str(data.get('sha256'))[:12]})",
         None),
        ("", f"{', '.join(data.get('symbols') or [])}, {data.get('interval')} bars, "
             f"{data.get('first_bar')} to {data.get('last_bar')}, {_count(data.get('rows'))} "
             "rows", None),
    ]
    window = summary.get("range")
    if window:
        end = window.get("end") or "the end"
        fed = window.get("warmup_bars_fed")
        text = (f"{window.get('first_bar')} to before {end}, {_count(window.get('bars'))} bars; "
                f"warm-up {_count(fed)} of {window.get('warmup')} bars")
        if fed:
            text += f" from {window.get('warmup_first_bar')}"
        rows.append(("Range", text, None))
    if summary.get("notice"):
        rows.append(("Notice", str(summary["notice"]), None))
    rows += [
        ("Seed", str(summary.get("seed")), None),
        ("Initial equity", str(summary.get("initial_equity")), None),
        ("Final equity", str(summary.get("final_equity")), None),
        ("", "Strategy", "Buy & hold"),
    ]
    stats = summary.get("stats") or {}
    bench = summary.get("benchmark") or {}
    for label, key, fmt in STAT_ROWS:
        rows.append((label, fmt(stats.get(key)), fmt(bench.get(key))))
    annual = summary.get("annualisation") or {}
    ppy = stats.get("periods_per_year")
    rows.append(("Periods per year", f"{_count(None if ppy is None else round(ppy))} "
                 f"({annual.get('source')}: {annual.get('rule')})", None))
    rows.append(("Fills", f"{_count(summary.get('fills'))} ({_count(summary.get('orders'))} "
                 "orders)", None))
    denials = summary.get("denials") or {}
    rows.append(("Risk denials", ", ".join(f"{k}={v}" for k, v in denials.items()) or "0", None))
    rows.append(("Risk state", str(summary.get("risk_state")), None))
    transitions = summary.get("risk_transitions") or []
    rows.append(("Risk changes", "; ".join(
        f"{t['ts']} {t['from']}->{t['to']} ({t['reason']}: {t['detail']})"
        for t in transitions) or "none", None))
    rows.append(("Equity hash", str(summary.get("equity_hash")), None))
    rows.append(("Run directory", str(summary.get("run_dir")), None))
    run_dir = summary.get("run_dir")
    if run_dir and (Path(run_dir) / "report.html").is_file():
        rows.append(("Report", str(Path(run_dir) / "report.html"), None))
    return rows


def print_summary(summary: dict[str, Any]) -> None:
    rows = summary_rows(summary)
    width = max(len(label) for label, _, _ in rows)
    column = max((len(value) for _, value, bench in rows if bench is not None), default=0)
    lines = []
    for label, value, bench in rows:
        text = value if bench is None else f"{value:<{column}}  {bench}"
        lines.append(f"{label:<{width}}  {text}".rstrip())
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.markup import escape

        console = Console(highlight=False)
        for (label, _, _), line in zip(rows, lines, strict=True):
            head, rest = line[:width], line[width:]
            console.print(f"[bold]{escape(head)}[/bold]{escape(rest)}" if label else escape(line),
                          soft_wrap=True)
        return
    sys.stdout.write("".join(f"{line}\n" for line in lines))
