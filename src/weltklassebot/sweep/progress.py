"""The progress bar of a sweep on a terminal: cells done, cells per second, failures, ETA."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol


class Progress(Protocol):
    def phase(self, description: str, total: int, done: int) -> None: ...

    def advance(self, failed: bool) -> None: ...


class Silent:
    """No terminal (a pipe, a file, --no-progress): nothing is drawn."""

    def phase(self, description: str, total: int, done: int) -> None:
        return None

    def advance(self, failed: bool) -> None:
        return None


class Bar:
    """rich's progress bar with cells per second and the time left (rich's speed estimate over
    the last half minute; cells finished before a resume are counted as done, not as speed)."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress
        self.task: Any = None
        self.failed = 0

    def phase(self, description: str, total: int, done: int) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(description, total=total, completed=done,
                                           failed=self.failed)

    def advance(self, failed: bool) -> None:
        self.failed += int(failed)
        self.progress.update(self.task, advance=1, failed=self.failed)


@contextmanager
def progress_bar(show: bool, console: Any = None) -> Iterator[Progress]:
    """The bar on stderr when it is a terminal (or on ``console``, a rich console)."""
    if not show or (console is None and not sys.stderr.isatty()):
        yield Silent()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        ProgressColumn,
        Task,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as RichProgress
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:,.2f} cells/s", style="cyan")

    class FailedColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            failed = int(task.fields.get("failed") or 0)
            return Text(f"{failed} failed" if failed else "", style="red")

    with RichProgress(TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
                      MofNCompleteColumn(), TextColumn("cells"), RateColumn(), FailedColumn(),
                      TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("left"),
                      TimeRemainingColumn(), console=console or Console(stderr=True),
                      transient=True,
                      refresh_per_second=4, speed_estimate_period=30.0) as progress:
        yield Bar(progress)
