"""The run configuration (TOML) as frozen pydantic models with ``extra="forbid"``.

Resolution order for every setting: command-line flag > ``WELTKLASSE_*`` environment variable >
TOML file (``--config`` or ``WELTKLASSE_CONFIG``) > the defaults written here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from weltklassebot.core.timeutil import parse_duration
from weltklassebot.data.schema import parse_increment
from weltklassebot.risk.config import RiskConfig


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FeeConfig(_Frozen):
    """Fees in basis points of notional; a negative maker fee is a rebate."""

    maker_bps: Decimal = Decimal(10)
    taker_bps: Decimal = Decimal(10)
    min_fee: Decimal = Decimal(0)

    @field_validator("taker_bps", "min_fee")
    @classmethod
    def _non_negative(cls, value: Decimal) -> Decimal:
        if value < 0:
            raise ValueError("must be >= 0 (only the maker fee may be a rebate)")
        return value


class SlippageConfig(_Frozen):
    model: Literal["none", "fixed", "stochastic"] = "none"
    bps: Decimal = Decimal(0)
    max_bps: Decimal = Decimal(0)

    @field_validator("bps", "max_bps")
    @classmethod
    def _non_negative(cls, value: Decimal) -> Decimal:
        if value < 0:
            raise ValueError("must be >= 0")
        return value


def _duration(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a duration like '50ms'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must be >= 0")
        return value
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError("expected a duration like '50ms' or an integer of nanoseconds")


class LatencyConfig(_Frozen):
    """Order latency: ``delay`` plus a uniform jitter in [0, ``jitter``], seeded."""

    delay: int = 0
    jitter: int = 0

    @field_validator("delay", "jitter", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> int:
        return _duration(value)


class InstrumentConfig(_Frozen):
    """Instrument facts that override the snapshot's metadata (increments, bar interval)."""

    price_increment: Decimal | None = None
    quantity_increment: Decimal | None = None
    bar_interval: int | None = None

    @field_validator("price_increment", "quantity_increment")
    @classmethod
    def _positive(cls, value: Decimal | None) -> Decimal | None:
        # The rule snapshot metadata follows too: one range for an increment wherever it is set.
        if value is not None and value <= 0:
            raise ValueError("must be > 0")
        return None if value is None else parse_increment(value)

    @field_validator("bar_interval", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> int | None:
        if value is None:
            return None
        ns = _duration(value)
        if ns <= 0:
            raise ValueError("must be > 0")
        return ns


class DataConfig(InstrumentConfig):
    """Which snapshot, and instrument facts for every symbol (``instruments`` per symbol)."""

    snapshot: str | None = None
    symbol: str | None = None
    instruments: dict[str, InstrumentConfig] = Field(default_factory=dict)
    # Bars per year for annualising statistics; default: observed in the data
    # (docs/statistics.md).
    periods_per_year: float | None = None

    @field_validator("periods_per_year")
    @classmethod
    def _positive_periods(cls, value: float | None) -> float | None:
        if value is not None and not (0 < value < 1e9):
            raise ValueError("must be a number of bars per year > 0, e.g. 252")
        return value


class ExecutionConfig(_Frozen):
    initial_cash: Decimal = Decimal(1_000_000)
    quote_currency: str = "USD"
    cash_increment: Decimal = Decimal("0.00000001")
    leverage: Decimal = Decimal(1)
    volume_participation: Decimal | None = None
    fees: FeeConfig = Field(default_factory=FeeConfig)
    slippage: SlippageConfig = Field(default_factory=SlippageConfig)
    latency: LatencyConfig = Field(default_factory=LatencyConfig)

    @field_validator("initial_cash", "cash_increment", "leverage")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError("must be > 0")
        return value

    @field_validator("volume_participation")
    @classmethod
    def _fraction(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and not (0 < value <= 1):
            raise ValueError("must be in (0, 1]")
        return value


DEMO_PARAMS: dict[str, Any] = {"fraction": "0.95"}
"""What the default strategy trades with when neither its name nor its parameters are given (the
zero-argument demo): 95 % of equity per entry, so the result means something beside buy and
hold. Naming the strategy (``--strategy sma_cross``) or any parameter gives its own defaults."""


class StrategyConfig(_Frozen):
    name: str = "sma_cross"
    params: dict[str, Any] = Field(default_factory=lambda: dict(DEMO_PARAMS))

    @model_validator(mode="before")
    @classmethod
    def _demo(cls, data: Any) -> Any:
        if isinstance(data, dict) and "params" not in data and "name" in data:
            return {**data, "params": {}}  # a named strategy runs with its own defaults
        return data


class OutputConfig(_Frozen):
    runs_dir: str = "runs"


class BacktestConfig(_Frozen):
    """Everything that determines a run, besides the snapshot bytes and the strategy code."""

    seed: int = Field(default=0, ge=0, lt=2**64)
    data: DataConfig = Field(default_factory=DataConfig)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)
