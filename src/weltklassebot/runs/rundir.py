"""Atomic run directories: everything is written into a hidden temporary directory beside the
target and renamed into place last, so a failed or interrupted run leaves nothing that looks
complete.

A ``kill -9`` can still leave the temporary ``.incomplete-<strategy>-<pid>/`` behind. Its owner
holds an exclusive ``flock`` on ``.owner.lock`` inside it for as long as it runs; the kernel drops
that lock when the owner dies, so the next run in the same directory can tell a stale one from a
live one without trusting the pid (which the system may have reused) and removes it, saying so on
stderr. A live owner's directory is never touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from weltklassebot.errors import RuntimeFailure, UsageError
from weltklassebot.fsutil import adopt_directory_owner, fsync_dir, fsync_file
from weltklassebot.logs import get_logger

INCOMPLETE_PREFIX = ".incomplete-"
OWNER_LOCK = ".owner.lock"
_LEGACY_PID = re.compile(r"-(\d+)$")
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n",
                    encoding="utf-8")


def safe_tag(ref: str) -> str:
    """A strategy reference (a name, ``module:Class``, ``path/file.py[:Class]``) as a short
    file-name part: the class, else the file's stem, else the name."""
    name = ref.rpartition(":")[2] if ":" in ref else Path(ref).name.removesuffix(".py")
    return _TAG_UNSAFE.sub("_", name).strip("._")[:48] or "run"


def resolve_out(out: Path) -> Path:
    """Check ``--out`` before any work and return the directory to create.

    A symlink to an empty directory is that directory; a dangling link, a link loop, a link to a
    file, an existing file, a non-empty directory, or a parent that is a file is refused (exit 2)
    naming the path and the fix.
    """
    if out.is_symlink():
        try:
            target = Path(os.path.realpath(out, strict=True))
        except OSError as exc:
            link = os.readlink(out)
            if isinstance(exc, FileNotFoundError):
                raise UsageError(
                    f"--out {out} is a symbolic link to {link}, which does not exist. Create "
                    f"that directory first (mkdir -p {link}), or pass --out a new path."
                ) from exc
            raise UsageError(f"--out {out} is a symbolic link that cannot be followed "
                             f"({exc.strerror}). Pass --out a new path.") from exc
        if not target.is_dir():
            raise UsageError(f"--out {out} is a symbolic link to {target}, which is not a "
                             "directory. Pass --out a new path or a link to an empty directory.")
        refuse_non_empty(target, shown=f"{out} (a symbolic link to {target})")
        return target
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory; runs never overwrite. "
                         "Pass a new --out.")
    refuse_non_empty(out)
    for ancestor in out.parents:
        if ancestor.is_symlink() and not ancestor.exists():
            raise UsageError(f"cannot create --out {out}: {ancestor} is a symbolic link to "
                             f"{os.readlink(ancestor)}, which does not exist. Create that "
                             "directory, or pass another --out.")
        if ancestor.exists():
            if not ancestor.is_dir():
                raise UsageError(f"cannot create --out {out}: {ancestor} is a file, not a "
                                 "directory. Pass another --out.")
            break
    return out


def make_dirs(path: Path) -> list[Path]:
    """``mkdir -p`` that gives every directory it creates the owner of the one holding it;
    returns the directories it created, outermost first."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    created: list[Path] = []
    try:
        for directory in reversed(missing):
            try:
                directory.mkdir()
            except FileExistsError:
                continue
            created.append(directory)
            adopt_directory_owner(directory)
    except OSError:
        for directory in reversed(created):
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    return created


class RunDirectory:
    """A run directory under construction; ``commit`` renames it into place."""

    def __init__(self, parent: Path, final: Path | None, tag: str) -> None:
        self.parent = parent
        self.final = final
        if final is not None:
            refuse_non_empty(final)
        self._lock_fd: int | None = None
        self._created: list[Path] = []
        try:
            self._created = make_dirs(parent)
        except OSError as exc:
            raise UsageError(
                f"cannot create the runs directory {parent}: {exc.strerror}. Choose another "
                "with --out or WELTKLASSE_RUNS_DIR."
            ) from exc
        remove_stale(parent)
        self.tmp = parent / f"{INCOMPLETE_PREFIX}{safe_tag(tag)}-{os.getpid()}"
        if self.tmp.exists():  # named after this process: its earlier owner of this pid is gone
            shutil.rmtree(self.tmp)
        try:
            self.tmp.mkdir()
            adopt_directory_owner(self.tmp)
            self._lock_fd = _take_owner_lock(self.tmp)
        except OSError as exc:
            self.discard()
            raise UsageError(f"cannot write in {parent}: {exc.strerror}. Choose another "
                             "directory with --out or WELTKLASSE_RUNS_DIR.") from exc

    def path(self, name: str) -> Path:
        return self.tmp / name

    def commit(self, final: Path) -> Path:
        """fsync every file, then rename the directory into place."""
        refuse_non_empty(final)
        # The lock file is ours only: drop it before the rename, keep the lock until after.
        with contextlib.suppress(FileNotFoundError):
            (self.tmp / OWNER_LOCK).unlink()
        for entry in self.tmp.iterdir():
            adopt_directory_owner(entry)
            fsync_file(entry)
        fsync_dir(self.tmp)
        if final.exists():
            final.rmdir()  # empty directory allowed (checked above)
        try:
            make_dirs(final.parent)
            os.rename(self.tmp, final)
        except OSError as exc:
            raise RuntimeFailure(f"could not move the run into {final}: {exc.strerror}.") from exc
        fsync_dir(final.parent)
        self._release()
        return final

    def discard(self) -> None:
        """Remove the temporary directory, and the directories made for it if still empty: a
        failed run leaves the file system as it found it."""
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.tmp)
        self._release()
        for directory in reversed(self._created):
            try:
                directory.rmdir()
            except OSError:
                break  # not empty (another run uses it) or not ours to remove

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _take_owner_lock(directory: Path) -> int:
    """Create and hold the owner lock inside ``directory`` (the kernel drops it at death).

    The lock is taken on a file of another name and renamed into place, so ``.owner.lock`` is
    never visible unlocked while its owner lives.
    """
    staging = directory / f"{OWNER_LOCK}.new"
    fd = os.open(staging, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        os.write(fd, f"pid {os.getpid()} since {since}\n".encode())
        adopt_directory_owner(staging)
        os.rename(staging, directory / OWNER_LOCK)
    except OSError:
        os.close(fd)
        raise
    return fd


def remove_stale(parent: Path) -> list[Path]:
    """Remove the ``.incomplete-*`` directories in ``parent`` whose owner is gone; say so.

    The owner is gone when its ``.owner.lock`` can be locked (the kernel released it). A directory
    without one (its owner was killed before creating it, or an older build made it) is removed
    only when no process has the pid in its name; otherwise it is left alone, as any directory we
    cannot prove abandoned is. Never follows symlinks; a failure to remove is a warning only.
    """
    removed: list[Path] = []
    try:
        entries = [e for e in parent.iterdir() if e.name.startswith(INCOMPLETE_PREFIX)]
    except OSError:
        return removed
    for entry in sorted(entries):
        if entry.is_symlink() or not entry.is_dir():
            continue
        fd = _lock_if_abandoned(entry)
        if fd is None:
            continue
        try:
            size = _tree_bytes(entry)
            shutil.rmtree(entry)
        except FileNotFoundError:
            continue  # another run removed it first
        except OSError as exc:
            get_logger("weltklassebot.backtest").warning(
                "stale_run_directory_kept", path=str(entry),
                reason=f"cannot remove it: {exc.strerror}", fix=f"remove it by hand: rm -r {entry}")
            continue
        finally:
            if fd >= 0:
                os.close(fd)
        get_logger("weltklassebot.backtest").warning(
            "stale_run_directory_removed", path=str(entry), bytes=size,
            reason="left by a run that was killed; its process is gone")
        removed.append(entry)
    return removed


def _lock_if_abandoned(entry: Path) -> int | None:
    """The held lock fd (or -1 with no lock file) when ``entry``'s owner is gone, else None."""
    try:
        fd = os.open(entry / OWNER_LOCK, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        match = _LEGACY_PID.search(entry.name)
        if match is None or int(match.group(1)) == os.getpid():
            return None
        return -1 if not _pid_alive(int(match.group(1))) else None
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None  # held: its owner is running (or the lock cannot be taken: keep it)
    return fd


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _tree_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def refuse_non_empty(path: Path, shown: str | None = None) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UsageError(
            f"output directory {shown or path} already exists and is not empty; runs never "
            "overwrite. Pass a new --out or remove the old run."
        )
