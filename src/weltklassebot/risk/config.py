"""``[risk]`` configuration: every limit is off by default.

Units (all human units, converted once to the engine's exact integers):

- quantities (``max_position``, ``max_order_qty``): instrument quantity, e.g. ``0.5`` BTC;
- money (``max_gross_notional``, ``max_order_notional``, ``max_window_loss``, ``exposure_spike``):
  quote currency, e.g. ``25000`` USD;
- ``price_band_bps``: basis points of the last price (``50`` = 0.5 %);
- ``drawdown_cap``: a fraction of peak equity in (0, 1] (``0.1`` = 10 %);
- durations (``cooldown``, ``loss_window``, ``denial_window``): text such as ``"15m"``, ``"1h"``,
  ``"30s"``, ``"250ms"``, or an integer number of nanoseconds;
- counts (``max_orders_per_second``, ``max_orders_per_minute``, ``max_consecutive_losses``,
  ``max_denials``): positive integers.

Numbers are read as ``Decimal`` through their shortest text, never through a binary float.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from weltklassebot.core.decimal import to_decimal
from weltklassebot.core.timeutil import NS_PER_HOUR, NS_PER_MINUTE, format_duration, parse_duration
from weltklassebot.errors import ConfigError


def _decimal(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("expected a number, not a boolean")
    if isinstance(value, str | int | float | Decimal):
        result = to_decimal(value)
        if not result.is_finite():
            raise ValueError("must be a finite number")
        return result
    return value


def _duration(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '15m', not a boolean")
    if isinstance(value, str):
        return parse_duration(value)
    return value


def _count(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("expected a whole number, not a boolean")
    return value


PositiveDecimal = Annotated[Decimal, BeforeValidator(_decimal), Field(gt=0)]
NonNegativeDecimal = Annotated[Decimal, BeforeValidator(_decimal), Field(ge=0)]
DurationNs = Annotated[int, BeforeValidator(_duration), Field(gt=0, strict=True)]
Count = Annotated[int, BeforeValidator(_count), Field(gt=0, strict=True)]


class RiskConfig(BaseModel):
    """The ``[risk]`` TOML section; unknown keys are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    # --- pre-trade rules -------------------------------------------------------------------
    max_position: PositiveDecimal | None = None
    """Largest |position + same-side open orders| per symbol, instrument quantity."""
    max_position_per_symbol: dict[str, PositiveDecimal] = Field(default_factory=dict)
    """Per-symbol overrides of ``max_position`` (a symbol listed here uses its own limit)."""
    max_gross_notional: PositiveDecimal | None = None
    """Largest gross exposure (sum of |position| x price over symbols) after the order, quote."""
    max_order_qty: PositiveDecimal | None = None
    """Largest quantity of one order, instrument quantity."""
    max_order_notional: PositiveDecimal | None = None
    """Largest qty x reference price of one order, quote currency."""
    max_orders_per_second: Count | None = None
    """Orders accepted in any sliding 1 s window of the event clock."""
    max_orders_per_minute: Count | None = None
    """Orders accepted in any sliding 60 s window of the event clock."""
    price_band_bps: NonNegativeDecimal | None = None
    """Largest distance of the order's reference price from the last price, basis points."""
    reduce_only: bool = False
    """Only the position-reducing part of an order passes (the rest is clipped)."""

    # --- COOL triggers -------------------------------------------------------------------------
    cooldown: DurationNs = 15 * NS_PER_MINUTE
    """How long ``COOL`` lasts on the event clock."""
    max_consecutive_losses: Count | None = None
    """``COOL`` after this many losing round trips in a row."""
    max_window_loss: PositiveDecimal | None = None
    """``COOL`` when realised loss (net of fees) within ``loss_window`` is above this, quote."""
    loss_window: DurationNs = NS_PER_HOUR
    """Rolling window for ``max_window_loss``."""
    max_denials: Count | None = None
    """``COOL`` when this many orders are denied by a rule within ``denial_window``."""
    denial_window: DurationNs = NS_PER_MINUTE
    """Rolling window for ``max_denials``."""
    exposure_spike: PositiveDecimal | None = None
    """``COOL`` when gross exposure after a fill is above this, quote currency."""

    # --- HALTED --------------------------------------------------------------------------------
    drawdown_cap: PositiveDecimal | None = Field(default=None, le=1)
    """``HALTED`` when peak - equity >= drawdown_cap x peak (a fraction, 0.1 = 10 %)."""
    flatten_on_halt: bool = False
    """On entering ``HALTED``, ask the caller to close every position with market orders."""

    @property
    def drawdown_cap_fraction(self) -> Fraction | None:
        """The cap as an exact fraction, or ``None`` when off."""
        return None if self.drawdown_cap is None else Fraction(self.drawdown_cap)

    def position_limit(self, symbol: str) -> Decimal | None:
        """The ``max_position`` that applies to ``symbol`` (override first)."""
        return self.max_position_per_symbol.get(symbol, self.max_position)

    def with_drawdown_cap(self, cap: Decimal | str | float | None) -> RiskConfig:
        """A copy with another drawdown cap (``backtest --drawdown-cap``), validated."""
        data = self.model_dump()
        data["drawdown_cap"] = cap
        return type(self).from_mapping(data, source="--drawdown-cap")

    def describe(self) -> dict[str, str]:
        """The settings that are on, as text (for summaries and ``risk status``)."""
        out: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None or value is False or value == {}:
                continue
            if name in ("cooldown", "loss_window", "denial_window"):
                out[name] = format_duration(int(value))
            elif isinstance(value, dict):
                out[name] = ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
            else:
                out[name] = str(value)
        return out

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "[risk]") -> RiskConfig:
        """Validate a TOML ``[risk]`` table; errors become one ``ConfigError`` naming the keys."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                key = ".".join(str(part) for part in err["loc"]) or "(section)"
                if err["type"] == "extra_forbidden":
                    problems.append(f"unknown key 'risk.{key}'")
                else:
                    problems.append(f"'risk.{key}': {err['msg']}")
            raise ConfigError(
                f"invalid risk configuration in {source}: " + "; ".join(problems)
                + ". See docs/risk.md for every key, its unit and its default."
            ) from None
