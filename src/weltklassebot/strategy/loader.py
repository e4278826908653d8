"""Find a strategy class by built-in name, ``module:Class`` or ``path/to/file.py[:Class]``,
coerce ``--param K=V`` values to the declared defaults' types, and fingerprint the code."""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import sys
import traceback
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import ModuleType
from typing import Any

from weltklassebot.errors import StrategyError, UsageError
from weltklassebot.strategy.base import Strategy


@dataclass(frozen=True)
class StrategySpec:
    """A resolved strategy: its class, parameters, and the hash of its source."""

    cls: type[Strategy]
    ref: str
    params: dict[str, Any]
    code_hash: str
    source_file: str | None

    @property
    def name(self) -> str:
        return self.cls.name

    @property
    def version(self) -> str:
        return self.cls.version

    def create(self) -> Strategy:
        return self.cls(**self.params)


def resolve_strategy(ref: str, raw_params: dict[str, Any]) -> StrategySpec:
    """Load ``ref`` and validate ``raw_params`` against the strategy's declared params."""
    cls = _load_class(ref)
    params = coerce_params(cls, raw_params)
    try:
        instance = cls(**params)
    except Exception as exc:
        raise _strategy_failed(cls, "__init__", exc) from exc
    try:
        instance.validate()
    except (ValueError, TypeError) as exc:
        raise UsageError(f"strategy {cls.name}: invalid parameters {params}: {exc}") from exc
    except Exception as exc:
        raise _strategy_failed(cls, "validate", exc) from exc
    source_file = inspect.getsourcefile(cls)
    return StrategySpec(cls=cls, ref=ref, params=params, code_hash=code_hash(cls),
                        source_file=source_file)


def _strategy_failed(cls: type[Strategy], hook: str, exc: Exception) -> StrategyError:
    """A user strategy's own exception before the run: strategy, hook and place named."""
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    return StrategyError(
        f"strategy {cls.name} raised {type(exc).__name__}: {exc} in {hook}, at "
        f"{frame.filename}:{frame.lineno}, before the first bar. No run directory was written; "
        "fix the strategy and run again."
    )


def _syntax_message(path: Path, exc: SyntaxError) -> str:
    """File, line and a caret under the place, as Python shows it, without a traceback."""
    line = (exc.text or "").rstrip("\n")
    shown = line.lstrip()
    caret = ""
    if shown and exc.offset:
        column = max(0, exc.offset - 1 - (len(line) - len(shown)))
        caret = "\n    " + " " * min(column, len(shown)) + "^"
    where = f"{exc.filename or path}, line {exc.lineno}"
    code = f"\n    {shown}{caret}" if shown else ""
    return (f"strategy file {path} has a syntax error: {exc.msg} ({where}){code}\n"
            "Fix the line and run again.")


def _import_failed(path: Path, exc: Exception) -> str:
    """The exception and the innermost line of the user's file that raised it."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if Path(f.filename).name == path.name or f.filename == str(path)]
    frame = frames[-1] if frames else None
    at = f" at {frame.filename}:{frame.lineno} ({(frame.line or '').strip()})" if frame else ""
    return (f"strategy {path} raised {type(exc).__name__}: {exc} while it was being imported"
            f"{at}. Fix it and run again (WELTKLASSE_DEBUG=1 shows the traceback).")


def code_hash(cls: type[Strategy]) -> str:
    """SHA-256 of the bytes of the file that defines the strategy class."""
    source_file = inspect.getsourcefile(cls)
    if source_file is None:
        return hashlib.sha256(inspect.getsource(cls).encode()).hexdigest()
    return hashlib.sha256(Path(source_file).read_bytes()).hexdigest()


def _load_class(ref: str) -> type[Strategy]:
    from weltklassebot.strategy.builtin import BUILTINS

    if ref in BUILTINS:
        return BUILTINS[ref]
    target, _, class_name = ref.partition(":")
    module: ModuleType
    if target.endswith(".py") or "/" in target:
        path = Path(target)
        if path.is_dir():
            files = sorted(p.name for p in path.glob("*.py") if not p.name.startswith("_"))
            listing = (f"; it holds {', '.join(files[:12])}" if files
                       else "; it holds no .py file")
            raise UsageError(
                f"strategy {path} is a directory, not a Python file{listing}. Give the file, "
                f"e.g. --strategy {path / (files[0] if files else 'mine.py')}[:ClassName].")
        if not path.is_file():
            raise UsageError(
                f"strategy file {path} does not exist. Give a built-in name "
                f"({', '.join(sorted(BUILTINS))}), a module path like 'mypkg.mystrat:MyStrategy', "
                "or a file like 'strategies/mine.py:MyStrategy'."
            )
        digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
        module_name = f"weltklassebot_user_{digest}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise UsageError(f"strategy file {path} cannot be loaded as a Python module.")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except SyntaxError as exc:
            sys.modules.pop(module_name, None)
            raise UsageError(_syntax_message(path, exc)) from None
        except Exception as exc:
            sys.modules.pop(module_name, None)
            raise UsageError(_import_failed(path, exc)) from exc
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise UsageError(
                f"unknown strategy {ref!r}: not a built-in ({', '.join(sorted(BUILTINS))}) and "
                f"module {target!r} cannot be imported ({exc})."
            ) from exc
        except SyntaxError as exc:
            raise UsageError(_syntax_message(Path(exc.filename or target), exc)) from None
        except Exception as exc:
            raise UsageError(_import_failed(Path(target), exc)) from exc
    candidates = [
        obj for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, Strategy) and obj is not Strategy
        and obj.__module__ == module.__name__
    ]
    if class_name:
        found = getattr(module, class_name, None)
        if not (inspect.isclass(found) and issubclass(found, Strategy)):
            defined = sorted(c.__name__ for c in candidates)
            close = difflib.get_close_matches(class_name, defined, n=1)
            hint = f" Did you mean {target}:{close[0]}?" if close else ""
            defines = (f"it defines the strategy classes {', '.join(defined)}" if defined
                       else "it defines no Strategy subclass")
            what = "is not a Strategy subclass" if found is not None else "does not exist"
            raise UsageError(f"{ref}: {class_name} {what} in {target}; {defines}.{hint}")
        return found
    if len(candidates) != 1:
        names = ", ".join(sorted(c.__name__ for c in candidates)) or "none"
        raise UsageError(
            f"{ref}: expected exactly one Strategy subclass, found {names}; name it as "
            f"'{target}:ClassName'."
        )
    return candidates[0]


def parse_param_pairs(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``["fast=5", "slow=20"]`` -> ``{"fast": "5", "slow": "20"}`` with clear errors."""
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param {pair!r} is not of the form KEY=VALUE, e.g. --param fast=5")
        parsed[key.strip()] = value.strip()
    return parsed


def coerce_params(cls: type[Strategy], raw: dict[str, Any]) -> dict[str, Any]:
    """Merge ``raw`` over the declared defaults, converting text to each default's type."""
    declared = dict(cls.params)
    unknown = sorted(set(raw) - set(declared))
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise UsageError(
            f"strategy {cls.name} has no parameter {', '.join(unknown)}; its parameters are: "
            f"{known}."
        )
    result = dict(declared)
    for key, value in raw.items():
        result[key] = _coerce(cls.name, key, value, declared[key])
    return result


def _coerce(strategy: str, key: str, value: Any, default: Any) -> Any:
    if not isinstance(value, str):
        if isinstance(default, bool) and not isinstance(value, bool):
            raise UsageError(f"strategy {strategy}: parameter {key} must be true or false")
        is_int_param = isinstance(default, int) and not isinstance(default, bool)
        if is_int_param and (isinstance(value, bool) or not isinstance(value, int)):
            raise UsageError(
                f"strategy {strategy}: parameter {key} must be an integer, got {value!r}")
        return value
    try:
        if isinstance(default, bool):
            lowered = value.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return lowered in ("true", "1", "yes")
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float | Decimal):
            return Decimal(value)
    except (ValueError, InvalidOperation) as exc:
        kind = type(default).__name__
        raise UsageError(
            f"strategy {strategy}: parameter {key} must be of type {kind}, got {value!r}"
        ) from exc
    return value
