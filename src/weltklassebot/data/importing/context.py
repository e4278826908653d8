"""The running state of one import: the source, its layout, and what has been reported so far.

Rows are named by their physical line in the source file (1-based, counting banner and header
lines).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from weltklassebot.data.formats import Layout

MAX_NAMED_ROWS = 5


@dataclass
class ImportContext:
    """Running state of one import: source description and what has been reported."""

    src: Path
    layout: Layout
    first_line: int
    decimal: str = "."
    """The numbers' decimal mark (``.`` or ``,``)."""
    dayfirst: bool = False
    """``--dayfirst``: ``01/02/2024`` is the 1st of February."""
    date_format: str | None = None
    """``--date-format``: strftime codes that every time must match."""
    fixes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def lines(self, positions: np.ndarray | list[int], line_of: np.ndarray | None = None) -> str:
        values = [int(p) for p in list(positions)[:MAX_NAMED_ROWS]]
        if line_of is not None:
            values = [int(line_of[p]) for p in values]
        else:
            values = [self.first_line + p for p in values]
        return f"line{'s' if len(values) > 1 else ''} {first_few(values, len(positions))}"


def first_few(numbers: Iterable[Any], total: int) -> str:
    """``"3, 5, 8"``: the first ``MAX_NAMED_ROWS`` of ``total`` numbers, then ``" and N more"``."""
    shown = [str(int(n)) for n in itertools.islice(numbers, MAX_NAMED_ROWS)]
    more = total - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")
