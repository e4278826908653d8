"""Read TOML, apply overrides, validate; every error names the file and the key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from weltklassebot.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)


def read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist. Check --config / WELTKLASSE_CONFIG.")
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}.") from exc
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}.") from exc


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``; nested tables merge key by key."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def validate_config(model: type[ModelT], raw: dict[str, Any], source: str) -> ModelT:
    """Validate ``raw`` as ``model``; turn pydantic's errors into one clear paragraph."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"])
            if error["type"] == "extra_forbidden":
                problems.append(f"unknown key '{key}'")
            elif error["type"] == "missing":
                problems.append(f"missing key '{key}'")
            else:
                got = error.get("input")
                problems.append(f"key '{key}': {error['msg']} (got {got!r})")
        raise ConfigError(
            f"{source}: " + "; ".join(problems)
            + ". See docs/configuration.md for every key, its type and default."
        ) from exc
