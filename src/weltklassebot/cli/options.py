"""Options shared by several sub-commands, declared once, and settings resolution."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

ENV_CONFIG = "WELTKLASSE_CONFIG"
ENV_RUNS_DIR = "WELTKLASSE_RUNS_DIR"


def config_option(func: F) -> F:
    return click.option(
        "--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
        default=None, help=f"TOML config file (default: ${ENV_CONFIG}).",
    )(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print the result as JSON for machines.")(func)


def config_path(flag: Path | None) -> Path | None:
    if flag is not None:
        return flag
    env = os.environ.get(ENV_CONFIG)
    return Path(env) if env else None


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
    sys.stdout.flush()


def resolve_state_dir(flag: Path | None, config_file: Path | None) -> Path:
    """Flag > ``WELTKLASSE_STATE_DIR`` > ``[state] dir`` in the TOML config > default."""
    from weltklassebot.errors import ConfigError
    from weltklassebot.service.operator import STATE_DIR_ENV, default_state_dir

    if flag is not None:
        return flag
    if os.environ.get(STATE_DIR_ENV, "").strip():
        return default_state_dir()
    cfg = config_path(config_file)
    if cfg is not None:
        from weltklassebot.config.load import read_toml

        data = read_toml(cfg)
        section = data.get("state")
        value = section.get("dir") if isinstance(section, dict) else data.get("state_dir")
        if value is not None:
            if not isinstance(value, str) or not value:
                raise ConfigError(f"config file {cfg}: [state] dir must be a non-empty string.")
            return Path(value)
    return default_state_dir()
