"""The live service's own settings: ``[service]``, ``[state]`` and ``[faults]`` of the TOML config.

They decide where and how the service runs, never what it trades: the run's results depend only
on the backtest settings (``config/model.py``), the snapshot bytes, the seed and the strategy code,
so ``live --speed max`` and ``backtest`` agree whatever is set here.

Resolution: command-line flag > ``WELTKLASSE_*`` environment variable > TOML > the defaults here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

OTHER_COMMANDS_SECTIONS = ("snapshots", "state", "service", "metrics", "faults")
"""Sections of the one config file that belong to other commands than ``backtest`` (which
ignores them); ``live`` reads ``[service]``, ``[state]`` and ``[faults]`` here."""

DEFAULT_BIND = "127.0.0.1"
"""Metrics bind to loopback unless the config says otherwise: ``/metrics`` shows positions,
equity and risk state, which have no business on every interface. A Prometheus on another host
needs ``[service] bind = "0.0.0.0"`` (or one address) together with a firewall rule."""
DEFAULT_METRICS_PORT = 9000
METRICS_PORT_ENV = "WELTKLASSE_METRICS_PORT"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServiceConfig(_Frozen):
    """``[service]``: the HTTP endpoint, pacing, run directories and their retention."""

    bind: str = DEFAULT_BIND
    metrics_port: int = Field(default=DEFAULT_METRICS_PORT, ge=0, le=65535)
    """0 picks a free port (written to ``DIR/service.json``; for tests)."""
    speed: str = "realtime"
    """``realtime`` (one bar interval of wall time per bar), ``max``, or a factor (``60``)."""
    runs_dir: str | None = None
    """Where finished runs are written (default ``<state dir>/runs``)."""
    keep_runs: int = Field(default=20, ge=1)
    """Run directories kept under the service's runs directory (oldest removed first)."""
    checkpoint_events: int = Field(default=5000, ge=1)
    """Write an engine checkpoint at least every this many events..."""
    checkpoint_seconds: float = Field(default=5.0, gt=0)
    """... and at least every this many wall seconds (a restart re-runs at most that much)."""
    exit_at_end: bool = False
    bundles_dir: str | None = None
    """Where incident bundles go (default ``<state dir>/../bundles``; the service's own, on
    HALTED or a restart divergence, in its ``auto/`` folder)."""
    keep_bundles: int = Field(default=20, ge=1)
    """Auto-bundles kept (oldest removed first)."""
    auto_bundle: bool = True

    @field_validator("speed")
    @classmethod
    def _speed(cls, value: str) -> str:
        parse_speed(value)
        return value


class StateSection(_Frozen):
    """``[state]``: the state directory and the store's rotation and retention."""

    dir: str | None = None
    segment_bytes: int = Field(default=16 * 1024 * 1024, ge=4096)
    retain_segments: int = Field(default=4, ge=1)


class FaultsConfig(_Frozen):
    """``[faults]``: injected faults for tests and drills (all off by default)."""

    resend_fills: float = Field(default=0.0, ge=0.0, le=1.0)
    """Probability that the venue sends a fill a second time (seeded: the same fills are resent
    in every run); each resend is dropped at the accounting boundary and counted in
    ``duplicate_fills_total``, so results are unchanged."""


class LiveSettings(_Frozen):
    """The sections of one config file that the service reads besides the backtest's."""

    service: ServiceConfig = Field(default_factory=ServiceConfig)
    state: StateSection = Field(default_factory=StateSection)
    faults: FaultsConfig = Field(default_factory=FaultsConfig)


def parse_speed(value: str) -> float | None:
    """``realtime`` -> 1.0, ``max`` -> None (no pacing), ``60`` / ``60x`` -> 60.0."""
    text = value.strip().lower()
    if text == "realtime":
        return 1.0
    if text == "max":
        return None
    try:
        factor = float(text[:-1] if text.endswith("x") else text)
    except ValueError:
        raise ValueError(
            f"speed {value!r} is not realtime, max or a factor such as 60") from None
    if not factor > 0 or factor != factor or factor == float("inf"):
        raise ValueError(f"speed {value!r} must be a factor > 0 (or realtime / max)")
    return factor


def live_sections(raw: dict[str, Any]) -> dict[str, Any]:
    """The part of a raw TOML document that ``LiveSettings`` validates."""
    return {k: raw[k] for k in ("service", "state", "faults") if k in raw}
