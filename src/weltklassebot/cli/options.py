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
