"""A live run's outputs while it runs: plain append-only files that survive restarts.

A backtest streams fills, orders and equity points straight into Parquet, which cannot be
appended to by a second process. A live run may be stopped and restarted many times before its
feed ends, so it spools its outputs into ``<state dir>/spool/<run id>/`` as lines:

    fills.jsonl     one fill per line (``engine.state.fill_data``)
    orders.jsonl    one closed order per line (``engine.state.order_data``), in close order
    equity.txt      ``ts equity cash`` per equity point (integers: ns and money units)
    events.jsonl    the run directory's ``events.jsonl`` lines as they will appear

Every engine checkpoint records the spool's byte offsets with the engine state. A restart
truncates each file to the offsets of the state it resumes from, then re-runs the events after
it, which writes the same lines again (the engine is deterministic): whatever a killed process
left after those offsets is replaced, never duplicated. At the end of the feed the spool becomes
an ordinary run directory (``runs/live_output.py``) and is removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from weltklassebot.core.ints import int_array
from weltklassebot.engine.state import fill_data, fill_from, order_data, order_from
from weltklassebot.fsutil import adopt_directory_owner, fsync_dir
from weltklassebot.model.records import Fill, Order

SPOOL_FILES = ("fills.jsonl", "orders.jsonl", "equity.txt", "events.jsonl")
_JSON = json.JSONEncoder(separators=(",", ":"), default=str)
_EVENT_JSON = json.JSONEncoder(sort_keys=True, default=str)


class SpoolDamaged(ValueError):
    """A spool file is shorter than the offsets a checkpoint recorded."""


class RunSpool:
    """The four spool files of one run, opened for appending."""

    def __init__(self, directory: Path, offsets: dict[str, int] | None) -> None:
        self.directory = directory
        created = not directory.exists()
        directory.mkdir(parents=True, exist_ok=True)
        if created:
            adopt_directory_owner(directory)
            with contextlib.suppress(OSError):
                fsync_dir(directory.parent)
        # Raw descriptors and our own buffers: a write that fails (a full disk) keeps what was
        # not written and is retried by the next flush, so no line is lost or written twice.
        self._fds: dict[str, int] = {}
        self._buffers: dict[str, bytearray] = {}
        self._sizes: dict[str, int] = {}
        for name in SPOOL_FILES:
            path = directory / name
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
            self._fds[name] = fd
            if created:
                adopt_directory_owner(path)
            want = 0 if offsets is None else int(offsets.get(name, 0))
            size = os.fstat(fd).st_size
            if size < want:
                self.close()
                raise SpoolDamaged(
                    f"{path} holds {size} bytes, fewer than the {want} its last checkpoint "
                    "recorded: the file was cut or replaced")
            if size > want:
                os.ftruncate(fd, want)  # a killed process's lines after the checkpoint
            self._buffers[name] = bytearray()
            self._sizes[name] = want

    # -- writing -------------------------------------------------------------------------------

    def add_fills(self, fills: list[Fill]) -> None:
        if fills:
            dumps = _JSON.encode
            self._buffers["fills.jsonl"] += "".join(
                dumps(fill_data(f)) + "\n" for f in fills).encode()

    def add_orders(self, orders: list[Order]) -> None:
        if orders:
            dumps = _JSON.encode
            self._buffers["orders.jsonl"] += "".join(
                dumps(order_data(o)) + "\n" for o in orders).encode()

    def add_equity(self, ts: list[int], equity: list[int], cash: list[int]) -> None:
        if ts:
            self._buffers["equity.txt"] += "".join(
                f"{t} {e} {c}\n" for t, e, c in zip(ts, equity, cash, strict=True)).encode()

    def add_events(self, events: list[dict[str, Any]]) -> None:
        if events:
            self._buffers["events.jsonl"] += "".join(
                _EVENT_JSON.encode(e) + "\n" for e in events).encode()

    @property
    def pending_bytes(self) -> int:
        return sum(len(b) for b in self._buffers.values())

    def flush(self) -> None:
        """Hand buffered lines to the OS (a killed process loses nothing it flushed; what a
        power cut loses after the last checkpoint, the restart re-runs).

        Raises ``OSError`` (a full disk): what was not written stays buffered for the next call.
        """
        for name, buffer in self._buffers.items():
            fd = self._fds[name]
            while buffer:
                written = os.write(fd, buffer)
                del buffer[:written]
                self._sizes[name] += written

    def offsets(self) -> dict[str, int]:
        """Bytes in each file once flushed: what a checkpoint records."""
        self.flush()
        return dict(self._sizes)

    def sync(self) -> None:
        self.flush()
        for fd in self._fds.values():
            os.fsync(fd)

    def close(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = {}

    def remove(self) -> None:
        self.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- reading (the write-out at the end of a run) ---------------------------------------------

    def _lines(self, name: str) -> Iterator[str]:
        self.flush()
        with (self.directory / name).open(encoding="utf-8") as handle:
            for line in handle:
                if line.endswith("\n"):
                    yield line

    def fills(self, batch: int = 65536) -> Iterator[list[Fill]]:
        yield from _batched((fill_from(json.loads(line)) for line in self._lines("fills.jsonl")),
                            batch)

    def orders(self, batch: int = 65536) -> Iterator[list[Order]]:
        yield from _batched((order_from(json.loads(line))
                             for line in self._lines("orders.jsonl")), batch)

    def equity(self, batch: int = 65536) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        rows: list[tuple[int, int, int]] = []
        for line in self._lines("equity.txt"):
            t, e, c = line.split()
            rows.append((int(t), int(e), int(c)))
            if len(rows) >= batch:
                yield _equity_arrays(rows)
                rows = []
        if rows:
            yield _equity_arrays(rows)

    def event_lines(self) -> Iterator[str]:
        yield from self._lines("events.jsonl")


def _equity_arrays(rows: list[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ts = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    # Money units may pass int64 in a long run of a large account: keep Python ints then.
    equity = int_array([r[1] for r in rows])
    cash = int_array([r[2] for r in rows])
    return ts, equity, cash


def _batched(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
