"""Snapshot settings: directory, staging folder and lock time-out, and where each came from.

Precedence: flag > ``WELTKLASSE_*`` environment variable > ``[snapshots]`` in the TOML config >
default. The origin of each value is kept for error messages.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weltklassebot.errors import ConfigError, UsageError

DEFAULT_SNAPSHOT_DIR = Path("/var/lib/weltklassebot/snapshots")
DEFAULT_STAGING_DIR = Path("staging")
DEFAULT_LOCK_TIMEOUT_S = 30.0

ENV_SNAPSHOT_DIR = "WELTKLASSE_SNAPSHOT_DIR"
ENV_STAGING_DIR = "WELTKLASSE_STAGING_DIR"
ENV_LOCK_TIMEOUT = "WELTKLASSE_LOCK_TIMEOUT"
ENV_CONFIG = "WELTKLASSE_CONFIG"

CONFIG_KEYS: dict[str, str] = {
    "snapshot_dir": "the snapshot directory",
    "staging_dir": "where `snapshot import` writes by default",
    "lock_timeout_s": "seconds a mutating command waits for the lock",
}


@dataclass(frozen=True)
class Settings:
    """Resolved snapshot settings and where each came from (for error messages)."""

    snapshot_dir: Path
    snapshot_dir_from: str
    staging_dir: Path
    staging_dir_from: str
    lock_timeout_s: float
    config_path: Path | None


def _load_config(config: str | None) -> tuple[dict[str, Any], Path | None, str]:
    origin = "--config"
    if config is None:
        config = os.environ.get(ENV_CONFIG) or None
        origin = ENV_CONFIG
    if config is None:
        return {}, None, ""
    path = Path(config)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} (from {origin}) does not exist.") from exc
    except OSError as exc:
        raise ConfigError(f"config file {path} (from {origin}) cannot be read: "
                          f"{exc.strerror}.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}.") from exc
    section = data.get("snapshots", {})
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: 'snapshots' must be a table ([snapshots]).")
    unknown = sorted(set(section) - set(CONFIG_KEYS))
    if unknown:
        known = ", ".join(CONFIG_KEYS)
        raise ConfigError(f"config file {path}: unknown key(s) {', '.join(unknown)} in "
                          f"[snapshots]; known keys: {known}.")
    for key in ("snapshot_dir", "staging_dir"):
        if key in section and not isinstance(section[key], str):
            raise ConfigError(f"config file {path}: [snapshots] {key} must be a string path.")
    if "lock_timeout_s" in section and (isinstance(section["lock_timeout_s"], bool) or
                                        not isinstance(section["lock_timeout_s"], int | float)):
        raise ConfigError(f"config file {path}: [snapshots] lock_timeout_s must be a number.")
    return section, path, f"{path} [snapshots]"


def resolve_settings(*, snapshot_dir: str | None = None, config: str | None = None,
                     lock_timeout_s: float | None = None,
                     staging_dir: str | None = None) -> Settings:
    """Flag > ``WELTKLASSE_*`` environment variable > TOML config > default."""
    section, path, where = _load_config(config)

    def pick(flag: str | None, env: str, key: str, default: Path) -> tuple[Path, str]:
        if flag:
            return Path(flag), "--dir" if key == "snapshot_dir" else "--out"
        if os.environ.get(env):
            return Path(os.environ[env]), env
        if key in section:
            return Path(section[key]), f"{key} in {where}"
        return default, "the default"

    sdir, sdir_from = pick(snapshot_dir, ENV_SNAPSHOT_DIR, "snapshot_dir", DEFAULT_SNAPSHOT_DIR)
    stage, stage_from = pick(staging_dir, ENV_STAGING_DIR, "staging_dir", DEFAULT_STAGING_DIR)
    if lock_timeout_s is None:
        env_value = os.environ.get(ENV_LOCK_TIMEOUT)
        if env_value:
            try:
                lock_timeout_s = float(env_value)
            except ValueError as exc:
                raise ConfigError(f"{ENV_LOCK_TIMEOUT}={env_value!r} is not a number of "
                                  "seconds.") from exc
        elif "lock_timeout_s" in section:
            lock_timeout_s = float(section["lock_timeout_s"])
        else:
            lock_timeout_s = DEFAULT_LOCK_TIMEOUT_S
    if lock_timeout_s < 0:
        raise UsageError("the lock time-out cannot be negative.")
    return Settings(sdir, sdir_from, stage, stage_from, lock_timeout_s, path)
