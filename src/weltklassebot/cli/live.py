"""``python -m cli live``: the live-simulation service (the systemd unit's command)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from weltklassebot.cli.options import ENV_RUNS_DIR, config_option, config_path, resolve_state_dir


@click.command("live")
@config_option
@click.option("--seed", type=click.IntRange(min=0, max=2**64 - 1), default=None,
              help="Run seed (default: config, else 0).")
@click.option("--data-snapshot", "snapshot", type=click.Path(path_type=Path), default=None,
              help="Bars snapshot to serve (default: [data] snapshot, else "
                   "<snapshot dir>/latest.parquet).")
@click.option("--strategy", default=None, help="Strategy (default: the config's, else sma_cross).")
@click.option("--param", "params", multiple=True, metavar="K=V",
              help="Strategy parameter; repeatable, overrides the config.")
@click.option("--speed", default=None, metavar="realtime|max|FACTOR",
              help="Pacing: realtime (one bar interval per bar), max, or a factor such as 60 "
                   "(default: [service] speed, else realtime).")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="State directory (default: $WELTKLASSE_STATE_DIR, [state] dir, else "
                   "/var/lib/weltklassebot/state).")
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=f"Where run directories go (default: ${ENV_RUNS_DIR}, [service] runs_dir, "
                   "else <state dir>/runs).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The directory of this one run (for scripts and tests).")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
              help="Port of /metrics (default: $WELTKLASSE_METRICS_PORT, [service] "
                   "metrics_port, else 9000; 0 picks a free one, written to "
                   "<state dir>/service.json).")
@click.option("--exit-at-end", is_flag=True, default=None,
              help="Exit 0 once the run is written out instead of idling (serving metrics).")
def command(config_file: Path | None, seed: int | None, snapshot: Path | None,
            strategy: str | None, params: tuple[str, ...], speed: str | None,
            state_dir: Path | None, runs_dir: Path | None, out: Path | None,
            metrics_port: int | None, exit_at_end: bool | None) -> None:
    """Run the live simulation: the backtest's pipeline paced against wall time, durable in a
    state directory, with Prometheus metrics. SIGTERM stops it cleanly (exit 0); started again
    it resumes where it stopped."""
    from weltklassebot.config.load import deep_merge, read_toml, validate_config
    from weltklassebot.config.model import BacktestConfig
    from weltklassebot.config.service import (
        METRICS_PORT_ENV,
        OTHER_COMMANDS_SECTIONS,
        LiveSettings,
        live_sections,
        parse_speed,
    )
    from weltklassebot.data.catalog.settings import resolve_settings
    from weltklassebot.errors import ConfigError, UsageError
    from weltklassebot.logs import log_to_stdout
    from weltklassebot.runs.live import LiveService
    from weltklassebot.runs.live_record import LiveRequest
    from weltklassebot.strategy.loader import parse_param_pairs

    log_to_stdout()
    cfg_path = config_path(config_file)
    raw: dict[str, Any] = read_toml(cfg_path) if cfg_path is not None else {}
    source = f"config {cfg_path}" if cfg_path else "settings"
    settings = validate_config(LiveSettings, live_sections(raw), source)
    backtest_raw = {k: v for k, v in raw.items() if k not in OTHER_COMMANDS_SECTIONS}
    if cfg_path is not None:
        validate_config(BacktestConfig, backtest_raw, f"config {cfg_path}")
    overrides: dict[str, Any] = {}
    if seed is not None:
        overrides["seed"] = seed
    if strategy is not None:
        overrides.setdefault("strategy", {})["name"] = strategy
        if strategy != backtest_raw.get("strategy", {}).get("name"):
            backtest_raw.get("strategy", {}).pop("params", None)
    if params:
        overrides.setdefault("strategy", {})["params"] = parse_param_pairs(params)
    if snapshot is None and not backtest_raw.get("data", {}).get("snapshot"):
        snapshots = resolve_settings(config=str(cfg_path) if cfg_path else None)
        snapshot = snapshots.snapshot_dir / "latest.parquet"
        if not snapshot.exists():
            raise UsageError(
                f"no snapshot to serve: {snapshot} does not exist (snapshot directory from "
                f"{snapshots.snapshot_dir_from}). Promote one with `python -m cli snapshot "
                f"promote FILE --dir {snapshots.snapshot_dir}`, or pass --data-snapshot PATH.")
    if snapshot is not None:
        overrides.setdefault("data", {})["snapshot"] = str(snapshot)
    config = validate_config(BacktestConfig, deep_merge(backtest_raw, overrides), source)

    directory = resolve_state_dir(state_dir, cfg_path)
    if settings.state.dir and state_dir is None and not os.environ.get("WELTKLASSE_STATE_DIR"):
        directory = Path(settings.state.dir)
    runs = runs_dir or (Path(os.environ[ENV_RUNS_DIR]) if os.environ.get(ENV_RUNS_DIR) else None)
    if runs is None:
        runs = Path(settings.service.runs_dir) if settings.service.runs_dir else directory / "runs"
    try:
        pace = parse_speed(speed if speed is not None else settings.service.speed)
    except ValueError as exc:
        raise UsageError(f"--speed: {exc}.") from None
    port = metrics_port
    if port is None and os.environ.get(METRICS_PORT_ENV, "").strip():
        text = os.environ[METRICS_PORT_ENV].strip()
        if not text.isdigit() or int(text) > 65535:
            raise ConfigError(f"{METRICS_PORT_ENV}={text!r} is not a port number (0-65535).")
        port = int(text)
    if port is None:
        port = settings.service.metrics_port
    request = LiveRequest(
        config=config, settings=settings, config_file=str(cfg_path) if cfg_path else None,
        argv=["python -m cli", *sys.argv[1:]] if sys.argv[1:2] == ["live"] else
        ["python -m cli", "live", *sys.argv[1:]],
        state_dir=directory, runs_dir=runs, out=out, speed=pace,
        exit_at_end=bool(exit_at_end) or settings.service.exit_at_end,
        bind=settings.service.bind, port=port, resend_fills=settings.faults.resend_fills,
        bundles_dir=(None if not settings.service.auto_bundle
                     else Path(settings.service.bundles_dir) if settings.service.bundles_dir
                     else directory.absolute().parent / "bundles"),
        keep_bundles=settings.service.keep_bundles)
    code = LiveService(request).run()
    if code:
        raise SystemExit(code)
