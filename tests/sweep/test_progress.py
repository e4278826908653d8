"""The progress bar: cells done of all, the rate, failures and the time left."""

from __future__ import annotations

import io
import time

from rich.console import Console

from weltklassebot.sweep.progress import Silent, progress_bar


def test_the_bar_shows_cells_rate_failures_and_time_left() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160, color_system=None)
    with progress_bar(True, console) as bar:
        bar.phase("cells", 10, 2)  # two cells done before a resume
        for i in range(4):
            time.sleep(0.05)
            bar.advance(failed=i == 3)
        bar.progress.refresh()  # type: ignore[attr-defined]
        shown = out.getvalue()
    assert "6/10 cells" in shown
    assert "cells/s" in shown
    assert "1 failed" in shown
    assert "left" in shown


def test_no_terminal_no_bar() -> None:
    with progress_bar(True) as bar:  # pytest's stderr is no terminal
        assert isinstance(bar, Silent)
    with progress_bar(False, Console(file=io.StringIO(), force_terminal=True)) as bar:
        assert isinstance(bar, Silent)
