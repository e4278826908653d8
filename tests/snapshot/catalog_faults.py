"""Generators of catalog damage for the fault-injection tests.

Each fault class is a function ``(directory, rng) -> Fault`` that damages a healthy catalog at a
random place: bytes of the history flipped or cut, trailing history lines removed, torn bytes
appended, the head damaged, a regular file or a foreign link where ``latest.parquet`` belongs,
snapshots and sidecars damaged. ``Fault.harmful`` says whether ``verify`` must fail afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from weltklassebot.data.catalog import HEAD, HISTORY, LATEST, Catalog

SKIP = {".lock"}


@dataclass
class Fault:
    kind: str
    detail: str
    harmful: bool = True


def _flip(path: Path, rng: np.random.Generator, *, lo: int = 0, hi: int | None = None) -> str:
    data = bytearray(path.read_bytes())
    top = len(data) if hi is None else hi
    at = int(rng.integers(lo, top))
    bit = 1 << int(rng.integers(0, 8))
    data[at] ^= bit
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))
    return f"{path.name} byte {at} ^= {bit:#04x}"


def history_flip(directory: Path, rng: np.random.Generator) -> Fault:
    return Fault("history_flip", _flip(directory / HISTORY, rng))


def history_cut(directory: Path, rng: np.random.Generator) -> Fault:
    path = directory / HISTORY
    size = path.stat().st_size
    keep = int(rng.integers(0, size))
    with path.open("r+b") as fh:
        fh.truncate(keep)
    return Fault("history_cut", f"{HISTORY} cut from {size} to {keep} bytes")


def history_drop_lines(directory: Path, rng: np.random.Generator) -> Fault:
    path = directory / HISTORY
    lines = path.read_bytes().splitlines(keepends=True)
    drop = int(rng.integers(1, len(lines) + 1))
    path.write_bytes(b"".join(lines[: len(lines) - drop]))
    return Fault("history_drop_lines", f"removed the last {drop} of {len(lines)} lines")


def history_torn_tail(directory: Path, rng: np.random.Generator) -> Fault:
    """A crash mid-append: a prefix of a plausible next record, no newline."""
    path = directory / HISTORY
    last = json.loads(path.read_bytes().splitlines()[-1])
    last["seq"] = last.get("seq", 0) + 1
    last["prev_sha256"] = hashlib.sha256(path.read_bytes().splitlines()[-1]).hexdigest()
    line = json.dumps(last, sort_keys=True, separators=(",", ":")).encode()
    cut = int(rng.integers(1, len(line)))
    with path.open("ab") as fh:
        fh.write(line[:cut])
    return Fault("history_torn_tail", f"appended {cut} of {len(line)} bytes of a record")


def head_damage(directory: Path, rng: np.random.Generator) -> Fault:
    path = directory / HEAD
    if rng.integers(0, 3) == 0:
        path.unlink()
        return Fault("head_damage", f"{HEAD} deleted")
    return Fault("head_damage", _flip(path, rng))


def regular_file_latest(directory: Path, rng: np.random.Generator) -> Fault:
    link = directory / LATEST
    target = directory / os.readlink(link)
    link.unlink()
    if rng.integers(0, 2) == 0:
        link.write_bytes(target.read_bytes())
        return Fault("regular_file_latest", "latest.parquet replaced by a copy of its target")
    link.write_bytes(rng.bytes(int(rng.integers(1, 20_000))))
    return Fault("regular_file_latest", "latest.parquet replaced by random bytes")


def link_outside(directory: Path, rng: np.random.Generator) -> Fault:
    link = directory / LATEST
    outside = directory.parent / f"elsewhere-{int(rng.integers(0, 10**6))}.parquet"
    exists = bool(rng.integers(0, 2))
    if exists:
        outside.write_bytes((directory / os.readlink(link)).read_bytes())
    link.unlink()
    link.symlink_to(os.path.relpath(outside, directory) if rng.integers(0, 2) else outside)
    return Fault("link_outside", f"latest.parquet -> {outside.name} (exists: {exists})")


def dangling_latest(directory: Path, rng: np.random.Generator) -> Fault:
    catalog = Catalog(directory)
    entry = catalog.latest().entry
    assert entry is not None
    entry.path.unlink()
    if rng.integers(0, 2):
        entry.sidecar.unlink()
    return Fault("dangling_latest", f"the target {entry.file} deleted")


def _damage_entry(directory: Path, file: str, rng: np.random.Generator) -> str:
    path = directory / file
    sidecar = directory / (file + ".sha256")
    how = int(rng.integers(0, 4))
    if how == 0:
        return _flip(path, rng)
    if how == 1:
        sidecar.unlink()
        return f"{sidecar.name} deleted"
    if how == 2:
        os.chmod(sidecar, 0o644)
        sidecar.write_bytes(rng.bytes(int(rng.integers(0, 80))).replace(b"\n", b" "))
        return f"{sidecar.name} garbled"
    return _flip(sidecar, rng, hi=64)


def snapshot_damage(directory: Path, rng: np.random.Generator) -> Fault:
    """One to all snapshots damaged: bytes flipped, sidecar removed, garbled or flipped."""
    files = [e.file for e in Catalog(directory).entries()]
    count = int(rng.integers(1, len(files) + 1))
    chosen = sorted(rng.choice(len(files), size=count, replace=False).tolist())
    return Fault("snapshot_damage", "; ".join(_damage_entry(directory, files[i], rng)
                                              for i in chosen))


FAULTS: dict[str, Callable[[Path, np.random.Generator], Fault]] = {
    f.__name__: f for f in (history_flip, history_cut, history_drop_lines, history_torn_tail,
                            head_damage, regular_file_latest, link_outside, dangling_latest,
                            snapshot_damage)
}


def inventory(directory: Path) -> dict[str, bytes]:
    """Every regular file under ``directory`` (quarantine included) by relative path."""
    found = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.name not in SKIP:
            found[str(path.relative_to(directory))] = path.read_bytes()
    return found


def lost(before: dict[str, bytes], after: dict[str, bytes]) -> list[str]:
    """Files of ``before`` whose bytes are nowhere in ``after``.

    The history may only grow (its old bytes a prefix of the new) or be kept in quarantine
    whole or in two parts (a prefix kept in place and torn bytes quarantined); the head is
    derived from the history and rewritten by design.
    """
    kept = list(after.values())
    missing = []
    for name, data in before.items():
        if name == HEAD or name.startswith(".tmp-"):
            continue
        if name == HISTORY:
            now = after.get(HISTORY, b"")
            if now.startswith(data) or data in kept:
                continue
            cut = data.rfind(b"\n") + 1
            if now.startswith(data[:cut]) and data[cut:] in kept:
                continue
            missing.append(name)
        elif data not in kept:
            missing.append(name)
    return missing
