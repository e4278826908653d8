"""Operator commands (``risk halt`` / ``risk resume``) handed to a service through its state dir.

Layout of a state directory ``DIR`` (only what this module owns)::

    DIR/service.lock            the running service holds an exclusive flock(2) on it; the file
                                holds the holder's pid (for messages only)
    DIR/commands/<id>.json      one command, written to a hidden temporary name, fsync'd and
                                renamed in (atomic); ``<id>`` sorts by issue time
    DIR/acks/<id>.json          the service's answer to command ``<id>``, written the same way

The service side calls :func:`acquire_service_lock` once at start-up, :func:`poll_operator_commands`
before each event (it reads *and removes* the command files in name order), applies each with
:func:`apply_operator_command` at that event, records an ``operator_command`` record carrying the
event cursor, and answers with :func:`ack`. The CLI side either hands a command over
(:func:`write_command`, then optionally :func:`wait_for_ack`) or, when it can take the service
lock itself (no service running), writes the transition to the store directly
(``weltklassebot.cli.risk``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from weltklassebot.errors import RuntimeFailure, UnusableInput
from weltklassebot.filelock import HeldLock, flock_exclusive, read_note, write_note
from weltklassebot.fsutil import adopt_directory_owner, fsync_dir, write_and_sync
from weltklassebot.risk.engine import RiskEngine
from weltklassebot.risk.state import RiskState

STATE_DIR_ENV = "WELTKLASSE_STATE_DIR"
DEFAULT_STATE_DIR = Path("/var/lib/weltklassebot/state")
SERVICE_LOCK = "service.lock"
COMMANDS_DIR = "commands"
ACKS_DIR = "acks"
COMMAND_SCHEMA = 1
ACKS_KEPT = 100
"""Acknowledgements kept in ``DIR/acks`` (oldest removed first)."""

Action = Literal["halt", "resume"]
_ID_RE = re.compile(r"[0-9]{20}-[0-9]+-(halt|resume)")


def default_state_dir() -> Path:
    """``$WELTKLASSE_STATE_DIR``, else ``/var/lib/weltklassebot/state``."""
    value = os.environ.get(STATE_DIR_ENV, "").strip()
    return Path(value) if value else DEFAULT_STATE_DIR


@dataclass(frozen=True, slots=True)
class OperatorCommand:
    """One operator command; ``command_id`` is its file name without ``.json``."""

    command_id: str
    action: Action
    reason: str = ""
    keep_peak: bool = False
    user: str = ""
    source: str = "operator-cli"
    issued_ns: int = 0
    """Wall-clock time the operator issued it (for the audit trail only; it decides nothing)."""

    @classmethod
    def new(
        cls,
        action: Action,
        *,
        issued_ns: int,
        reason: str = "",
        keep_peak: bool = False,
        user: str = "",
        source: str = "operator-cli",
    ) -> OperatorCommand:
        """A command with an id that sorts by issue time: ``<issued_ns>-<pid>-<action>``."""
        return cls(
            command_id=f"{issued_ns:020d}-{os.getpid()}-{action}",
            action=action,
            reason=reason,
            keep_peak=keep_peak,
            user=user,
            source=source,
            issued_ns=issued_ns,
        )

    def to_payload(self) -> dict[str, Any]:
        return {
            "schema": COMMAND_SCHEMA,
            "command_id": self.command_id,
            "action": self.action,
            "reason": self.reason,
            "keep_peak": self.keep_peak,
            "user": self.user,
            "source": self.source,
            "issued_ns": self.issued_ns,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> OperatorCommand:
        schema = payload.get("schema")
        if schema != COMMAND_SCHEMA:
            raise ValueError(f"command schema {schema!r} is not {COMMAND_SCHEMA}")
        action = payload.get("action")
        if action not in ("halt", "resume"):
            raise ValueError(f"unknown action {action!r} (expected 'halt' or 'resume')")
        fields = {
            "command_id": str, "reason": str, "keep_peak": bool, "user": str, "source": str,
            "issued_ns": int,
        }
        for name, kind in fields.items():
            if not isinstance(payload.get(name), kind):
                raise ValueError(f"field {name!r} must be {kind.__name__}")
        return cls(
            command_id=payload["command_id"],
            action=action,
            reason=payload["reason"],
            keep_peak=payload["keep_peak"],
            user=payload["user"],
            source=payload["source"],
            issued_ns=payload["issued_ns"],
        )


# --- the service lock --------------------------------------------------------------------------


class ServiceLockHeld(RuntimeFailure):
    """Another process holds ``DIR/service.lock``."""

    def __init__(self, directory: Path, holder: int | None) -> None:
        self.directory = directory
        self.holder = holder
        who = f"process {holder}" if holder else "another process"
        super().__init__(
            f"state directory {directory} is in use by {who} (it holds {SERVICE_LOCK}). "
            "Only one service may run per state directory: stop the other one "
            "(`systemctl stop weltklassebot`) or use another --state-dir."
        )


class StateDirUnwritable(RuntimeFailure):
    """A file or folder of the state directory could not be created or written.

    Exit 2 when this user lacks the permission (run it as the service user), else 3 (full disk,
    read-only file system, I/O error). ``operation``, ``path`` and ``errno`` let a caller say in
    its own words what that meant for its command.
    """

    def __init__(self, operation: str, path: Path, exc: OSError, *, written: bool = False) -> None:
        self.operation = operation
        self.path = path
        self.written = written
        """True when ``path`` is complete under its final name and only its durability failed."""
        self.errno = exc.errno
        self.strerror = exc.strerror or str(exc)
        if is_permission_error(exc.errno):
            self.exit_code = 2
        super().__init__(
            f"state directory {path.parent}: could not {operation} {path.name}: "
            f"{errno_name(exc.errno)} ({self.strerror}). {write_fix(exc.errno, path.parent)}"
        )


def is_permission_error(code: int | None) -> bool:
    """EACCES / EPERM: the user, not the disk, is the problem (exit 2)."""
    return code in (errno.EACCES, errno.EPERM)


def errno_name(code: int | None) -> str:
    return errno.errorcode.get(code or 0, "EUNKNOWN")


def write_fix(code: int | None, directory: Path) -> str:
    """What an operator does about a failed write in ``directory``, by errno."""
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"Free space on the volume holding {directory} (`df -h {directory}`)."
    if code == errno.EROFS:
        return (f"The file system holding {directory} is read-only: check `dmesg` for disk "
                "errors and remount it read-write.")
    if is_permission_error(code):
        return (f"This user may not write there: run the command as the owner of {directory} "
                f"(`ls -ld {directory}`), e.g. with `sudo -u <owner>`, or as root.")
    return f"Check the disk holding {directory} (`dmesg`)."


class ServiceLock(HeldLock):
    """An exclusive ``flock`` on ``DIR/service.lock``, held until :meth:`release`."""

    __slots__ = ()


def acquire_service_lock(
    directory: Path | str, *, timeout_s: float = 0.0, create: bool = True
) -> ServiceLock:
    """Take the exclusive service lock of ``directory`` (created if missing and ``create``).

    Retries for ``timeout_s`` seconds, then raises :class:`ServiceLockHeld` naming the holder.
    Raises :class:`~weltklassebot.errors.UnusableInput` when the directory is missing (and not
    ``create``), :class:`StateDirUnwritable` when the lock file cannot be created or opened for
    writing. Whatever it creates gets the owner of the directory that holds it (root acting on
    a service user's directory).
    """
    directory = Path(directory)
    if create:
        _make_dirs(directory)
    elif not directory.is_dir():
        raise UnusableInput(
            f"state directory {directory} does not exist. Pass the service's --state-dir "
            f"(or set {STATE_DIR_ENV}); a service creates it on first start."
        )
    path = directory / SERVICE_LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StateDirUnwritable("create" if not path.exists() else "open", path, exc) from None
    try:
        adopt_directory_owner(path)
        acquired = flock_exclusive(fd, max(0.0, timeout_s))
    except OSError as exc:
        os.close(fd)
        raise StateDirUnwritable("lock", path, exc) from None
    if not acquired:
        holder = _read_pid(fd)
        os.close(fd)
        raise ServiceLockHeld(directory, holder) from None
    with contextlib.suppress(OSError):
        write_note(fd, f"{os.getpid()}\n")
    if create:
        # The service owns the hand-off folders, so it can always remove what it has read.
        for name in (COMMANDS_DIR, ACKS_DIR):
            with contextlib.suppress(OSError):
                _make_dirs(directory / name)
    return ServiceLock(path, fd)


def service_holder(directory: Path | str) -> int | None:
    """Pid (0 when unknown) of the process holding the service lock, or ``None`` if free."""
    path = Path(directory) / SERVICE_LOCK
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return _read_pid(fd) or 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    text = read_note(fd, 32)
    return int(text) if text.isdigit() else None


def _make_dirs(directory: Path) -> None:
    """``mkdir -p`` whose new folders take the owner of the folder that holds them."""
    missing = [directory, *(p for p in directory.parents if not p.exists())]
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise StateDirUnwritable("create the folder", path, exc) from None
        try:
            adopt_directory_owner(path)
        except OSError as exc:
            raise StateDirUnwritable("give the owner of its parent to", path, exc) from None


# --- command and ack files ---------------------------------------------------------------------


def _write_atomic(directory: Path, name: str, payload: Mapping[str, Any]) -> Path:
    """Temporary file, fsync, rename, fsync the folder; on failure nothing is left behind.

    Raises :class:`StateDirUnwritable` naming the step that failed. The file takes the owner of
    its folder before it gets its final name, so the service can always remove it.
    """
    _make_dirs(directory)
    target = directory / name
    tmp = directory / f".{name}.{os.getpid()}.tmp"
    data = (json.dumps(payload, sort_keys=True, separators=(",", ":")) + "\n").encode()
    # Messages name the file the reader knows (the final name); the temporary is ours.
    operation = "create"
    fd: int | None = None
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        operation = "write"
        adopt_directory_owner(tmp)
        write_and_sync(fd, data)
        os.close(fd)
        fd = None
        operation = "rename its temporary file to"
        os.rename(tmp, target)
    except OSError as exc:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise StateDirUnwritable(operation, target, exc) from None
    try:
        fsync_dir(directory)
    except OSError as exc:
        # The file is complete under its name; only the durability of the name is in doubt.
        raise StateDirUnwritable("sync the folder after writing", target, exc,
                                 written=True) from None
    return target


def write_command(directory: Path | str, command: OperatorCommand) -> Path:
    """Drop ``command`` into ``DIR/commands/`` atomically (temporary file + rename).

    Raises :class:`StateDirUnwritable`; then no command file (nor temporary) is left, except
    when only the final folder fsync failed (the file is there; ``path`` names it).
    """
    return _write_atomic(Path(directory) / COMMANDS_DIR, f"{command.command_id}.json",
                         command.to_payload())


def is_queued(directory: Path | str, command_id: str) -> bool:
    """Whether ``command_id`` still waits in ``DIR/commands/`` (not yet taken by a service)."""
    return (Path(directory) / COMMANDS_DIR / f"{command_id}.json").exists()


def pending_commands(directory: Path | str) -> list[str]:
    """Ids of commands waiting in ``DIR/commands/``, in the order they will be applied."""
    folder = Path(directory) / COMMANDS_DIR
    try:
        names = sorted(p.name for p in folder.iterdir())
    except FileNotFoundError:
        return []
    return [n[:-5] for n in names if n.endswith(".json") and not n.startswith(".")]


def poll_operator_commands(directory: Path | str) -> list[OperatorCommand]:
    """Read and remove the waiting command files in name order (service side).

    A file that is not a valid command is removed too and answered with a failed ack naming the
    problem, so a bad file can never wedge the queue. A command whose file cannot be removed
    (wrong owner) is not applied — it would be applied again at every poll — and is answered
    once with a failed ack saying so.
    """
    directory = Path(directory)
    folder = directory / COMMANDS_DIR
    commands: list[OperatorCommand] = []
    for command_id in pending_commands(directory):
        path = folder / f"{command_id}.json"
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as exc:
            _refuse(directory, command_id, _not_applied("read", path, exc))
            continue
        try:
            payload = json.loads(raw)
            if not isinstance(payload, dict):
                raise ValueError("not a JSON object")
            command = OperatorCommand.from_payload(payload)
            if command.command_id != command_id:
                raise ValueError(f"its command_id {command.command_id!r} differs from its name")
        except ValueError as exc:
            with contextlib.suppress(OSError):
                path.unlink()
            _refuse(directory, command_id, f"invalid command file: {exc}")
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue  # another reader took it
        except OSError as exc:
            _refuse(directory, command_id, _not_applied("remove", path, exc))
            continue
        commands.append(command)
    if commands:
        with contextlib.suppress(OSError):
            fsync_dir(folder)
    return commands


def _not_applied(verb: str, path: Path, exc: OSError) -> str:
    return (f"the service cannot {verb} {path.name} ({exc.strerror or exc}); it was not "
            "applied. Run `risk` commands as the service user.")


def _refuse(directory: Path, command_id: str, error: str) -> None:
    """Answer a command that will not be applied, once; never let answering fail the poll."""
    if read_ack(directory, command_id) is None:
        with contextlib.suppress(OSError, StateDirUnwritable):
            ack(directory, command_id, {"ok": False, "error": error})


def ack(directory: Path | str, command_id: str, result: Mapping[str, Any]) -> Path:
    """Answer command ``command_id`` with ``result`` in ``DIR/acks/`` (atomically).

    Raises :class:`StateDirUnwritable` when the answer cannot be written.
    """
    folder = Path(directory) / ACKS_DIR
    payload = {"schema": COMMAND_SCHEMA, "command_id": command_id, **result}
    path = _write_atomic(folder, f"{command_id}.json", payload)
    acks = sorted(p for p in folder.glob("*.json"))
    for old in acks[: max(0, len(acks) - ACKS_KEPT)]:
        with contextlib.suppress(OSError):
            old.unlink()
    return path


def read_ack(directory: Path | str, command_id: str) -> dict[str, Any] | None:
    """The service's answer to ``command_id``, or ``None`` while there is none."""
    path = Path(directory) / ACKS_DIR / f"{command_id}.json"
    try:
        payload = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError:
        return {"ok": False, "error": f"unreadable acknowledgement {path.name}"}
    return payload if isinstance(payload, dict) else None


def wait_for_ack(
    directory: Path | str, command_id: str, timeout_s: float, *, interval_s: float = 0.05
) -> dict[str, Any] | None:
    """Poll for the answer to ``command_id`` for up to ``timeout_s`` seconds."""
    deadline = time.monotonic() + max(0.0, timeout_s)
    while True:
        found = read_ack(directory, command_id)
        if found is not None or time.monotonic() >= deadline:
            return found
        time.sleep(interval_s)


def iter_command_ids(directory: Path | str) -> Iterator[str]:
    """Ids of answered commands in ``DIR/acks`` (oldest first)."""
    folder = Path(directory) / ACKS_DIR
    with contextlib.suppress(FileNotFoundError):
        yield from sorted(p.stem for p in folder.glob("*.json"))


# --- applying a command to the engine (service side) -----------------------------------------


def apply_operator_command(
    engine: RiskEngine,
    command: OperatorCommand,
    ts_ns: int,
    *,
    cursor: int | None,
    wall_ns: int | None = None,
) -> dict[str, Any]:
    """Apply ``command`` at event time ``ts_ns`` / ``cursor``; returns the ack and record body.

    ``wall_ns`` is the service's wall-clock time of applying it, read by the caller (this module
    reads no clock for decisions): it is recorded for the operator's audit trail and shown by
    ``risk status``, and decides nothing. The engine persists the transition before it takes
    effect; if that raises, the exception propagates (the state is unchanged) and the caller
    answers the command with :func:`failed_result`.
    """
    before = engine.state
    if command.action == "halt":
        changed = engine.halt(
            command.reason or "operator halt", ts_ns, command.source,
            cursor=cursor, user=command.user or None,
        )
    else:
        changed = engine.resume(
            ts_ns, keep_peak=command.keep_peak, reason=command.reason,
            source=command.source, cursor=cursor, user=command.user or None,
        )
    return command_result(command, before, engine, changed=changed, ts_ns=ts_ns, cursor=cursor,
                          wall_ns=wall_ns)


def command_result(
    command: OperatorCommand,
    before: RiskState,
    engine: RiskEngine,
    *,
    changed: bool,
    ts_ns: int,
    cursor: int | None,
    wall_ns: int | None = None,
) -> dict[str, Any]:
    """The ``operator_command`` record payload / ack body for an applied command."""
    return {
        "ok": True,
        "command": command.to_payload(),
        "changed": changed,
        "from_state": before.value,
        "state": engine.state.value,
        "ts_ns": ts_ns,
        "cursor": cursor,
        "applied_wall_ns": wall_ns,
        "message": outcome_message(command.action, before, engine.state, changed=changed),
        "peak_equity": engine.peak_equity,
    }


def failed_result(
    command: OperatorCommand, engine: RiskEngine, error: str, *, wall_ns: int | None = None
) -> dict[str, Any]:
    """The ack body for a command the service could not apply (e.g. its store cannot write).

    It carries the engine's state after the failure, so the operator's CLI can say what holds
    (a halt that could not be persisted still leaves the engine ``HALTED`` by the store failure).
    """
    return {
        "ok": False,
        "command": command.to_payload(),
        "error": error,
        "state": engine.state.value,
        "applied_wall_ns": wall_ns,
    }


def outcome_message(action: Action, before: RiskState, after: RiskState, *, changed: bool) -> str:
    """``ACTIVE -> HALTED``, or why nothing changed; shared by the service and the offline CLI."""
    if changed:
        return f"{before.value} -> {after.value}"
    if action == "halt":
        return "already HALTED; nothing changed"
    return f"not HALTED (state {after.value}); nothing to resume"
