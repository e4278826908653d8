"""The sweep's journal: ``DIR/cells.jsonl``, one line per finished cell, appended and fsync'd.

The first line holds the sweep's inputs and their digest; every later line is one finished cell
(its key, its row, how it ran). A line is written whole with one ``write`` and synced before the
next cell is recorded, so a sweep killed at any moment (``kill -9``, a power cut) loses at most
the cells in flight; a last line cut short by the kill is dropped when the sweep resumes. The
journal is turned into ``results.parquet`` at the end and kept, so a finished sweep can be
resumed (it has nothing left to run) and its outputs written again.

An equity curve a cell hands back (walk-forward out-of-sample cells) is written beside it, in
``DIR/curves/KEY.parquet``, synced before its line is.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from weltklassebot.errors import UsageError
from weltklassebot.sweep.cells import canonical

JOURNAL = "cells.jsonl"
CURVES = "curves"
LOCK = ".sweep.lock"
JOURNAL_VERSION = 1


@dataclass(frozen=True)
class Finished:
    key: str
    row: dict[str, Any]  # the cell's results.parquet row
    run: dict[str, Any]  # how it ran: path, bars, seconds


class Journal:
    """Append-only record of finished cells; holds a lock on DIR while it is open."""

    def __init__(self, directory: Path, inputs: dict[str, Any], *, resume: bool) -> None:
        self.directory = directory
        self.path = directory / JOURNAL
        self.inputs_sha256 = _digest(inputs)
        self.finished: dict[str, Finished] = {}
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock)
            raise UsageError(f"{directory} is in use by another sweep (it holds {LOCK}); wait "
                             "for it to finish or choose another --out.") from None
        try:
            self._open(inputs, resume)
        except BaseException:
            os.close(self._lock)
            raise

    def _open(self, inputs: dict[str, Any], resume: bool) -> None:
        if self.path.exists():
            if not resume:
                raise UsageError(
                    f"{self.directory} already holds a sweep ({JOURNAL}); pass --resume to "
                    "finish it, or choose another --out.")
            self._read(inputs)
        else:
            others = [p.name for p in self.directory.iterdir() if p.name != LOCK]
            if others:
                raise UsageError(
                    f"--out {self.directory} is not empty and holds no sweep (it has "
                    f"{', '.join(sorted(others)[:3])}); choose a new or empty directory.")
            header = {"journal": JOURNAL_VERSION, "inputs_sha256": self.inputs_sha256,
                      "inputs": inputs}
            self._append(canonical(header))
        self._file = self.path.open("a", encoding="utf-8")

    def _read(self, inputs: dict[str, Any]) -> None:
        raw = self.path.read_bytes()
        keep = len(raw)
        if raw and not raw.endswith(b"\n"):
            keep = raw.rfind(b"\n") + 1  # the line a kill cut short
        lines = raw[:keep].decode("utf-8").splitlines()
        if not lines:
            raise UsageError(f"{self.path} has no header line: it is not a sweep journal. "
                             "Start the sweep again in a new --out directory.")
        try:
            header = json.loads(lines[0])
        except ValueError:
            header = {}
        if header.get("journal") != JOURNAL_VERSION:
            raise UsageError(f"{self.path} is not a sweep journal this version writes; start "
                             "the sweep again in a new --out directory.")
        if header.get("inputs_sha256") != self.inputs_sha256:
            differ = _differences(header.get("inputs") or {}, inputs)
            raise UsageError(
                f"--resume: {self.directory} holds a sweep with other inputs (these differ: "
                f"{differ}); resume it with the command line "
                "it was started with (sweep.json or the journal's first line has its inputs), "
                "or choose another --out.")
        for number, line in enumerate(lines[1:], start=2):
            try:
                entry = json.loads(line)
                self.finished[str(entry["key"])] = Finished(str(entry["key"]), entry["row"],
                                                            entry["run"])
            except (ValueError, KeyError, TypeError):
                raise UsageError(f"{self.path} line {number} is damaged (not a cell record); "
                                 "remove that line to run the cell again, then --resume."
                                 ) from None
        if keep != len(raw):
            with self.path.open("r+b") as handle:
                handle.truncate(keep)
                os.fsync(handle.fileno())

    def _append(self, line: str) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        _sync_dir(self.directory)

    def record(self, key: str, row: dict[str, Any], run: dict[str, Any],
               curve: tuple[list[int], list[float]] | None = None) -> None:
        """Make one finished cell durable (its curve first, then its line)."""
        if curve is not None:
            write_curve(self.directory / CURVES / f"{key}.parquet", curve)
            run = {**run, "curve": f"{CURVES}/{key}.parquet"}
        line = canonical({"key": key, "row": row, "run": run})
        self._file.write(line + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.finished[key] = Finished(key, row, run)

    def curve(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        table = pq.read_table(self.directory / CURVES / f"{key}.parquet")
        return (np.asarray(table.column("ts").to_numpy(), dtype=np.int64),
                np.asarray(table.column("equity").to_numpy(), dtype=np.float64))

    def close(self) -> None:
        if getattr(self, "_file", None) is not None:
            self._file.close()
        os.close(self._lock)


def write_curve(path: Path, curve: tuple[list[int], list[float]]) -> None:
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    table = pa.table({"ts": pa.array(curve[0], pa.int64()),
                      "equity": pa.array(curve[1], pa.float64())})
    pq.write_table(table, tmp)
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _sync_dir(path.parent)


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _digest(inputs: dict[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(canonical(inputs).encode()).hexdigest()


def _differences(recorded: dict[str, Any], now: dict[str, Any]) -> str:
    """The input keys whose values differ, e.g. ``grid, seeds``."""
    keys = sorted(k for k in set(recorded) | set(now)
                  if canonical(recorded.get(k)) != canonical(now.get(k)))
    return ", ".join(keys) or "the recorded digest"
