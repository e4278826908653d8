"""Structured logging at the edges: JSON lines (or readable lines on a terminal) on stderr.

stdout belongs to each command's result (tables, ``--json``); logs go to stderr, except for the
live service, which has no result to print and logs to stdout (``log_to_stdout``).
``WELTKLASSE_LOG_LEVEL`` (default ``INFO``) and ``WELTKLASSE_LOG_FORMAT`` (``json`` or
``console``; default: console on a terminal, JSON otherwise — what journald and log shippers
want) control them. Configured on first use, so commands that never log never import structlog.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from typing import Any

_stream: Any = None
"""Where logs go when not stderr: the live service logs to stdout (journald's usual stream)."""


def log_to_stdout() -> None:
    """Send this process's logs to stdout; call before the first log line."""
    global _stream
    _stream = sys.stdout


@functools.cache
def _configure() -> None:
    import structlog

    if structlog.is_configured():
        return  # an embedding application (or a test) chose its own logging: keep it
    level_name = os.environ.get("WELTKLASSE_LOG_LEVEL", "INFO").upper()
    level = logging.getLevelNamesMapping().get(level_name, logging.INFO)
    stream = _stream or sys.stderr
    fmt = os.environ.get("WELTKLASSE_LOG_FORMAT") or ("console" if stream.isatty() else "json")
    renderer: Any = (structlog.dev.ConsoleRenderer(colors=False) if fmt == "console"
                     else structlog.processors.JSONRenderer(sort_keys=True))
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    """A structlog logger writing to stderr, configured on first use."""
    import structlog

    _configure()
    return structlog.get_logger(name)
