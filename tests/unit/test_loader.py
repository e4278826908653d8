"""strategy/loader.py: built-in names, ``module:Class``, file paths, params and code hashes."""

from __future__ import annotations

import hashlib
import sys
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import pytest

from weltklassebot.errors import StrategyError, UsageError
from weltklassebot.strategy.builtin import BUILTINS, DonchianBreakout, SmaCross
from weltklassebot.strategy.loader import (
    code_hash,
    coerce_params,
    parse_param_pairs,
    resolve_strategy,
)

USER_STRATEGY = '''
from weltklassebot.strategy.base import Strategy


class Mine(Strategy):
    name = "mine"
    version = "2.1"
    params = {"window": 5, "threshold": 0.5, "verbose": False, "label": "x"}
'''


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_builtins_are_registered_by_name() -> None:
    assert {"sma_cross": SmaCross, "donchian_breakout": DonchianBreakout} == BUILTINS
    spec = resolve_strategy("sma_cross", {})
    assert (spec.name, spec.version, spec.params) == ("sma_cross", "1.0.0",
                                                      {"fast": 10, "slow": 30, "qty": 1,
                                                       "fraction": 0})
    source = Path(sys.modules[SmaCross.__module__].__file__ or "")
    assert spec.code_hash == hashlib.sha256(source.read_bytes()).hexdigest()
    assert spec.source_file == str(source)


def test_params_from_text_are_coerced_to_the_declared_types() -> None:
    spec = resolve_strategy("sma_cross", {"fast": "5", "slow": "20"})
    assert spec.params == {"fast": 5, "slow": 20, "qty": 1, "fraction": 0}
    assert isinstance(spec.create(), SmaCross)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"fast": "x"}, "parameter fast must be of type int"),
        ({"nope": "1"}, "has no parameter nope; its parameters are: fast, fraction, qty, slow"),
        ({"fast": "30", "slow": "10"}, "must be smaller than slow"),
        ({"fast": "0"}, "must be >= 1"),
        ({"fast": 2.5}, "parameter fast must be an integer"),
        ({"fast": True}, "parameter fast must be an integer"),
        ({"qty": "0"}, r"qty \(0\) must be positive"),
        ({"qty": "-1.5"}, r"qty \(-1.5\) must be positive"),
    ],
)
def test_bad_params_are_usage_errors(params: dict[str, object], match: str) -> None:
    with pytest.raises(UsageError, match=match) as info:
        resolve_strategy("sma_cross", params)
    assert info.value.exit_code == 2


@pytest.mark.parametrize("qty", ["0", "-2"])
def test_a_quantity_that_is_not_positive_is_a_usage_error_for_donchian(qty: str) -> None:
    with pytest.raises(UsageError, match="must be positive") as info:
        resolve_strategy("donchian_breakout", {"qty": qty})
    assert info.value.exit_code == 2


def test_user_strategy_from_a_file_path(tmp_path: Path) -> None:
    path = write(tmp_path / "mine.py", USER_STRATEGY)
    spec = resolve_strategy(str(path), {"window": "7", "threshold": "0.25", "verbose": "yes"})
    assert spec.name == "mine"
    assert spec.version == "2.1"
    assert spec.params == {"window": 7, "threshold": Decimal("0.25"), "verbose": True,
                           "label": "x"}
    assert spec.code_hash == hashlib.sha256(path.read_bytes()).hexdigest()


def test_user_strategy_from_file_and_class(tmp_path: Path) -> None:
    path = write(tmp_path / "two.py", USER_STRATEGY + '''

class Other(Mine):
    name = "other"
''')
    with pytest.raises(UsageError, match="expected exactly one Strategy subclass, found Mine, "
                                         "Other"):
        resolve_strategy(str(path), {})
    assert resolve_strategy(f"{path}:Other", {}).name == "other"
    with pytest.raises(UsageError, match=r"Missing does not exist in .*it defines the strategy "
                                         r"classes Mine, Other"):
        resolve_strategy(f"{path}:Missing", {})


def test_user_strategy_from_module_and_class(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "userstrat_mod.py", USER_STRATEGY)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        spec = resolve_strategy("userstrat_mod:Mine", {})
        assert spec.name == "mine"
        assert resolve_strategy("userstrat_mod", {}).cls is spec.cls
    finally:
        sys.modules.pop("userstrat_mod", None)


def test_code_hash_changes_with_the_code(tmp_path: Path) -> None:
    first = resolve_strategy(str(write(tmp_path / "a.py", USER_STRATEGY)), {})
    second = resolve_strategy(str(write(tmp_path / "b.py", USER_STRATEGY + "# changed\n")), {})
    assert first.code_hash != second.code_hash
    assert code_hash(first.cls) == first.code_hash


@pytest.mark.parametrize(
    ("ref", "match"),
    [
        ("no_such_builtin", "unknown strategy 'no_such_builtin': not a built-in"),
        ("missing/dir/strategy.py", "strategy file missing/dir/strategy.py does not exist"),
    ],
)
def test_unknown_strategies_are_usage_errors(ref: str, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        resolve_strategy(ref, {})


def test_a_file_that_fails_to_import_is_a_usage_error(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.py", "raise RuntimeError('boom at import')\n")
    with pytest.raises(UsageError, match=r"raised RuntimeError: boom at import while it was "
                                         r"being imported at .*broken\.py:1"):
        resolve_strategy(str(path), {})


@pytest.mark.parametrize("hook", ["__init__", "validate"])
def test_a_strategy_raising_while_created_is_a_strategy_error(tmp_path: Path, hook: str) -> None:
    extra = ("    def __init__(self, **params):\n        super().__init__(**params)\n"
             "        {}['missing']\n") if hook == "__init__" else (
             "    def validate(self):\n        {}['missing']\n")
    path = write(tmp_path / "early.py", USER_STRATEGY + extra)
    with pytest.raises(StrategyError, match=f"strategy mine raised KeyError: 'missing' in {hook}"
                       ) as info:
        resolve_strategy(str(path), {})
    assert info.value.exit_code == 3
    assert f"{path}:" in info.value.message


def test_a_file_without_strategy_is_a_usage_error(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.py", "X = 1\n")
    with pytest.raises(UsageError, match="found none"):
        resolve_strategy(str(path), {})


def test_parse_param_pairs() -> None:
    assert parse_param_pairs(["fast=5", " slow = 20 ", "label=a=b"]) == {
        "fast": "5", "slow": "20", "label": "a=b"}
    for bad in ("fast", "=5", ""):
        with pytest.raises(UsageError, match="KEY=VALUE"):
            parse_param_pairs([bad])


def test_coerce_params_from_toml_values_keeps_native_types() -> None:
    assert coerce_params(SmaCross, {"fast": 3, "slow": 9}) == {"fast": 3, "slow": 9, "qty": 1,
                                                               "fraction": 0}
    with pytest.raises(UsageError, match=r"must be of type bool|must be true or false"):
        coerce_params(_BoolStrategy, {"flag": "maybe"})


class _BoolStrategy(SmaCross):
    params: ClassVar[dict[str, object]] = {"flag": False}
