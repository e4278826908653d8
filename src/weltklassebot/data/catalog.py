"""The snapshot directory: naming, SHA-256 sidecars, the ``latest.parquet`` symlink, lock, history.

Layout of a snapshot directory (DESIGN section 5)::

    20261124T153000.123456Z_btcusd-1h.parquet          read-only (0444) snapshot
    20261124T153000.123456Z_btcusd-1h.parquet.sha256   its SHA-256, ``sha256sum -c`` format
    latest.parquet -> 20261124T153000.123456Z_btcusd-1h.parquet   (relative symlink)
    history.jsonl                                       append-only record of every change
    .lock                                               flock()ed by mutating commands

Guarantees:

- A file with a final snapshot name is always complete: it is written under a hidden
  ``.tmp-`` name, validated, fsync'd and made read-only first, then renamed. Its sidecar is
  renamed into place before it, so every snapshot has its SHA-256.
- ``latest.parquet`` is swapped atomically: a new relative link is created under a temporary
  name and renamed over the old one, then the directory is fsync'd. It never points at a
  partial file.
- Mutating commands (promote, rollback, prune) hold an exclusive ``flock`` on ``.lock``; a second
  one waits up to a time-out and then fails naming the holder (pid, host, user, command). The
  kernel drops the lock when its holder dies, so a killed command never leaves a stale lock.
- Each history line is a JSON record carrying the SHA-256 of the line before it, so an edited
  or truncated history is detected by ``verify``. When ``latest.parquet`` does not match the last
  record (a command killed between the swap and its record, or a hand-made change), the next
  mutating command appends a ``reconcile`` record first.

Test hook: the environment variable ``WELTKLASSE_FAULT_AT`` names steps (comma-separated) at which
the process kills itself with SIGKILL (``step``) or pauses (``step:sleep=SECONDS``). The crash
and concurrency tests use it; it is never set in production.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import getpass
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import stat
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weltklassebot.core.clock import Clock, WallClock
from weltklassebot.core.timeutil import NS_PER_SECOND, ns_to_basic, ns_to_iso
from weltklassebot.errors import (
    ConfigError,
    InvalidSnapshot,
    RuntimeFailure,
    UnusableInput,
    UsageError,
    VerdictFailed,
)
from weltklassebot.fsutil import fsync_dir, sha256_file

DEFAULT_SNAPSHOT_DIR = Path("/var/lib/weltklassebot/snapshots")
DEFAULT_STAGING_DIR = Path("staging")
DEFAULT_LOCK_TIMEOUT_S = 30.0
MIN_KEEP = 3
FREE_SPACE_MARGIN = 1 << 20

ENV_SNAPSHOT_DIR = "WELTKLASSE_SNAPSHOT_DIR"
ENV_STAGING_DIR = "WELTKLASSE_STAGING_DIR"
ENV_LOCK_TIMEOUT = "WELTKLASSE_LOCK_TIMEOUT"
ENV_CONFIG = "WELTKLASSE_CONFIG"
ENV_FAULT = "WELTKLASSE_FAULT_AT"

LATEST = "latest.parquet"
HISTORY = "history.jsonl"
LOCK = ".lock"
SIDECAR = ".sha256"
TMP_PREFIX = ".tmp-"
HISTORY_SCHEMA_VERSION = 1

SNAPSHOT_RE = re.compile(r"^(\d{8}T\d{6}\.\d{6}Z)_([A-Za-z0-9][A-Za-z0-9._-]*)\.parquet$")
CONFIG_KEYS: dict[str, str] = {
    "snapshot_dir": "the snapshot directory",
    "staging_dir": "where `snapshot import` writes by default",
    "lock_timeout_s": "seconds a mutating command waits for the lock",
}


# --------------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True)
class Settings:
    """Resolved snapshot settings and where each came from (for error messages)."""

    snapshot_dir: Path
    snapshot_dir_from: str
    staging_dir: Path
    staging_dir_from: str
    lock_timeout_s: float
    config_path: Path | None


def _load_config(config: str | None) -> tuple[dict[str, Any], Path | None, str]:
    origin = "--config"
    if config is None:
        config = os.environ.get(ENV_CONFIG) or None
        origin = ENV_CONFIG
    if config is None:
        return {}, None, ""
    path = Path(config)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} (from {origin}) does not exist.") from exc
    except OSError as exc:
        raise ConfigError(f"config file {path} (from {origin}) cannot be read: "
                          f"{exc.strerror}.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}.") from exc
    section = data.get("snapshots", {})
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: 'snapshots' must be a table ([snapshots]).")
    unknown = sorted(set(section) - set(CONFIG_KEYS))
    if unknown:
        known = ", ".join(CONFIG_KEYS)
        raise ConfigError(f"config file {path}: unknown key(s) {', '.join(unknown)} in "
                          f"[snapshots]; known keys: {known}.")
    for key in ("snapshot_dir", "staging_dir"):
        if key in section and not isinstance(section[key], str):
            raise ConfigError(f"config file {path}: [snapshots] {key} must be a string path.")
    if "lock_timeout_s" in section and (isinstance(section["lock_timeout_s"], bool) or
                                        not isinstance(section["lock_timeout_s"], int | float)):
        raise ConfigError(f"config file {path}: [snapshots] lock_timeout_s must be a number.")
    return section, path, f"{path} [snapshots]"


def resolve_settings(*, snapshot_dir: str | None = None, config: str | None = None,
                     lock_timeout_s: float | None = None,
                     staging_dir: str | None = None) -> Settings:
    """Flag > ``WELTKLASSE_*`` environment variable > TOML config > default."""
    section, path, where = _load_config(config)

    def pick(flag: str | None, env: str, key: str, default: Path) -> tuple[Path, str]:
        if flag:
            return Path(flag), "--dir" if key == "snapshot_dir" else "--out"
        if os.environ.get(env):
            return Path(os.environ[env]), env
        if key in section:
            return Path(section[key]), f"{key} in {where}"
        return default, "the default"

    sdir, sdir_from = pick(snapshot_dir, ENV_SNAPSHOT_DIR, "snapshot_dir", DEFAULT_SNAPSHOT_DIR)
    stage, stage_from = pick(staging_dir, ENV_STAGING_DIR, "staging_dir", DEFAULT_STAGING_DIR)
    if lock_timeout_s is None:
        env_value = os.environ.get(ENV_LOCK_TIMEOUT)
        if env_value:
            try:
                lock_timeout_s = float(env_value)
            except ValueError as exc:
                raise ConfigError(f"{ENV_LOCK_TIMEOUT}={env_value!r} is not a number of "
                                  "seconds.") from exc
        elif "lock_timeout_s" in section:
            lock_timeout_s = float(section["lock_timeout_s"])
        else:
            lock_timeout_s = DEFAULT_LOCK_TIMEOUT_S
    if lock_timeout_s < 0:
        raise UsageError("the lock time-out cannot be negative.")
    return Settings(sdir, sdir_from, stage, stage_from, lock_timeout_s, path)


# --------------------------------------------------------------------------------------------
# Small file-system helpers


def fault_point(step: str) -> None:
    """Test hook: die (SIGKILL) or pause at ``step`` when ``WELTKLASSE_FAULT_AT`` names it."""
    spec = os.environ.get(ENV_FAULT)
    if not spec:
        return
    for item in spec.split(","):
        name, _, action = item.strip().partition(":")
        if name != step:
            continue
        if action.startswith("sleep="):
            time.sleep(float(action.removeprefix("sleep=")))
        else:
            os.kill(os.getpid(), signal.SIGKILL)


def read_sidecar(path: Path) -> str | None:
    """The hex digest from ``<file>.sha256`` (``sha256sum`` format), or ``None`` if absent."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    token = text.strip().split()[0] if text.strip() else ""
    return token.lower() if re.fullmatch(r"[0-9a-fA-F]{64}", token) else ""


def whoami() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    sudo = os.environ.get("SUDO_USER")
    return f"{user} (sudo by {sudo})" if sudo and sudo != user else user


def snapshot_file_name(created_ns: int, name: str) -> str:
    return f"{ns_to_basic(created_ns)}_{name}.parquet"


def parse_basic(stamp: str) -> int:
    """``20261124T153000.123456Z`` -> integer ns UTC."""
    from datetime import UTC, datetime

    moment = datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC)
    seconds = int(moment.replace(microsecond=0).timestamp())
    return seconds * NS_PER_SECOND + moment.microsecond * 1000


# --------------------------------------------------------------------------------------------
# Records


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


@dataclass(frozen=True)
class LatestState:
    exists: bool
    is_symlink: bool
    target: str | None
    """The link text (a file name in the directory when healthy)."""
    entry: Entry | None
    """The snapshot it points at; ``None`` if missing, dangling or pointing elsewhere."""

    @property
    def dangling(self) -> bool:
        return self.is_symlink and self.entry is None


@dataclass
class Change:
    """Result of promote / rollback / prune, also the history record's content."""

    action: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    changed: bool = True
    removed: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        return {"action": self.action, "changed": self.changed, "old": self.old, "new": self.new,
                "removed": self.removed, "notes": self.notes, **self.details}


def _ref(entry: Entry | None, sha: str | None = None) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {"file": entry.file, "sha256": sha if sha is not None else entry.recorded_sha256()}


# --------------------------------------------------------------------------------------------
# The catalog


class Catalog:
    """Operations on one snapshot directory."""

    def __init__(self, directory: Path, *, origin: str = "--dir", clock: Clock | None = None,
                 command: str = "", on_wait: Callable[[str], None] | None = None) -> None:
        self.dir = Path(directory)
        self.origin = origin
        self.clock: Clock = clock if clock is not None else WallClock()
        self.command = command
        self.on_wait = on_wait

    # ---- directory checks ------------------------------------------------------------------

    def require_dir(self, *, writable: bool) -> None:
        where = f"snapshot directory {self.dir} (from {self.origin})"
        if not self.dir.exists():
            raise UsageError(
                f"{where} does not exist. Create it (e.g. `mkdir -p {self.dir}`, owned by the "
                "service user), or point --dir / WELTKLASSE_SNAPSHOT_DIR / [snapshots] "
                "snapshot_dir in the config at the right place."
            )
        if not self.dir.is_dir():
            raise UsageError(f"{where} is not a directory.")
        if not os.access(self.dir, os.R_OK | os.X_OK):
            raise UsageError(f"{where} cannot be read by user {whoami()}. Fix its permissions "
                             "or run as the service user.")
        if writable and not os.access(self.dir, os.W_OK):
            raise UsageError(
                f"{where} is not writable by user {whoami()}, so nothing was changed. Run as "
                "the user that owns it (e.g. `sudo -u weltklassebot ...`) or fix its "
                "permissions."
            )

    # ---- reading ---------------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        """Snapshots, oldest first (the time-stamp prefix sorts chronologically)."""
        found: list[Entry] = []
        for child in self.dir.iterdir():
            match = SNAPSHOT_RE.match(child.name)
            if match is None or child.is_symlink() or not child.is_file():
                continue
            found.append(Entry(child.name, match.group(2), parse_basic(match.group(1)), child))
        return sorted(found, key=lambda e: e.file)

    def entry(self, file: str) -> Entry | None:
        match = SNAPSHOT_RE.match(file)
        path = self.dir / file
        if match is None or path.is_symlink() or not path.is_file():
            return None
        return Entry(file, match.group(2), parse_basic(match.group(1)), path)

    def latest(self) -> LatestState:
        link = self.dir / LATEST
        if not link.is_symlink():
            return LatestState(exists=link.exists(), is_symlink=False, target=None, entry=None)
        target = os.readlink(link)
        entry = self.entry(target) if "/" not in target else None
        return LatestState(exists=True, is_symlink=True, target=target, entry=entry)

    def history(self) -> list[dict[str, Any]]:
        path = self.dir / HISTORY
        if not path.exists():
            return []
        records: list[dict[str, Any]] = []
        with path.open("r", encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    records.append({"line": number, "action": "unreadable", "raw": line[:200]})
                    continue
                records.append(record)
        return records

    # ---- locking ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, timeout_s: float) -> Iterator[None]:
        path = self.dir / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RuntimeFailure(f"cannot open the lock file {path}: {exc.strerror}.") from exc
        try:
            deadline = time.monotonic() + timeout_s
            told = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise RuntimeFailure(f"cannot lock {path}: {exc.strerror}.") from exc
                holder = _describe_holder(path)
                if time.monotonic() >= deadline:
                    raise RuntimeFailure(
                        f"snapshot directory {self.dir} is locked by {holder}; gave up after "
                        f"waiting {timeout_s:g} s, and nothing was changed. Let that command "
                        "finish and try again (or raise --lock-timeout). The lock is released "
                        "automatically when its holder exits."
                    )
                if not told and self.on_wait is not None:
                    self.on_wait(f"waiting up to {timeout_s:g} s for the snapshot lock held by "
                                 f"{holder}")
                    told = True
                time.sleep(0.05)
            info = {"pid": os.getpid(), "host": socket.gethostname(), "user": whoami(),
                    "command": self.command, "since": ns_to_iso(self.clock.now_ns())}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info, sort_keys=True) + "\n").encode(), 0)
            os.fsync(fd)
            fault_point("locked")
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # ---- maintenance under the lock --------------------------------------------------------

    def _clean_leftovers(self) -> list[str]:
        """Remove what an interrupted command left: temp files, temp links, orphan sidecars."""
        removed: list[str] = []
        for child in sorted(self.dir.iterdir(), key=lambda p: p.name):
            name = child.name
            orphan_sidecar = (name.endswith(SIDECAR) and SNAPSHOT_RE.match(name[: -len(SIDECAR)])
                              and not (self.dir / name[: -len(SIDECAR)]).exists())
            if name.startswith(TMP_PREFIX) or orphan_sidecar:
                with contextlib.suppress(FileNotFoundError):
                    child.unlink()
                removed.append(name)
        if removed:
            fsync_dir(self.dir)
        return removed

    def _append_history(self, change: Change) -> None:
        path = self.dir / HISTORY
        previous = _last_line(path)
        record: dict[str, Any] = {
            "schema_version": HISTORY_SCHEMA_VERSION,
            "when": ns_to_iso(self.clock.now_ns()),
            "who": whoami(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "command": self.command,
            "action": change.action,
            "old": change.old,
            "new": change.new,
        }
        if change.removed:
            record["removed"] = change.removed
        record.update({k: v for k, v in change.details.items() if k not in record})
        record["prev_sha256"] = (hashlib.sha256(previous.encode()).hexdigest()
                                 if previous is not None else None)
        line = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(self.dir)

    def _reconcile(self) -> list[str]:
        """Make history explain the current ``latest.parquet`` (after an interrupted command)."""
        state = self.latest()
        current = state.target if state.is_symlink else None
        records = [r for r in self.history() if r.get("action") != "unreadable"]
        recorded = None
        for record in reversed(records):
            if "new" in record and record.get("action") != "prune":
                new = record.get("new")
                recorded = new.get("file") if isinstance(new, dict) else None
                break
        if current == recorded or (current is None and not records):
            return []
        entry = state.entry
        change = Change(
            action="reconcile",
            old={"file": recorded} if recorded else None,
            new={"file": current, "sha256": entry.recorded_sha256() if entry else None}
            if current else None,
            details={"note": "latest.parquet did not match the last history record (an "
                             "interrupted command or a change made by hand); recorded as found"},
        )
        self._append_history(change)
        return [f"history reconciled: latest.parquet points to {current or 'nothing'}, the last "
                f"record said {recorded or 'nothing'} (an interrupted command or a hand-made "
                "change)"]

    def _swap_latest(self, target: str, step_prefix: str) -> None:
        tmp = self.dir / f"{TMP_PREFIX}{LATEST}.{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(target, tmp)
        fault_point(f"{step_prefix}link_created")
        os.replace(tmp, self.dir / LATEST)
        fault_point(f"{step_prefix}swapped")
        fsync_dir(self.dir)
        fault_point(f"{step_prefix}dir_synced")

    def _start(self) -> list[str]:
        notes = []
        removed = self._clean_leftovers()
        if removed:
            notes.append("removed leftovers of an interrupted command: " + ", ".join(removed))
        notes.extend(self._reconcile())
        return notes

    # ---- promote ---------------------------------------------------------------------------

    def promote(self, src: Path, *, name: str | None, timeout_s: float) -> Change:
        from weltklassebot.data.importer import check_name
        from weltklassebot.data.reader import open_snapshot
        from weltklassebot.data.schema import KIND_BARS

        self.require_dir(writable=True)
        src = Path(src)
        snapshot = open_snapshot(src)
        if snapshot.kind != KIND_BARS:
            raise UnusableInput(
                f"snapshot {src} holds trade ticks (ts, price, size, side), but the snapshot "
                "directory serves OHLCV bars to backtests and the live service. Promote a bars "
                "snapshot (aggregate the trades into bars first)."
            )
        if name is None:
            name = snapshot.meta.name if snapshot.meta is not None and snapshot.meta.name else None
        if name is None:
            stem = src.stem
            match = SNAPSHOT_RE.match(src.name)
            stem = match.group(2) if match else stem
            if stem == "latest":
                target = src.resolve()
                match = SNAPSHOT_RE.match(target.name)
                stem = match.group(2) if match else target.stem
            name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.") or "snapshot"
        check_name(name)
        size = src.stat().st_size
        with self.locked(timeout_s):
            notes = self._start()
            free = shutil.disk_usage(self.dir).free
            if free < size + FREE_SPACE_MARGIN:
                raise RuntimeFailure(
                    f"not enough free space in {self.dir}: promoting {src} needs "
                    f"{_mib(size + FREE_SPACE_MARGIN)} and {_mib(free)} is free; nothing was "
                    "changed. Free space (e.g. `python -m cli snapshot prune --keep 3`) and try "
                    "again."
                )
            fault_point("space_checked")
            state = self.latest()
            entries = self.entries()
            created = self.clock.now_ns() // 1000 * 1000
            if entries and created <= entries[-1].created_ns:
                created = entries[-1].created_ns + 1000
                notes.append("the clock is behind the newest snapshot's time; named 1 us after it")
            final = snapshot_file_name(created, name)
            tmp = self.dir / f"{TMP_PREFIX}{final}"
            try:
                sha = _copy_with_hash(src, tmp)
                fault_point("copied")
                report = _validate_copy(src, tmp)
                fault_point("validated")
                current = state.entry
                if current is not None and current.recorded_sha256() == sha:
                    tmp.unlink()
                    return Change(action="promote", old=_ref(current), new=_ref(current),
                                  changed=False,
                                  notes=[*notes, f"{src} has the same bytes as the current "
                                         f"latest snapshot {current.file}; nothing changed"])
                os.chmod(tmp, 0o444)
                with tmp.open("rb") as fh:
                    os.fsync(fh.fileno())
                fault_point("file_synced")
                sidecar_tmp = self.dir / f"{TMP_PREFIX}{final}{SIDECAR}"
                _write_sidecar(sidecar_tmp, sha, final)
                fault_point("sidecar_written")
                os.replace(sidecar_tmp, self.dir / (final + SIDECAR))
                fault_point("sidecar_renamed")
                os.replace(tmp, self.dir / final)
                fsync_dir(self.dir)
                fault_point("renamed")
            except OSError as exc:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise RuntimeFailure(f"promoting {src} into {self.dir} failed: "
                                     f"{exc.strerror or exc}. latest.parquet was not changed."
                                     ) from exc
            except BaseException:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise
            self._swap_latest(final, "")
            new_entry = self.entry(final)
            change = Change(
                action="promote", old=_ref(state.entry), new=_ref(new_entry, sha), notes=notes,
                details={"source": str(src.resolve()), "rows": report.rows,
                         "validation_warnings": list(report.warnings)},
            )
            if state.dangling:
                change.notes.append(f"latest.parquet was dangling (pointed to {state.target})")
            self._append_history(change)
            fault_point("history_written")
            return change

    # ---- rollback --------------------------------------------------------------------------

    def resolve_file(self, to: str) -> Entry:
        candidate = Path(to)
        if candidate.name == LATEST:
            raise UsageError("--to must name a snapshot file, not latest.parquet.")
        if candidate.parent not in (Path("."), Path("")):
            try:
                inside = candidate.resolve().parent == self.dir.resolve()
            except OSError:
                inside = False
            if not inside:
                raise UsageError(f"{to} is not in the snapshot directory {self.dir}. Promote it "
                                 "first with `python -m cli snapshot promote`.")
        entry = self.entry(candidate.name)
        if entry is None:
            names = [e.file for e in self.entries()][-5:]
            raise UsageError(f"no snapshot {candidate.name} in {self.dir}. Newest snapshots: "
                             f"{', '.join(names) or 'none'} (`python -m cli snapshot list`).")
        return entry

    def rollback(self, *, to: str | None, timeout_s: float) -> Change:
        self.require_dir(writable=True)
        with self.locked(timeout_s):
            notes = self._start()
            state = self.latest()
            if to is not None:
                target = self.resolve_file(to)
            else:
                if not state.is_symlink or state.target is None:
                    raise UsageError(
                        f"{self.dir / LATEST} does not exist, so there is no 'previous' "
                        "snapshot; name one with --to FILE (see `python -m cli snapshot list`)."
                    )
                older = [e for e in self.entries() if e.file < state.target]
                if not older:
                    raise UsageError(
                        f"latest.parquet points to {state.target}, the oldest snapshot in "
                        f"{self.dir}; there is nothing older to roll back to."
                    )
                target = older[-1]
            recorded = target.recorded_sha256()
            actual = sha256_file(target.path)
            if recorded != actual:
                raise VerdictFailed(
                    f"refusing to roll back to {target.file}: its SHA-256 is {actual} but its "
                    f"sidecar records {recorded or 'nothing'}; the file is damaged or was "
                    "changed. Pick another snapshot with --to, and run `python -m cli snapshot "
                    "verify`."
                )
            if state.entry is not None and state.entry.file == target.file:
                return Change(action="rollback", old=_ref(state.entry), new=_ref(target),
                              changed=False,
                              notes=[*notes, f"latest.parquet already points to {target.file}"])
            self._swap_latest(target.file, "rollback_")
            change = Change(action="rollback",
                            old=_ref(state.entry) or ({"file": state.target, "sha256": None}
                                                      if state.target else None),
                            new=_ref(target, actual), notes=notes)
            if state.dangling:
                change.notes.append(f"latest.parquet was dangling (pointed to {state.target})")
            self._append_history(change)
            fault_point("rollback_history_written")
            return change

    # ---- prune -----------------------------------------------------------------------------

    def prune(self, *, keep: int, timeout_s: float, dry_run: bool = False) -> Change:
        if keep < MIN_KEEP:
            raise UsageError(
                f"--keep {keep} refused: at least {MIN_KEEP} previous snapshots are kept for "
                "rollback (runbook, Data Snapshots). Use --keep 3 or more."
            )
        self.require_dir(writable=not dry_run)
        with self.locked(timeout_s) if not dry_run else contextlib.nullcontext():
            notes = [] if dry_run else self._start()
            state = self.latest()
            if not state.is_symlink:
                raise UsageError(
                    f"{self.dir / LATEST} does not exist, so prune cannot tell which snapshots "
                    "are in use; nothing was deleted. Promote a snapshot or roll back to one "
                    "first."
                )
            if state.entry is None:
                raise VerdictFailed(
                    f"{self.dir / LATEST} points to {state.target}, which does not exist; "
                    "nothing was deleted. Repair it with `python -m cli snapshot rollback` (to "
                    "the previous snapshot) or `rollback --to FILE`."
                )
            entries = self.entries()
            older = [e for e in entries if e.file < state.entry.file]
            doomed = older[: max(len(older) - keep, 0)]
            removed = [{"file": e.file, "sha256": e.recorded_sha256()} for e in doomed]
            kept = len(entries) - len(doomed)
            change = Change(action="prune", old=_ref(state.entry), new=_ref(state.entry),
                            changed=bool(doomed) and not dry_run, removed=removed, notes=notes,
                            details={"keep": keep, "kept": kept, "dry_run": dry_run})
            if dry_run or not doomed:
                return change
            for number, entry in enumerate(doomed):
                entry.path.unlink()
                with contextlib.suppress(FileNotFoundError):
                    entry.sidecar.unlink()
                fault_point(f"prune_removed_{number}")
            fsync_dir(self.dir)
            self._append_history(change)
            return change

    # ---- verify ----------------------------------------------------------------------------

    def verify(self) -> dict[str, Any]:
        self.require_dir(writable=False)
        problems: list[str] = []
        warnings: list[str] = []
        files: list[dict[str, Any]] = []
        for entry in self.entries():
            recorded = entry.recorded_sha256()
            try:
                actual = sha256_file(entry.path)
            except OSError as exc:
                actual = None
                problems.append(f"{entry.file}: cannot be read ({exc.strerror})")
            status = "ok"
            if recorded is None:
                status = "no sidecar"
                problems.append(f"{entry.file}: no {entry.file}{SIDECAR} holding its SHA-256")
            elif recorded == "":
                status = "bad sidecar"
                problems.append(f"{entry.file}{SIDECAR} does not hold a SHA-256")
            elif actual is not None and actual != recorded:
                status = "MISMATCH"
                problems.append(f"{entry.file}: SHA-256 {actual} differs from the recorded "
                                f"{recorded} (bit rot or tampering)")
            mode = stat.S_IMODE(entry.path.stat().st_mode)
            if mode & 0o222:
                warnings.append(f"{entry.file} is writable (mode {mode:o}); snapshots should be "
                                "read-only (chmod 0444)")
            files.append({"file": entry.file, "status": status, "sha256": actual,
                          "recorded_sha256": recorded})
        state = self.latest()
        latest: dict[str, Any] = {"target": state.target, "ok": state.entry is not None}
        if not state.exists and not state.is_symlink:
            warnings.append("latest.parquet does not exist (no snapshot promoted yet)")
            latest["ok"] = None
        elif not state.is_symlink:
            problems.append("latest.parquet is not a symlink; it must be a relative link to a "
                            "snapshot in this directory")
        elif state.entry is None:
            problems.append(f"latest.parquet points to {state.target}, which is not a snapshot "
                            "in this directory (dangling); repair with `snapshot rollback`")
        for child in sorted(self.dir.iterdir(), key=lambda p: p.name):
            name = child.name
            if name.startswith(TMP_PREFIX):
                warnings.append(f"{name}: left by an interrupted command; the next promote, "
                                "rollback or prune removes it")
            elif name.endswith(SIDECAR) and SNAPSHOT_RE.match(name[: -len(SIDECAR)]) and \
                    not (self.dir / name[: -len(SIDECAR)]).exists():
                warnings.append(f"{name}: sidecar without its snapshot (an interrupted "
                                "command); the next promote, rollback or prune removes it")
        chain = self._verify_history_chain()
        problems.extend(chain)
        last = self._history_mismatch()
        if last:
            warnings.append(last)
        return {"dir": str(self.dir), "ok": not problems, "files": files, "latest": latest,
                "problems": problems, "warnings": warnings}

    def _verify_history_chain(self) -> list[str]:
        path = self.dir / HISTORY
        if not path.exists():
            return []
        problems: list[str] = []
        previous: str | None = None
        with path.open("r", encoding="utf-8") as fh:
            for number, raw in enumerate(fh, start=1):
                line = raw.rstrip("\n")
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    problems.append(f"{HISTORY} line {number} is not valid JSON (damaged)")
                    previous = line
                    continue
                want = hashlib.sha256(previous.encode()).hexdigest() if previous is not None \
                    else None
                if record.get("prev_sha256") != want:
                    problems.append(f"{HISTORY} line {number} does not chain to the line before "
                                    "it: the history was edited or truncated")
                previous = line
        return problems

    def _history_mismatch(self) -> str | None:
        state = self.latest()
        current = state.target if state.is_symlink else None
        records = [r for r in self.history() if r.get("action") not in ("unreadable", "prune")]
        if not records:
            return None
        new = records[-1].get("new")
        recorded = new.get("file") if isinstance(new, dict) else None
        if recorded != current:
            return (f"latest.parquet points to {current or 'nothing'} but the last history record "
                    f"says {recorded or 'nothing'}; the next promote, rollback or prune records "
                    "the difference")
        return None

    # ---- describe --------------------------------------------------------------------------

    def describe(self, entry: Entry) -> dict[str, Any]:
        """Facts for ``list``: rows, symbols, time range, recorded SHA-256 (from the footer)."""
        info: dict[str, Any] = {
            "file": entry.file, "name": entry.name, "created": ns_to_iso(entry.created_ns),
            "size": entry.path.stat().st_size, "sha256": entry.recorded_sha256(),
        }
        try:
            info.update(_footer_facts(entry.path))
        except Exception as exc:  # list shows an unreadable file, it never fails on one
            info["error"] = f"unreadable: {exc}"
        return info


# --------------------------------------------------------------------------------------------
# Helpers used under the lock


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def _copy_with_hash(src: Path, dst: Path) -> str:
    digest = hashlib.sha256()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    fd = os.open(dst, flags, 0o644)
    first = True
    try:
        with src.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
                view = memoryview(chunk)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                if first:
                    fault_point("copy_started")
                    first = False
    finally:
        os.close(fd)
    return digest.hexdigest()


def _validate_copy(src: Path, copy: Path) -> Any:
    """Validate the copied bytes; errors name the source file, not the temporary copy."""
    from weltklassebot.data.schema import KIND_BARS
    from weltklassebot.data.validate import describe_violation, inspect_snapshot

    try:
        report = inspect_snapshot(copy, max_examples=1)
    except UnusableInput as exc:
        raise UnusableInput(exc.message.replace(str(copy), str(src))) from exc
    if report.kind != KIND_BARS:
        raise UnusableInput(f"snapshot {src} holds trade ticks, not OHLCV bars.")
    if report.violations:
        raise InvalidSnapshot(describe_violation(src, report.violations[0])
                              + " Nothing was promoted.")
    return report


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


def _write_sidecar(path: Path, sha: str, file: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o444)
    try:
        os.write(fd, f"{sha}  {file}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _last_line(path: Path) -> str | None:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            end = fh.tell()
            if end == 0:
                return None
            block = min(end, 1 << 16)
            while True:
                fh.seek(end - block)
                data = fh.read(block)
                stripped = data.rstrip(b"\n")
                if b"\n" in stripped or block == end:
                    return stripped.rsplit(b"\n", 1)[-1].decode("utf-8")
                block = min(end, block * 4)
    except FileNotFoundError:
        return None


def _footer_facts(path: Path) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from weltklassebot.data.schema import KIND_BARS, KIND_TRADES, meta_from_schema_metadata

    parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow
    meta = meta_from_schema_metadata(schema.metadata)
    names = schema.names
    kind = meta.kind if meta is not None else (
        KIND_TRADES if "open" not in names and "price" in names else KIND_BARS)
    facts: dict[str, Any] = {"rows": parquet.metadata.num_rows, "kind": kind}
    ts_min: int | None = None
    ts_max: int | None = None
    if "ts" in names:
        index = names.index("ts")
        ts_type = schema.field("ts").type
        per_unit = {"s": NS_PER_SECOND, "ms": 1_000_000, "us": 1_000, "ns": 1}
        unit = per_unit.get(getattr(ts_type, "unit", "ns"), 1)
        for group in range(parquet.metadata.num_row_groups):
            column = parquet.metadata.row_group(group).column(index)
            stats = column.statistics
            if stats is None or not stats.has_min_max:
                ts_min = ts_max = None
                break
            lo, hi = int(stats.min_raw) * unit, int(stats.max_raw) * unit
            ts_min = lo if ts_min is None else min(ts_min, lo)
            ts_max = hi if ts_max is None else max(ts_max, hi)
        if ts_min is None and parquet.metadata.num_rows:
            column = parquet.read(columns=["ts"]).column("ts")
            as_int = pc.cast(column, pa.timestamp("ns", tz="UTC")).cast(pa.int64())
            ts_min = int(pc.min(as_int).as_py())
            ts_max = int(pc.max(as_int).as_py())
    facts["ts_min"] = ns_to_iso(ts_min) if ts_min is not None else None
    facts["ts_max"] = ns_to_iso(ts_max) if ts_max is not None else None
    if "symbol" in names:
        symbols = pc.unique(parquet.read(columns=["symbol"]).column("symbol")).to_pylist()
        facts["symbols"] = sorted(str(s) for s in symbols if s is not None)
    else:
        facts["symbols"] = [meta.symbol] if meta is not None and meta.symbol else []
    if meta is not None and meta.bar_interval_ns:
        facts["bar_interval_ns"] = meta.bar_interval_ns
    return facts
