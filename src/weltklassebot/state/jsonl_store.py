"""The crash-safe, rotating JSON Lines state store (DESIGN section 8; docs/state-store.md).

Records are appended to the active segment of a state directory, each one line with a schema
version, a sequence number, the caller's timestamp, a kind, a JSON payload and a SHA-256 checksum.
A new segment starts, with a checkpoint of the caller's full state, when the active one grows
past ``max_segment_bytes`` or ``max_segment_age_ns``; old segments beyond ``retain_segments`` are
removed. Recovery is the last checkpoint plus the records after it.

Durability: ``append(..., durable=True)`` returns only after the record (and every buffered record
before it) is written and ``fdatasync``'d. ``durable=False`` records wait in memory and are written
and synced together every ``batch_records`` records (or ``batch_bytes``), at the next durable
append, on rotation, ``flush()`` and ``close()``; a crash loses at most those unflushed records,
never a durable one. Segment creation, rename and removal are followed by a directory sync.

A write that fails raises ``StoreWriteError``; the segment is cut back to its last good length and
the failed record's sequence number is used again by the next append. Not thread-safe: one
writer thread per store, one store (process) per directory, enforced with a lock file.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from weltklassebot.core.clock import Clock
from weltklassebot.fsutil import adopt_directory_owner
from weltklassebot.state.codec import CHECKPOINT_KIND, KNOWN_KINDS, Record, encode_record
from weltklassebot.state.config import StoreConfig
from weltklassebot.state.errors import (
    StoreCorrupt,
    StoreIncompatible,
    StoreLocked,
    StoreUnusable,
    StoreWriteError,
    describe_os_error,
)
from weltklassebot.state.fileops import FileOps
from weltklassebot.state.lock import StoreLock
from weltklassebot.state.mark import MARK_NAME, encode_mark
from weltklassebot.state.recovery import RecoveryResult, recover
from weltklassebot.state.segment import TEMPORARY_SUFFIX, list_directory, segment_name

__all__ = [
    "KNOWN_KINDS",
    "CheckpointProvider",
    "JsonlStore",
    "Record",
    "RecoveryResult",
    "StoreConfig",
    "StoreCorrupt",
    "StoreIncompatible",
    "StoreLocked",
    "StoreUnusable",
    "StoreWriteError",
    "recover",
]

CheckpointProvider = Callable[[], dict[str, Any]]
"""Returns the caller's full state, reflecting every record appended so far (JSON-able)."""


@functools.cache
def _logger() -> Any:
    # structlog costs ~70 ms to import; the store logs only rare events, so import it on first use.
    from weltklassebot.logs import get_logger

    return get_logger("weltklassebot.state")


class JsonlStore:
    """An open state store: recovered on open, then appended to. Create it with ``open``."""

    def __init__(
        self,
        directory: Path,
        config: StoreConfig,
        checkpoint: CheckpointProvider,
        clock: Clock | None,
        ops: FileOps,
        lock: StoreLock,
        recovery: RecoveryResult,
    ) -> None:
        self.directory = directory
        self.config = config
        self.recovery = recovery
        self.write_errors = 0
        self.prune_errors = 0
        self.rotations = 0
        self.mark_errors = 0
        self.open_error: StoreWriteError | None = None
        self._provider = checkpoint
        self._clock = clock
        self._ops = ops
        self._lock = lock
        self._next_seq = recovery.next_seq
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._fd: int | None = None
        self._mark_fd: int | None = None
        self._marked = -1
        self._active: Path | None = None
        self._active_first_seq = 0
        self._active_birth_ns = 0
        self._size = 0
        self._cut_to: int | None = None
        self._drop: Path | None = None
        self._temporaries = recovery.temporaries
        self._ready = False
        self._closed = False
        newest = recovery.segments[-1] if recovery.segments else None
        if newest is not None and newest.records:
            self._active = directory / newest.name
            self._active_first_seq = newest.first_seq
            self._active_birth_ns = recovery.checkpoint_ts_ns or 0
            self._size = newest.good_bytes
            if newest.size != newest.good_bytes:
                self._cut_to = newest.good_bytes
        elif newest is not None:
            self._drop = directory / newest.name  # no complete record: replaced by a new segment

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        directory: Path,
        config: StoreConfig,
        checkpoint: CheckpointProvider,
        clock: Clock | None = None,
        *,
        ops: FileOps | None = None,
    ) -> JsonlStore:
        """Open (creating if needed) and recover the store in ``directory``.

        The result of recovery is ``store.recovery``. A torn final record is dropped, logged and
        counted, and cut off the file before the first append. If the directory cannot be written
        (read-only filesystem, permissions, full disk), the store still opens with the recovered
        state, ``writable`` is false, ``open_error`` says why and every append retries first.

        Raises
        ------
        StoreCorrupt
            A record other than the final one is damaged (exit 1).
        StoreIncompatible, StoreUnusable
            Newer schema or unregistered kind; directory missing and not creatable (exit 2).
        StoreLocked
            Another process has the store open (exit 3).
        """
        directory = Path(directory)
        _ensure_directory(directory, config.dir_mode)
        lock = StoreLock.acquire(directory, config.file_mode)
        try:
            recovery = recover(directory, config.kinds)
        except BaseException:
            lock.release()
            raise
        store = cls(directory, config, checkpoint, clock, ops or FileOps(), lock, recovery)
        log = _logger()
        if recovery.torn is not None:
            torn = recovery.torn
            log.warning(
                "state_torn_tail_dropped",
                directory=str(directory),
                file=torn.path.name,
                line=torn.line,
                seq=torn.seq,
                dropped_bytes=torn.dropped_bytes,
                reason=torn.reason,
            )
        try:
            store._prepare()
        except StoreWriteError as exc:
            store.open_error = exc
        log.info(
            "state_store_opened",
            directory=str(directory),
            next_seq=recovery.next_seq,
            checkpoint_seq=recovery.checkpoint_seq,
            records_after_checkpoint=len(recovery.records),
            segments=len(recovery.segments),
            torn_dropped=recovery.torn_dropped,
            writable=store.writable,
        )
        return store

    # -- state ---------------------------------------------------------------------------------

    @property
    def next_seq(self) -> int:
        """Sequence number the next record will get."""
        return self._next_seq

    @property
    def writable(self) -> bool:
        """False while the last attempt to write (or to prepare writing) failed."""
        return self._ready

    @property
    def torn_dropped(self) -> int:
        """Torn records dropped when the store was opened (0 or 1)."""
        return self.recovery.torn_dropped

    @property
    def pending(self) -> int:
        """Buffered ``durable=False`` records not yet written."""
        return len(self._pending)

    @property
    def active_bytes(self) -> int:
        """Bytes written to the active segment (buffered records not included)."""
        return self._size

    @property
    def active_segment(self) -> Path | None:
        """The segment appends go to (``None`` before the first one exists)."""
        return self._active

    # -- writing -------------------------------------------------------------------------------

    def append(
        self, kind: str, payload: dict[str, Any], ts_ns: int, *, durable: bool = True
    ) -> int:
        """Append one record and return its sequence number.

        With ``durable`` (the default) the record is on disk when this returns: use it for every
        record that changes positions, fills, orders or risk state. ``durable=False`` buffers the
        record (feed cursors and other high-rate records); it becomes durable with the batch.

        Raises
        ------
        StoreWriteError
            The write failed; nothing written before is damaged and the sequence number is
            not consumed. Move risk to HALTED; the next append retries.
        ValueError, TypeError
            Unregistered or reserved kind, bad timestamp, payload that is not canonical JSON.
        """
        self._check_usable()
        if kind == CHECKPOINT_KIND:
            raise ValueError("checkpoint records are written by the store: call checkpoint()")
        if kind not in self.config.kinds:
            raise ValueError(
                f"record kind {kind!r} is not registered; known kinds: "
                f"{', '.join(sorted(self.config.kinds))} (add it with StoreConfig.with_kinds)"
            )
        _check_ts(ts_ns)
        if not isinstance(payload, dict):
            raise TypeError(f"the payload of a {kind!r} record must be a dict, not {payload!r}")
        self._prepare()
        seq = self._next_seq
        line = encode_record(seq, ts_ns, kind, payload)
        if self._rotation_due(ts_ns, len(line)):
            self._rotate(ts_ns, seq)
            seq = self._next_seq
            line = encode_record(seq, ts_ns, kind, payload)
        config = self.config
        if (
            durable
            or len(self._pending) + 1 >= config.batch_records
            or self._pending_bytes + len(line) >= config.batch_bytes
        ):
            self._write([*self._pending, line], seq, seq if durable else None)
            self._pending.clear()
            self._pending_bytes = 0
        else:
            self._pending.append(line)
            self._pending_bytes += len(line)
        self._next_seq = seq + 1
        return seq

    def checkpoint(self, ts_ns: int) -> int:
        """Start a new segment with a checkpoint of the caller's state now; return its sequence.

        Call it before a clean shutdown so the next start replays nothing.
        """
        self._check_usable()
        _check_ts(ts_ns)
        self._prepare()
        self._rotate(ts_ns, self._next_seq)
        return self._active_first_seq

    def flush(self) -> None:
        """Write and sync every buffered record."""
        self._check_usable()
        if not self._pending:
            return
        self._prepare()
        self._write(self._pending, None, self._next_seq - 1)  # the caller waits: acknowledged
        self._pending.clear()
        self._pending_bytes = 0

    def close(self) -> None:
        """Flush, then release the segment and the directory lock (idempotent).

        Raises ``StoreWriteError`` if the final flush fails; the store is closed all the same.
        """
        if self._closed:
            return
        failure: StoreWriteError | None = None
        try:
            self.flush()
        except StoreWriteError as exc:
            failure = exc
        finally:
            self._closed = True
            if self._fd is not None:
                fd, self._fd = self._fd, None
                with contextlib.suppress(OSError):  # data is synced, or the failure reported
                    self._ops.close(fd)
            if self._mark_fd is not None:
                fd, self._mark_fd = self._mark_fd, None
                with contextlib.suppress(OSError):  # a lagging mark is safe (mark.py)
                    self._ops.fsync(fd)
                with contextlib.suppress(OSError):
                    self._ops.close(fd)
            self._lock.release()
        if failure is not None:
            raise failure

    def __enter__(self) -> JsonlStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._closed:
            raise ValueError(f"state store {self.directory} is closed")

    def _prepare(self) -> None:
        # Everything that must hold before bytes are appended; retried until it succeeds.
        if self._ready:
            return
        if not self._lock.held:
            self._lock = StoreLock.acquire(self.directory, self.config.file_mode)
            if not self._lock.held:
                reason = self._lock.error or OSError(errno.EROFS, "cannot create")
                raise self._failed("create", self._lock.path, reason, None)
        operation, path = "remove", self._drop
        try:
            if self._drop is not None:
                self._ops.unlink(self._drop)
                self._ops.fsync_dir(self.directory)
                self._drop = None
            if self._mark_fd is None:
                operation, path = "open", self.directory / MARK_NAME
                mark_path = self.directory / MARK_NAME
                self._mark_fd = self._ops.open_mark(mark_path, self.config.file_mode)
                self._ops.adopt_owner(mark_path, self.directory)
                self._marked = -1
            if self._active is not None:
                operation, path = "open", self._active
                if self._fd is None:
                    self._fd = self._ops.open_append(self._active)
                if self._cut_to is not None:
                    operation = "cut back"
                    self._ops.truncate(self._fd, self._cut_to)
                    self._ops.fsync(self._fd)
                    self._cut_to = None
            if self._marked != self._next_seq - 1:
                operation, path = "write", self.directory / MARK_NAME
                self._ops.write_mark(self._mark_fd, encode_mark(self._next_seq - 1))
                self._ops.fsync(self._mark_fd)
                self._marked = self._next_seq - 1
            self._remove_temporaries()
        except OSError as exc:
            raise self._failed(operation, path or self.directory, exc, None) from exc
        self._ready = True

    def _mark(self, seq: int, *, sync: bool = False) -> None:
        # After the data it names is synced, never before: the mark must not run ahead of the
        # data. A failure leaves the mark behind, which is safe; it is counted and retried.
        fd = self._mark_fd
        if fd is None or seq <= self._marked:
            return
        try:
            self._ops.write_mark(fd, encode_mark(seq))
            if sync:
                self._ops.fsync(fd)
        except OSError as exc:
            self.mark_errors += 1
            _logger().warning(
                "state_mark_write_failed",
                directory=str(self.directory),
                seq=seq,
                error=describe_os_error(exc),
                mark_errors=self.mark_errors,
            )
            return
        self._marked = seq

    def _remove_temporaries(self) -> None:
        temporaries, self._temporaries = self._temporaries, ()
        for path in temporaries:
            try:
                self._ops.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:  # harmless: a later rotation to that name overwrites it
                _logger().warning(
                    "state_temporary_left", file=path.name, error=describe_os_error(exc)
                )

    def _rotation_due(self, ts_ns: int, line_bytes: int) -> bool:
        if self._active is None:
            return True
        if self._next_seq - 1 <= self._active_first_seq:
            return False  # the segment holds only its checkpoint: rotating again gains nothing
        if self._size + self._pending_bytes + line_bytes > self.config.max_segment_bytes:
            return True
        max_age = self.config.max_segment_age_ns
        if max_age is None:
            return False
        now = self._clock.now_ns() if self._clock is not None else ts_ns
        return now - self._active_birth_ns >= max_age

    def _write(self, lines: list[bytes], seq: int | None, acknowledged: int | None) -> None:
        # ``acknowledged``: the sequence number a caller waits for (a durable append, flush);
        # None for a batch written because it grew full, which nobody waits for: its records
        # stay above the mark until the next acknowledgement, and a crash may drop them.
        data = b"".join(lines)
        fd, path = self._fd, self._active
        assert fd is not None, "writing before a segment exists"
        assert path is not None
        try:
            self._ops.write_all(fd, data)
            self._ops.fsync(fd)
        except OSError as exc:
            try:
                self._ops.truncate(fd, self._size)
            except OSError:
                self._cut_to = self._size  # retried before the next write
                self._ready = False
            raise self._failed("append to", path, exc, seq) from exc
        self._size += len(data)
        if acknowledged is not None:
            self._mark(acknowledged)

    def _rotate(self, ts_ns: int, seq: int) -> None:
        if self._pending:
            self._write(self._pending, seq, None)
            self._pending.clear()
            self._pending_bytes = 0
        state = self._provider()
        if not isinstance(state, dict):
            raise TypeError(f"the checkpoint provider returned {type(state).__name__}, not dict")
        first_seq = self._next_seq
        line = encode_record(first_seq, ts_ns, CHECKPOINT_KIND, state)
        final = self.directory / segment_name(first_seq)
        temporary = final.with_name(final.name + TEMPORARY_SUFFIX)
        ops = self._ops
        fd: int | None = None
        operation, path = "create", temporary
        try:
            fd = ops.open_new(temporary, self.config.file_mode)
            ops.adopt_owner(temporary, self.directory)
            operation = "write"
            ops.write_all(fd, line)
            operation = "sync"
            ops.fsync(fd)
            operation = "rename"
            ops.rename(temporary, final)
        except OSError as exc:
            _discard(ops, fd, temporary)
            raise self._failed(operation, path, exc, seq) from exc
        assert fd is not None
        try:
            ops.fsync_dir(self.directory)
        except OSError as exc:
            # The new segment is complete but its name may not be durable: take it back so
            # memory and disk agree. If even that fails, it is valid, so adopt it.
            try:
                ops.unlink(final)
            except OSError:
                self._switch(final, fd, first_seq, ts_ns, len(line))
            else:
                _discard(ops, fd, None)
            raise self._failed("sync the directory after creating", final, exc, seq) from exc
        self._switch(final, fd, first_seq, ts_ns, len(line))
        self._mark(first_seq, sync=True)
        _logger().info(
            "state_segment_rotated",
            directory=str(self.directory),
            segment=final.name,
            checkpoint_seq=first_seq,
            checkpoint_bytes=len(line),
        )
        self._prune()

    def _switch(self, path: Path, fd: int, first_seq: int, ts_ns: int, size: int) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):  # everything in it was synced before rotating
                self._ops.close(self._fd)
        self._fd = fd
        self._active = path
        self._active_first_seq = first_seq
        self._active_birth_ns = ts_ns
        self._size = size
        self._cut_to = None
        self._next_seq = first_seq + 1
        self.rotations += 1

    def _prune(self) -> None:
        try:
            old = [
                ref
                for ref in list_directory(self.directory).segments
                if ref.first_seq < self._active_first_seq
            ]
            excess = old[: max(0, len(old) - self.config.retain_segments)]
            for ref in excess:
                self._ops.unlink(ref.path)
                _logger().info("state_segment_removed", segment=ref.path.name)
            if excess:
                self._ops.fsync_dir(self.directory)
        except (OSError, StoreUnusable) as exc:
            # The record is safe; only disk space is at stake. Counted and retried next rotation.
            self.prune_errors += 1
            _logger().warning("state_prune_failed", directory=str(self.directory), error=str(exc))

    def _failed(self, operation: str, path: Path, exc: OSError, seq: int | None) -> StoreWriteError:
        self.write_errors += 1
        error = StoreWriteError(operation, path, exc, seq=seq)
        _logger().error(
            "state_write_failed",
            directory=str(self.directory),
            operation=operation,
            file=path.name,
            errno=errno.errorcode.get(exc.errno or 0, "EUNKNOWN"),
            seq=seq,
            write_errors=self.write_errors,
        )
        return error


def _check_ts(ts_ns: int) -> None:
    if type(ts_ns) is not int or ts_ns < 0:
        raise TypeError(f"ts_ns must be a non-negative int of nanoseconds UTC, not {ts_ns!r}")


def _discard(ops: FileOps, fd: int | None, path: Path | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            ops.close(fd)
    if path is not None:
        with contextlib.suppress(OSError):
            ops.unlink(path)


def _ensure_directory(directory: Path, mode: int) -> None:
    if directory.is_dir():
        return
    missing = [directory, *(p for p in directory.parents if not p.exists())]
    try:
        for path in reversed(missing):  # outermost first, each with the store's mode
            os.mkdir(path, mode)
            adopt_directory_owner(path)
    except FileExistsError:
        if not directory.is_dir():
            raise StoreUnusable(
                directory,
                "the path exists but is not a directory",
                "Point the store at a directory (WELTKLASSE_STATE_DIR), or move the file away.",
            ) from None
    except OSError as exc:
        raise StoreUnusable(
            directory,
            f"the state directory cannot be created: {describe_os_error(exc)}",
            "Create it for the service user (mode 0750), or point WELTKLASSE_STATE_DIR elsewhere.",
        ) from None
    with contextlib.suppress(OSError):  # the store's own files are synced; this is a courtesy
        FileOps().fsync_dir(missing[-1].parent)
