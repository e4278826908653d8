"""``quarantine/``: where the catalog keeps what it takes out of the way, instead of deleting it.

A regular file found where the ``latest.parquet`` link belongs, a snapshot that fails its SHA-256
check, a sidecar without its snapshot, torn bytes at the end of the history, a damaged history: each
is moved (a rename on the same file system, so nothing is copied) or, for torn bytes, written into
``quarantine/`` beside the catalog, under ``<UTC time>_<original name>``. Every move is listed in
the history record of the command that made it and printed by that command. Nothing in
``quarantine/`` is read by the catalog again; an operator inspects it and deletes it by hand.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weltklassebot.core.clock import Clock
from weltklassebot.core.timeutil import ns_to_basic
from weltklassebot.fsutil import adopt_directory_owner, fsync_dir, write_and_sync

QUARANTINE = "quarantine"


@dataclass(frozen=True)
class Quarantined:
    """One thing moved into ``quarantine/``."""

    file: str
    """Its name in the catalog (or a description, for torn history bytes)."""
    to: str
    """Its path relative to the catalog directory, ``quarantine/...``."""
    reason: str

    def to_json_dict(self) -> dict[str, Any]:
        return {"file": self.file, "to": self.to, "reason": self.reason}

    def describe(self) -> str:
        return f"moved {self.file} to {self.to} ({self.reason})"


def _quarantine_dir(directory: Path) -> Path:
    place = directory / QUARANTINE
    if not place.is_dir():
        place.mkdir(mode=0o755)
        adopt_directory_owner(place, directory)
        fsync_dir(directory)
    return place


def _free_name(place: Path, stem: str) -> Path:
    candidate = place / stem
    number = 1
    while os.path.lexists(candidate):
        number += 1
        candidate = place / f"{stem}.{number}"
    return candidate


def move_to_quarantine(directory: Path, name: str, reason: str, clock: Clock) -> Quarantined:
    """Move ``directory/name`` (file, link or directory) into ``quarantine/``, durably."""
    place = _quarantine_dir(directory)
    destination = _free_name(place, f"{ns_to_basic(clock.now_ns())}_{name}")
    os.rename(directory / name, destination)
    fsync_dir(place)
    fsync_dir(directory)
    return Quarantined(name, f"{QUARANTINE}/{destination.name}", reason)


def write_to_quarantine(directory: Path, name: str, data: bytes, what: str, reason: str,
                        clock: Clock) -> Quarantined:
    """Keep ``data`` (bytes about to be cut from a file) as a new file in ``quarantine/``."""
    place = _quarantine_dir(directory)
    destination = _free_name(place, f"{ns_to_basic(clock.now_ns())}_{name}")
    fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    try:
        write_and_sync(fd, data)
    finally:
        os.close(fd)
    adopt_directory_owner(destination, place)
    fsync_dir(place)
    return Quarantined(what, f"{QUARANTINE}/{destination.name}", reason)
