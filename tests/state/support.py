"""Builders shared by the state-store tests: configs, stores with a counting state, file faults."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from weltklassebot.state.codec import encode_record
from weltklassebot.state.fileops import FileOps
from weltklassebot.state.jsonl_store import JsonlStore, StoreConfig

KINDS = ("fill", "order", "cursor", "risk_transition")


class CountingState:
    """The caller's state in tests: how many data records were appended, and the last one."""

    def __init__(self, count: int = 0, last: int = 0) -> None:
        self.count = count
        self.last = last
        self.calls = 0

    def snapshot(self) -> dict[str, Any]:
        self.calls += 1
        return {"count": self.count, "last": self.last}

    def apply(self, seq: int) -> None:
        self.count += 1
        self.last = seq


CHILD_CONFIG = StoreConfig(
    max_segment_bytes=2048, max_segment_age_ns=None, retain_segments=2, batch_records=4
)
"""The config of ``crash_child.py``: small segments, so kills land in rotations too."""


def config(**overrides: Any) -> StoreConfig:
    """A small-segment config for tests (rotation after a few records)."""
    values: dict[str, Any] = {
        "max_segment_bytes": 1024,
        "max_segment_age_ns": None,
        "retain_segments": 3,
        "batch_records": 8,
    }
    values.update(overrides)
    return StoreConfig(**values)


def payload(seq: int) -> dict[str, Any]:
    """The deterministic payload of the ``seq``-th data record (any byte change is detectable)."""
    return {"n": seq, "pad": "x" * (seq * 7 % 41), "id": f"fill-{seq}"}


def open_store(
    directory: Path,
    state: CountingState | None = None,
    cfg: StoreConfig | None = None,
    ops: FileOps | None = None,
    clock: Any = None,
) -> tuple[JsonlStore, CountingState]:
    state = state or CountingState()
    store = JsonlStore.open(directory, cfg or config(), state.snapshot, clock, ops=ops)
    return store, state


def fill_records(
    store: JsonlStore, state: CountingState, n: int, *, durable: bool = True
) -> list[int]:
    """Append ``n`` fills; the k-th data record ever gets ``payload(k)`` and ``ts_for(k)``."""
    seqs = []
    for _ in range(n):
        index = state.count + 1
        seq = store.append("fill", payload(index), ts_for(index), durable=durable)
        state.apply(seq)
        seqs.append(seq)
    return seqs


def fill_until_rotation_due(store: JsonlStore, state: CountingState) -> None:
    """Append fills until the next one no longer fits the active segment."""
    while True:
        index = state.count + 1
        line = encode_record(store.next_seq, ts_for(index), "fill", payload(index))
        if (
            store.active_segment is not None
            and store.next_seq - 1 > int(store.active_segment.name[8:28])
            and store.active_bytes + len(line) > store.config.max_segment_bytes
        ):
            return
        fill_records(store, state, 1)


def ts_for(seq: int) -> int:
    return 1_700_000_000_000_000_000 + seq * 1_000_000


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("segment-*.jsonl"))


class FaultyOps(FileOps):
    """``FileOps`` that fails chosen calls with a chosen errno.

    ``fail`` maps an operation name (``write``, ``fsync``, ``open_new``, ``rename``,
    ``fsync_dir``, ``truncate``, ``unlink``, ``open_append``) to the number of further calls that
    fail; ``partial`` makes a failing ``write`` first write half of its data, as a full disk does.
    """

    def __init__(self, code: int = errno.ENOSPC, *, partial: bool = False) -> None:
        self.code = code
        self.partial = partial
        self.fail: dict[str, int] = {}
        self.calls: dict[str, int] = {}

    def _maybe_fail(self, name: str) -> bool:
        self.calls[name] = self.calls.get(name, 0) + 1
        remaining = self.fail.get(name, 0)
        if remaining > 0:
            self.fail[name] = remaining - 1
            return True
        return False

    def _error(self) -> OSError:
        return OSError(self.code, os.strerror(self.code))

    def write(self, fd: int, data: bytes) -> int:
        if self._maybe_fail("write"):
            if self.partial and len(data) > 1:
                os.write(fd, data[: len(data) // 2])
            raise self._error()
        return super().write(fd, data)

    def _wrap(self, name: str, call: Callable[[], Any]) -> Any:
        if self._maybe_fail(name):
            raise self._error()
        return call()

    def fsync(self, fd: int) -> None:
        self._wrap("fsync", lambda: super(FaultyOps, self).fsync(fd))

    def open_new(self, path: Path, mode: int) -> int:
        return int(self._wrap("open_new", lambda: super(FaultyOps, self).open_new(path, mode)))

    def open_append(self, path: Path) -> int:
        return int(self._wrap("open_append", lambda: super(FaultyOps, self).open_append(path)))

    def rename(self, source: Path, target: Path) -> None:
        self._wrap("rename", lambda: super(FaultyOps, self).rename(source, target))

    def fsync_dir(self, directory: Path) -> None:
        self._wrap("fsync_dir", lambda: super(FaultyOps, self).fsync_dir(directory))

    def truncate(self, fd: int, size: int) -> None:
        self._wrap("truncate", lambda: super(FaultyOps, self).truncate(fd, size))

    def unlink(self, path: Path) -> None:
        self._wrap("unlink", lambda: super(FaultyOps, self).unlink(path))


def set_mark(directory: Path, seq: int) -> None:
    """Rewrite ``store.mark`` as a writer that acknowledged only up to ``seq`` leaves it."""
    from weltklassebot.state.mark import MARK_NAME, encode_mark

    (directory / MARK_NAME).write_bytes(encode_mark(seq))
