"""Exception hierarchy; every error an operator can see maps to one exit status (DESIGN section 3).

Our exception hierarchy::

    WeltklasseError            exit 3 unless a subclass says otherwise
    ├── VerdictFailed          exit 1  invalid data, DIVERGED, corrupt store
    │   └── InvalidSnapshot
    ├── UsageError             exit 2  bad flag, unknown config key, refused option
    │   ├── ConfigError
    │   └── UnusableInput      exit 2  missing / unreadable / not-Parquet file, hash mismatch
    └── RuntimeFailure         exit 3  strategy exception, I/O error, lock time-out
        └── StrategyError

Messages are one paragraph for a person: what is wrong, where (file, row, key, or strategy, symbol
and bar), and what to do. The CLI prints them without a traceback.
"""

from __future__ import annotations


class WeltklasseError(Exception):
    """Base of every error the product reports to an operator."""

    exit_code = 3

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class VerdictFailed(WeltklasseError):
    """A check ran and said no: invalid data, a diverged replay, a corrupt store."""

    exit_code = 1


class InvalidSnapshot(VerdictFailed):
    """A snapshot was read but breaks a validation rule."""


class UsageError(WeltklasseError):
    """The command line or configuration cannot be acted on."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration file or value is invalid (unknown key, wrong type)."""


class UnusableInput(UsageError):
    """An input file is missing, unreadable, of the wrong kind, or not the one recorded."""


class RuntimeFailure(WeltklasseError):
    """The run started but could not finish: I/O error, lock time-out, ..."""

    exit_code = 3


class StrategyError(RuntimeFailure):
    """User strategy code raised; the message names strategy, symbol and bar."""
