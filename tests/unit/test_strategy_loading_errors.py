"""Loading a strategy fails with a message a user can act on: a directory, a misspelt class, a
syntax error (file, line, caret), an import that raises; and with WELTKLASSE_DEBUG=1 a strategy's
exception shows the strategy's own traceback frames, not the engine's."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.cli import run_cli
from weltklassebot.errors import UsageError
from weltklassebot.strategy.loader import resolve_strategy

GOOD = '''from weltklassebot.strategy.base import Strategy


class Breakout(Strategy):
    name = "breakout_try"

    def on_bar(self, ctx, bar):
        pass


class Other(Strategy):
    name = "other_try"

    def on_bar(self, ctx, bar):
        pass
'''
BOOM = '''from weltklassebot.strategy.base import Strategy


class Boom(Strategy):
    name = "boom"

    def on_bar(self, ctx, bar):
        self.helper(bar)

    def helper(self, bar):
        return 1 / 0
'''


def test_a_directory_is_named_as_one_with_the_files_it_holds(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text(GOOD)
    with pytest.raises(UsageError, match=r"is a directory, not a Python file; it holds mine\.py"):
        resolve_strategy(str(tmp_path), {})


def test_a_misspelt_class_lists_what_the_file_defines_and_suggests(tmp_path: Path) -> None:
    path = tmp_path / "mine.py"
    path.write_text(GOOD)
    with pytest.raises(UsageError) as caught:
        resolve_strategy(f"{path}:Breakuot", {})
    message = caught.value.message
    assert "Breakuot does not exist" in message
    assert "it defines the strategy classes Breakout, Other" in message
    assert f"Did you mean {path}:Breakout?" in message


def test_a_syntax_error_shows_file_line_and_a_caret(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("from weltklassebot.strategy.base import Strategy\n\n\n"
                    "class X(Strategy):\n    def on_bar(self, ctx, bar)\n        pass\n")
    with pytest.raises(UsageError) as caught:
        resolve_strategy(str(path), {})
    lines = caught.value.message.splitlines()
    assert lines[0].endswith(f"({path}, line 5)")
    assert lines[1] == "    def on_bar(self, ctx, bar)"
    assert lines[2] == "    " + " " * len("def on_bar(self, ctx, bar)") + "^"
    assert "SyntaxError(" not in caught.value.message  # no Python repr


def test_an_import_that_raises_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "raises.py"
    path.write_text("import json\n\nCONFIG = json.loads('{not json')\n")
    with pytest.raises(UsageError) as caught:
        resolve_strategy(str(path), {})
    assert f"at {path}:3 (CONFIG = json.loads('{{not json'))" in caught.value.message
    assert "JSONDecodeError" in caught.value.message


def test_debug_shows_the_strategys_own_frames(tmp_path: Path) -> None:
    path = tmp_path / "boom.py"
    path.write_text(BOOM)
    plain = run_cli("backtest", "--strategy", path, "--no-progress", "--out", tmp_path / "a")
    assert plain.returncode == 3
    assert "Traceback" not in plain.stderr
    assert f"at {path}:11" in plain.stderr
    debug = run_cli("backtest", "--strategy", path, "--no-progress", "--out", tmp_path / "b",
                    env={"WELTKLASSE_DEBUG": "1"})
    assert debug.returncode == 3
    assert "Traceback (the strategy's own frames" in debug.stderr
    assert f'File "{path}", line 8, in on_bar' in debug.stderr
    assert f'File "{path}", line 11, in helper' in debug.stderr
    assert "weltklassebot/engine" not in debug.stderr
    assert "ZeroDivisionError: division by zero" in debug.stderr
