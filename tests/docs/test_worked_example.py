"""The worked example of docs/strategy-api.md is examples/breakout.py, to the character.

The python block whose first line is ``# examples/breakout.py`` must hold, after that line,
exactly the file's text after its module docstring and the one blank line that follows it:
the docs cannot drift from the file a user runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "strategy-api.md"
EXAMPLE = REPO / "examples" / "breakout.py"
MARKER = "# examples/breakout.py"


def shown_blocks(doc: str) -> list[str]:
    """The bodies (after the marker line) of the python blocks that start with the marker."""
    found: list[str] = []
    lines = doc.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.rstrip("\n") != "```python" or i + 1 >= len(lines):
            continue
        if lines[i + 1].rstrip("\n") != MARKER:
            continue
        body: list[str] = []
        for following in lines[i + 2:]:
            if following.rstrip("\n") == "```":
                break
            body.append(following)
        else:
            raise AssertionError(f"{DOC.name}: the block at line {i + 1} is never closed")
        found.append("".join(body))
    return found


def after_docstring(source: str) -> str:
    """``source`` without its module docstring and the blank line after it."""
    tree = ast.parse(source)
    assert ast.get_docstring(tree) is not None, f"{EXAMPLE.name} must start with a docstring"
    first = tree.body[0]
    assert first.end_lineno is not None
    lines = source.splitlines(keepends=True)
    assert lines[first.end_lineno] == "\n", (
        f"{EXAMPLE.name}: one blank line must follow the docstring")
    return "".join(lines[first.end_lineno + 1:])


def test_the_worked_example_is_the_file_after_its_docstring() -> None:
    blocks = shown_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) == 1, f"{DOC.name} must show {EXAMPLE.name} exactly once"
    assert blocks[0] == after_docstring(EXAMPLE.read_text(encoding="utf-8")), (
        f"the block '{MARKER}' in {DOC.name} differs from the file: copy the file's code "
        "(after its docstring) into the block")


def test_the_section_says_what_the_file_does() -> None:
    doc = DOC.read_text(encoding="utf-8")
    start = doc.index("## Worked example: a breakout with a trailing exit")
    section = doc[start:doc.index("\n## ", start + 1)]
    prose = section.replace(shown_blocks(doc)[0], "")
    code = after_docstring(EXAMPLE.read_text(encoding="utf-8"))
    # The text explains the calls the code makes, and runs the file with the command users
    # have been shown since the first release.
    for call in ("buy_bracket", "trail_fraction", "qty_for_fraction", "save", "load"):
        assert call in code, f"{EXAMPLE.name} no longer uses {call}: update the section"
        assert f"`{call}`" in prose or f"`ctx.{call}`" in prose, (
            f"the section's text does not explain {call}")
    assert "--strategy examples/breakout.py --param window=24" in prose
