"""Names in a snapshot directory and the SHA-256 sidecar beside every snapshot.

A snapshot is ``<created, basic ISO 8601 UTC>_<name>.parquet``, so names sort chronologically;
``<file>.sha256`` holds its SHA-256 in ``sha256sum -c`` format. Work in progress carries the hidden
``.tmp-`` prefix and is never taken for a snapshot.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from weltklassebot.core.timeutil import NS_PER_SECOND, ns_to_basic
from weltklassebot.errors import UsageError

SIDECAR = ".sha256"
TMP_PREFIX = ".tmp-"

SNAPSHOT_RE = re.compile(r"^(\d{8}T\d{6}\.\d{6}Z)_([A-Za-z0-9][A-Za-z0-9._-]*)\.parquet$")
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_name(name: str) -> str:
    """Return ``name`` if it may name a snapshot; raise ``UsageError`` if not."""
    if not _NAME_OK.match(name) or name.lower().startswith("latest"):
        raise UsageError(
            f"snapshot name {name!r} is not allowed: use 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (and not 'latest')."
        )
    return name


def snapshot_file_name(created_ns: int, name: str) -> str:
    return f"{ns_to_basic(created_ns)}_{name}.parquet"


def parse_basic(stamp: str) -> int:
    """``20261124T153000.123456Z`` -> integer ns UTC."""
    from datetime import UTC, datetime

    moment = datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC)
    seconds = int(moment.replace(microsecond=0).timestamp())
    return seconds * NS_PER_SECOND + moment.microsecond * 1000


@dataclass(frozen=True)
class Entry:
    """One snapshot file in the directory."""

    file: str
    name: str
    created_ns: int
    path: Path

    @property
    def sidecar(self) -> Path:
        return self.path.with_name(self.file + SIDECAR)

    def recorded_sha256(self) -> str | None:
        return read_sidecar(self.sidecar)


def list_entries(directory: Path) -> list[Entry]:
    """Snapshots in ``directory``, oldest first (the time-stamp prefix sorts chronologically)."""
    found = (entry_at(directory, child.name) for child in directory.iterdir())
    return sorted((e for e in found if e is not None), key=lambda e: e.file)


def entry_at(directory: Path, file: str) -> Entry | None:
    """The snapshot ``file`` in ``directory``, or ``None`` if there is no such snapshot."""
    match = SNAPSHOT_RE.match(file)
    path = directory / file
    if match is None or path.is_symlink() or not path.is_file():
        return None
    return Entry(file, match.group(2), parse_basic(match.group(1)), path)


def is_orphan_sidecar(directory: Path, name: str) -> bool:
    """True for a snapshot's sidecar whose snapshot is gone (left by an interrupted command)."""
    return bool(name.endswith(SIDECAR) and SNAPSHOT_RE.match(name[: -len(SIDECAR)])
                and not (directory / name[: -len(SIDECAR)]).exists())


def read_sidecar(path: Path) -> str | None:
    """The hex digest from ``<file>.sha256`` (``sha256sum`` format); ``None`` if absent, ``""``
    if it holds no SHA-256 (garbled or unreadable)."""
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        return None
    except OSError:  # a directory or unreadable file in its place holds no SHA-256
        return ""
    token = text.strip().split()[0] if text.strip() else ""
    return token.lower() if re.fullmatch(r"[0-9a-fA-F]{64}", token) else ""


def write_sidecar(path: Path, sha: str, file: str) -> None:
    """Write a new sidecar (under a temporary name: the caller renames it into place)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o444)
    try:
        os.write(fd, f"{sha}  {file}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
