"""config/: TOML loading, defaults of the issue, and errors that name the key."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from weltklassebot.config.load import deep_merge, read_toml, validate_config
from weltklassebot.config.model import BacktestConfig
from weltklassebot.core.timeutil import NS_PER_HOUR
from weltklassebot.errors import ConfigError
from weltklassebot.runs.backtest import execution_settings


def load(raw: dict[str, object]) -> BacktestConfig:
    return validate_config(BacktestConfig, raw, "config test.toml")


def test_defaults_are_the_documented_ones() -> None:
    config = load({})
    ex = config.execution
    assert config.seed == 0
    assert config.strategy.name == "sma_cross"
    assert ex.initial_cash == Decimal(1_000_000)
    assert (ex.fees.maker_bps, ex.fees.taker_bps, ex.fees.min_fee) == (Decimal(10), Decimal(10),
                                                                         Decimal(0))
    assert ex.slippage.model == "none"
    assert (ex.latency.delay, ex.latency.jitter) == (0, 0)
    assert ex.volume_participation is None
    assert ex.leverage == 1
    settings = execution_settings(config)
    assert settings.initial_cash == 1_000_000 * 10**8
    assert settings.participation is None
    assert settings.fees.min_fee_units == 0


def test_a_full_config_resolves() -> None:
    config = load({
        "seed": 123,
        "data": {"snapshot": "x.parquet", "symbol": "BTC", "bar_interval": "1h",
                 "instruments": {"BTC": {"price_increment": "0.01", "bar_interval": "15m"}}},
        "strategy": {"name": "donchian_breakout", "params": {"entry": 5}},
        "execution": {"initial_cash": "2500.5", "leverage": 2, "volume_participation": 0.1,
                      "fees": {"maker_bps": -1, "taker_bps": 5, "min_fee": "0.5"},
                      "slippage": {"model": "fixed", "bps": 2},
                      "latency": {"delay": "50ms", "jitter": 1000}},
    })
    assert config.data.bar_interval == NS_PER_HOUR
    assert config.data.instruments["BTC"].bar_interval == 15 * 60 * 10**9
    assert config.execution.latency.delay == 50_000_000
    assert config.execution.latency.jitter == 1000
    settings = execution_settings(config)
    assert settings.initial_cash == 250_050_000_000
    assert settings.fees.min_fee_units == 50_000_000
    assert settings.fees.maker_bps == -1
    assert settings.leverage == 2
    assert settings.latency_ns == 50_000_000


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"sede": 1}, "unknown key 'sede'"),
        ({"execution": {"fees": {"maker": 1}}}, "unknown key 'execution.fees.maker'"),
        ({"execution": {"initial_cash": "lots"}}, "key 'execution.initial_cash'"),
        ({"seed": "abc"}, "key 'seed'"),
        ({"seed": -1}, "key 'seed'"),
        ({"execution": {"fees": {"taker_bps": -1}}}, "key 'execution.fees.taker_bps'"),
        ({"execution": {"leverage": 0}}, "key 'execution.leverage'"),
        ({"execution": {"volume_participation": 1.5}}, "key 'execution.volume_participation'"),
        ({"execution": {"slippage": {"model": "random"}}}, "key 'execution.slippage.model'"),
        ({"execution": {"latency": {"delay": "soon"}}}, "key 'execution.latency.delay'"),
        ({"execution": {"latency": {"delay": True}}}, "key 'execution.latency.delay'"),
        ({"data": {"price_increment": 0}}, "key 'data.price_increment'"),
        ({"data": {"bar_interval": 0}}, "key 'data.bar_interval'"),
        ({"strategy": {"params": 3}}, "key 'strategy.params'"),
    ],
)
def test_errors_name_the_key(raw: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(raw)
    assert named in info.value.message
    assert info.value.message.startswith("config test.toml: ")
    assert info.value.exit_code == 2


def test_config_is_frozen() -> None:
    config = load({})
    with pytest.raises(ValueError, match="frozen"):
        config.seed = 5


def test_read_toml_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = = 1\n")
    with pytest.raises(ConfigError, match=f"config file {bad} is not valid TOML"):
        read_toml(bad)
    good = tmp_path / "good.toml"
    good.write_text('seed = 3\n[strategy]\nname = "sma_cross"\n')
    assert read_toml(good) == {"seed": 3, "strategy": {"name": "sma_cross"}}


def test_deep_merge_overrides_key_by_key() -> None:
    base = {"seed": 1, "strategy": {"name": "a", "params": {"fast": 3, "slow": 9}}}
    merged = deep_merge(base, {"strategy": {"params": {"fast": 5}}, "seed": 2})
    assert merged == {"seed": 2, "strategy": {"name": "a", "params": {"fast": 5, "slow": 9}}}
    assert base["seed"] == 1  # not modified in place
