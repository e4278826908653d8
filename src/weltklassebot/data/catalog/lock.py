"""The snapshot directory's lock: an exclusive ``flock`` on ``.lock``, naming its holder.

Mutating commands (promote, rollback, prune) hold it; a second one waits up to a time-out and then
fails naming the holder (pid, host, user, command), which the holder records in the lock file. The
kernel drops the lock when its holder dies, so a killed command never leaves a stale lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

from weltklassebot.core.clock import Clock
from weltklassebot.core.timeutil import ns_to_iso
from weltklassebot.data.catalog.faults import fault_point
from weltklassebot.errors import RuntimeFailure
from weltklassebot.filelock import flock_exclusive, write_note
from weltklassebot.fsutil import adopt_directory_owner

LOCK = ".lock"


def whoami() -> str:
    """The user running this command (and who ran ``sudo``), as records name it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    sudo = os.environ.get("SUDO_USER")
    return f"{user} (sudo by {sudo})" if sudo and sudo != user else user


@contextlib.contextmanager
def snapshot_lock(directory: Path, timeout_s: float, *, command: str, clock: Clock,
                  on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the exclusive lock on ``directory/.lock``; wait up to ``timeout_s`` for it."""
    path = directory / LOCK

    def tell() -> None:
        if on_wait is not None:
            on_wait(f"waiting up to {timeout_s:g} s for the snapshot lock held by "
                    f"{_describe_holder(path)}")

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        adopt_directory_owner(path, directory)
    except OSError as exc:
        raise RuntimeFailure(f"cannot open the lock file {path}: {exc.strerror}.") from exc
    try:
        try:
            acquired = flock_exclusive(fd, timeout_s, on_busy=tell)
        except OSError as exc:
            raise RuntimeFailure(f"cannot lock {path}: {exc.strerror}.") from exc
        if not acquired:
            raise RuntimeFailure(
                f"snapshot directory {directory} is locked by {_describe_holder(path)}; gave up "
                f"after waiting {timeout_s:g} s, and nothing was changed. Let that command "
                "finish and try again (or raise --lock-timeout). The lock is released "
                "automatically when its holder exits."
            )
        info = {"pid": os.getpid(), "host": socket.gethostname(), "user": whoami(),
                "command": command, "since": ns_to_iso(clock.now_ns())}
        write_note(fd, json.dumps(info, sort_keys=True) + "\n", sync=True)
        fault_point("locked")
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _describe_holder(path: Path) -> str:
    """Who holds the lock, from the record its holder wrote into the lock file."""
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, json.JSONDecodeError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "another process (it has not recorded itself yet)"
    text = f"pid {info.get('pid')} on host {info.get('host')} (user {info.get('user')}"
    if info.get("command"):
        text += f", running `{info['command']}`"
    if info.get("since"):
        text += f", since {info['since']}"
    return text + ")"
