"""Incident bundles on disk: a deterministic ``.tar.gz`` whose first member lists every other one.

Format (docs/bundles.md): a gzip-compressed POSIX (pax) tar of regular files and directories only,
members in sorted order after ``bundle.json``, owner 0:0, modes 0644/0755, every timestamp the
bundle's creation time. ``bundle.json`` holds the caller's fields and ``members``: each file's
size and SHA-256. The same inputs and creation time give the same bytes.

Writing is durable and atomic: a temporary file beside the target, fsync, rename, fsync of the
directory; a failure (a full disk) removes the temporary file and raises ``BundleWriteError``.

Reading treats the archive as hostile until it has been read to the end: ``verify_bundle`` checks
every rule and checksum without writing anything; ``extract_bundle`` does the same pass first and
only then writes, with its own loop (never ``tarfile.extract*``), into a fresh private directory.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import io
import json
import math
import os
import re
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, cast

from weltklassebot.errors import RuntimeFailure, UnusableInput, VerdictFailed, WeltklasseError
from weltklassebot.fsutil import adopt_directory_owner, fsync_dir

SCHEMA: Final = 1
KIND: Final = "weltklassebot-bundle"
MANIFEST_NAME: Final = "bundle.json"
#: Keys ``write_bundle`` sets itself; ``created`` may be given by the caller (for equal bytes).
RESERVED_KEYS: Final = frozenset({"schema", "kind", "members"})
FILE_MODE: Final = 0o644
DIR_MODE: Final = 0o755
COMPRESS_LEVEL: Final = 6
MAX_NAME_LENGTH: Final = 1024
MAX_PART_LENGTH: Final = 255

KiB: Final = 1 << 10
MiB: Final = 1 << 20
GiB: Final = 1 << 30

_CHUNK = MiB
_NAME_PART = re.compile(r"[A-Za-z0-9._+=@,-]+")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_BLOCK = tarfile.BLOCKSIZE
_SAFE_CHARS = "letters, digits and . _ - + = @ ,"
_UNSAFE_PART = "has an empty, '.' or '..' path component"


@dataclass(frozen=True)
class Limits:
    """What a bundle may hold before reading it is refused (every pass, verify and extract).

    A snapshot can be large, so the byte limits are generous; the ratio limit stops a small file
    that inflates to a huge one long before much is read.
    """

    max_members: int = 10_000
    max_total_bytes: int = 20 * GiB
    max_member_bytes: int = 20 * GiB
    max_ratio: float = 200.0
    #: The ratio is judged once this much has been decompressed (small archives of tar padding
    #: compress far better than 200:1 and are harmless).
    ratio_after_bytes: int = 8 * MiB
    max_manifest_bytes: int = 16 * MiB
    #: Tar header bytes (pax or GNU long-name records included) before one member's data.
    max_header_bytes: int = MiB


@dataclass(frozen=True)
class BundleMember:
    """One regular file of a bundle as ``bundle.json`` lists it."""

    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class BundleInfo:
    """A bundle's manifest (all of ``bundle.json``) and its listed files, sorted by name."""

    path: Path
    manifest: dict[str, Any]
    members: tuple[BundleMember, ...]
    archive_bytes: int

    @property
    def created(self) -> str:
        return str(self.manifest["created"])

    @property
    def run_id(self) -> str | None:
        value = self.manifest.get("run_id")
        return None if value is None else str(value)

    @property
    def total_bytes(self) -> int:
        return sum(member.size for member in self.members)

    def member(self, name: str) -> BundleMember:
        for member in self.members:
            if member.name == name:
                return member
        raise KeyError(name)


# ---------------------------------------------------------------------------------- errors


class BundleUnreadable(UnusableInput):
    """Missing, unreadable, or not a weltklassebot bundle at all (exit 2)."""

    def __init__(self, path: Path, reason: str, advice: str = "") -> None:
        self.path = path
        self.reason = reason
        advice = advice or ("Check the path; `python -m cli bundle RUN_DIR|STATE_DIR` writes a "
                            "bundle")
        super().__init__(f"bundle {path}: {reason}. {advice}.")


class BundleRefused(UnusableInput):
    """A member breaks a safety rule or a limit; nothing was extracted (exit 2)."""

    def __init__(self, path: Path, member: str | None, rule: str, *, limit: bool = False,
                 expanded_bytes: int | None = None) -> None:
        self.path = path
        self.member = member
        self.rule = rule
        self.expanded_bytes = expanded_bytes
        where = f"member {member!r}" if member is not None else "the archive"
        advice = ("If the bundle is genuine and only larger than the limit, raise the limit "
                  "(`python -m cli bundle verify --max-bytes/--max-members`)" if limit else
                  "weltklassebot never writes such an archive: treat it as tampered with and get "
                  "the bundle again from where it was written")
        super().__init__(f"bundle {path} refused: {where} {rule}. Nothing was extracted; "
                         f"{advice}.")


class BundleDamaged(VerdictFailed):
    """The archive does not match its own ``bundle.json``: a verdict, exit 1."""

    def __init__(self, path: Path, member: str | None, reason: str) -> None:
        self.path = path
        self.member = member
        self.reason = reason
        where = f"member {member!r} " if member is not None else ""
        super().__init__(f"bundle {path} is damaged: {where}{reason}. The archive changed after "
                         "it was written (a copy cut short, a disk error, an edit); use another "
                         "copy or write the bundle again.")


class BundleWriteError(RuntimeFailure):
    """A bundle could not be written; nothing is left under its final name (exit 3)."""

    def __init__(self, path: Path, cause: str, member: str | None = None,
                 errno_: int | None = None) -> None:
        self.path = path
        self.cause = cause
        self.member = member
        self.errno = errno_
        super().__init__(f"cannot write bundle {path}: {cause}. No bundle was left under that "
                         "name (the partial file was removed); fix the cause (free space, "
                         "permissions, or choose another --out) and write it again.")


class BundleExtractError(RuntimeFailure):
    """The extraction directory could not be written (a full disk); it was removed (exit 3)."""

    def __init__(self, path: Path, root: Path, exc: OSError) -> None:
        self.path = path
        super().__init__(f"cannot extract bundle {path} into {root}: {_os_cause(exc)}. The "
                         "temporary directory was removed; free space there (or point TMPDIR "
                         "elsewhere) and try again.")


def _os_cause(exc: OSError, name_file: bool = True) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device (ENOSPC)"
    text = exc.strerror or str(exc)
    return f"{text} ({exc.filename})" if exc.filename and name_file else text


# ---------------------------------------------------------------------------------- names


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a member name, or None. The same rule for writing and reading."""
    if not name:
        return "has an empty name"
    if name.startswith("/"):
        return "has an absolute path"
    if len(name) > MAX_NAME_LENGTH:
        return f"has a name longer than {MAX_NAME_LENGTH} characters"
    for part in name.split("/"):
        if part == "..":
            return "has a '..' path component"
        if part in ("", "."):
            return "has an empty or '.' path component"
        if len(part) > MAX_PART_LENGTH:
            return f"has a path component longer than {MAX_PART_LENGTH} characters"
        if not _NAME_PART.fullmatch(part):
            return f"has characters other than {_SAFE_CHARS} in its name"
    return None


class _Names:
    """Names seen so far; refuses duplicates and names that collide once case is folded.

    Case folding keeps an extraction onto a case-insensitive file system from merging two
    members; a file may not also be a directory (``a`` and ``a/b``).
    """

    def __init__(self) -> None:
        self._kind: dict[str, str] = {}  # folded name -> "file" | "dir" | "parent"
        self._spelling: dict[str, str] = {}

    def add(self, name: str, is_dir: bool) -> str | None:
        parts = name.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            problem = self._claim(parent, "parent")
            if problem is not None:
                return problem
        return self._claim(name, "dir" if is_dir else "file")

    def _claim(self, name: str, kind: str) -> str | None:
        key = name.lower()
        seen_kind = self._kind.get(key)
        if seen_kind is None:
            self._kind[key] = kind
            self._spelling[key] = name
            return None
        spelling = self._spelling[key]
        if spelling != name:
            return f"collides with {spelling!r} (the names differ only in case)"
        if kind == "parent":
            return None if seen_kind != "file" else f"lies under {name!r}, which is a file"
        if seen_kind == "parent":
            if kind == "dir":
                self._kind[key] = "dir"
                return None
            return "is a file, but earlier members lie under it as a directory"
        return "appears twice (duplicate name)"


# ---------------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class _Planned:
    name: str
    source: Path | bytes | None  # None: a directory entry
    size: int
    sha256: str


def _created(value: object) -> tuple[str, int]:
    """The manifest's creation time (ISO 8601 UTC) and the whole second used as tar/gzip mtime.

    A string is kept as the caller wrote it (the lead's precision is theirs); a datetime or the
    default, now, is written ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``.
    """
    if value is None:
        moment = datetime.now(UTC).replace(microsecond=0)
    elif isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"bundle manifest 'created' {value!r} is not an ISO 8601 "
                             "time") from None
    else:
        raise ValueError(f"bundle manifest 'created' must be an ISO 8601 string or a datetime, "
                         f"not {type(value).__name__}")
    offset = moment.utcoffset()
    if offset is None or offset.total_seconds() != 0:
        raise ValueError(f"bundle manifest 'created' {value!r} is not in UTC (end it in Z)")
    mtime = math.floor(moment.timestamp())
    if isinstance(value, str):
        return value, mtime
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{moment:%f}" if moment.microsecond else "")
    return text + "Z", mtime


def _hash_file(name: str, source: Path, bundle: Path) -> tuple[int, str]:
    """Size and SHA-256 of ``source`` as it is now; a file that grows later is cut at this size."""
    digest = hashlib.sha256()
    try:
        with source.open("rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise BundleWriteError(bundle, f"member {name!r} ({source}) is not a regular file",
                                       name)
            left = info.st_size
            while left:
                block = handle.read(min(_CHUNK, left))
                if not block:
                    raise BundleWriteError(bundle, f"member {name!r} ({source}) shrank while it "
                                           "was being read", name)
                digest.update(block)
                left -= len(block)
    except OSError as exc:
        raise BundleWriteError(bundle, f"cannot read member {name!r} from {source}: "
                               f"{_os_cause(exc, False)}", name, exc.errno) from exc
    return info.st_size, digest.hexdigest()


class _HashingReader:
    """The source side of ``tarfile.addfile``: the first ``size`` bytes, hashed as they pass."""

    def __init__(self, handle: IO[bytes], size: int, bundle: Path, entry: _Planned,
                 source: Path) -> None:
        self._handle = handle
        self._left = size
        self._bundle = bundle
        self._entry = entry
        self._source = source
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        want = self._left if size < 0 else min(size, self._left)
        block = self._handle.read(want)
        if want and not block:
            raise BundleWriteError(self._bundle, f"member {self._entry.name!r} ({self._source}) "
                                   "shrank while the bundle was written", self._entry.name)
        self._left -= len(block)
        self.digest.update(block)
        return block


def _tarinfo(name: str, size: int, mtime: int, is_dir: bool) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    info.size = 0 if is_dir else size
    info.mode = DIR_MODE if is_dir else FILE_MODE
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _plan(bundle: Path, manifest: Mapping[str, Any],
          members: Iterable[tuple[str, Path | bytes]]) -> tuple[bytes, int, list[_Planned]]:
    """Pass 1: check names, hash every member, build ``bundle.json``; nothing is written yet."""
    reserved = sorted(RESERVED_KEYS & set(manifest))
    if reserved:
        raise ValueError(f"bundle manifest keys {reserved} are set by write_bundle itself")
    names = _Names()
    names.add(MANIFEST_NAME, False)
    files: dict[str, _Planned] = {}
    for name, source in members:
        problem = name_problem(name) or names.add(name, False)
        if problem is not None:
            raise ValueError(f"bundle member {name!r} {problem}")
        if isinstance(source, bytes):
            files[name] = _Planned(name, source, len(source), hashlib.sha256(source).hexdigest())
        elif isinstance(source, Path):
            size, digest = _hash_file(name, source, bundle)
            files[name] = _Planned(name, source, size, digest)
        else:
            raise TypeError(f"bundle member {name!r}: source must be a Path or bytes, not "
                            f"{type(source).__name__}")
    created, mtime = _created(manifest.get("created"))
    document = {**manifest, "schema": SCHEMA, "kind": KIND, "created": created,
                "members": {name: {"sha256": f.sha256, "bytes": f.size}
                            for name, f in sorted(files.items())}}
    try:
        text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bundle manifest is not plain JSON: {exc}") from None
    directories = {"/".join(name.split("/")[:depth])
                   for name in files for depth in range(1, name.count("/") + 1)}
    entries = [*files.values(), *(_Planned(d, None, 0, "") for d in directories)]
    entries.sort(key=lambda entry: entry.name)
    return (text + "\n").encode("ascii"), mtime, entries


def _write_entries(out: IO[bytes], bundle: Path, document: bytes, mtime: int,
                   entries: list[_Planned]) -> None:
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=mtime,
                       compresslevel=COMPRESS_LEVEL) as compressed, \
            tarfile.open(fileobj=compressed, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_tarinfo(MANIFEST_NAME, len(document), mtime, False), io.BytesIO(document))
        for entry in entries:
            info = _tarinfo(entry.name, entry.size, mtime, entry.source is None)
            if entry.source is None:
                tar.addfile(info)
            elif isinstance(entry.source, bytes):
                tar.addfile(info, io.BytesIO(entry.source))
            else:
                _add_file(tar, info, entry, entry.source, bundle)


def _add_file(tar: tarfile.TarFile, info: tarfile.TarInfo, entry: _Planned, source: Path,
              bundle: Path) -> None:
    try:
        handle = source.open("rb")
    except OSError as exc:
        raise BundleWriteError(bundle, f"cannot read member {entry.name!r} from {source}: "
                               f"{_os_cause(exc, False)}", entry.name, exc.errno) from exc
    with handle:
        reader = _HashingReader(handle, entry.size, bundle, entry, source)
        tar.addfile(info, cast(IO[bytes], reader))
    if reader.digest.hexdigest() != entry.sha256:
        raise BundleWriteError(bundle, f"member {entry.name!r} ({source}) changed while the "
                               "bundle was written (its bytes differ from when it was hashed)",
                               entry.name)


def write_bundle(path: Path, manifest: Mapping[str, Any],
                 members: Iterable[tuple[str, Path | bytes]]) -> BundleInfo:
    """Write the bundle at ``path`` atomically and durably; return what it holds.

    ``members`` are (arcname, source): a file on disk is streamed (hashed first, then copied and
    hashed again, so a file that grows meanwhile is captured at its first size and one that is
    rewritten is an error) or bytes in memory. ``manifest`` holds the caller's JSON fields and
    may set ``created`` (an aware datetime or ISO string; default now) for reproducible bytes.
    Bad names or manifest keys are the caller's bug (``ValueError``); anything on disk going
    wrong raises ``BundleWriteError`` and leaves nothing under ``path``.
    """
    path = Path(path)
    document, mtime, entries = _plan(path, manifest, members)
    parent = path.parent
    temporary: Path | None = None
    try:
        if not parent.is_dir():
            parent.mkdir(parents=True, exist_ok=True)
            adopt_directory_owner(parent)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=parent)
        temporary = Path(name)
        with os.fdopen(fd, "wb") as out:
            _write_entries(out, path, document, mtime, entries)
            out.flush()
            os.fchmod(out.fileno(), FILE_MODE)
            os.fsync(out.fileno())
        adopt_directory_owner(temporary, parent)
        os.replace(temporary, path)
        temporary = None
        fsync_dir(parent)
        archive_bytes = path.stat().st_size
    except BaseException as exc:
        if temporary is not None:
            with contextlib.suppress(OSError):
                temporary.unlink()
        if isinstance(exc, OSError):
            raise BundleWriteError(path, _os_cause(exc), errno_=exc.errno) from exc
        raise
    listed = json.loads(document)
    return BundleInfo(path, listed, _listed_members(listed), archive_bytes)


def _listed_members(manifest: Mapping[str, Any]) -> tuple[BundleMember, ...]:
    members: Mapping[str, Mapping[str, Any]] = manifest["members"]
    return tuple(BundleMember(name, str(entry["sha256"]), int(entry["bytes"]))
                 for name, entry in sorted(members.items()))


# ---------------------------------------------------------------------------------- reading


class _CorruptStream(Exception):
    """The gzip stream does not decompress (bad deflate data, CRC or length)."""


class _Inflater(io.RawIOBase):
    """The decompressed stream as tarfile reads it; every block read is held to the limits.

    Counting here (not per member) also covers tar headers, pax records and whatever follows the
    end of the archive, so no part of the stream can expand unchecked.
    """

    def __init__(self, raw: io.FileIO, bundle: Path, limits: Limits) -> None:
        super().__init__()
        self._raw = raw
        self._gzip = gzip.GzipFile(fileobj=raw, mode="rb")
        self._bundle = bundle
        self._limits = limits
        # Headers, padding and the end-of-archive blocks may add this much beyond the members.
        self._stream_cap = (limits.max_total_bytes + limits.max_manifest_bytes
                            + (limits.max_members + 2) * 4 * _BLOCK + 64 * KiB)
        self.produced = 0
        self.header_bytes = 0
        self.in_header = True
        self.member: str | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        try:
            block = self._gzip.read(_CHUNK if size is None or size < 0 else size)
        except (gzip.BadGzipFile, zlib.error) as exc:
            # tarfile would report a zlib error as "not a tar file"; keep it distinct.
            raise _CorruptStream(str(exc)) from None
        self.produced += len(block)
        limits = self._limits
        if self.in_header:
            self.header_bytes += len(block)
            if self.header_bytes > limits.max_header_bytes + tarfile.RECORDSIZE:
                raise BundleRefused(self._bundle, self.member,
                                    f"is followed by a tar header of more than "
                                    f"{_size(limits.max_header_bytes)} (pax or long-name "
                                    "records)")
        if self.produced > self._stream_cap:
            raise BundleRefused(self._bundle, self.member,
                                f"takes the archive past {_size(self._stream_cap)} decompressed",
                                limit=True, expanded_bytes=self.produced)
        compressed = max(self._raw.tell(), 1)
        if (self.produced > limits.ratio_after_bytes
                and self.produced > limits.max_ratio * compressed):
            raise BundleRefused(self._bundle, self.member,
                                f"expands the archive more than {limits.max_ratio:g} times "
                                f"({_size(self.produced)} from {_size(compressed)} compressed): "
                                "a decompression bomb", expanded_bytes=self.produced)
        return block


def _size(count: int) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


_TYPE_NAMES = {
    tarfile.SYMTYPE: "symbolic link", tarfile.LNKTYPE: "hard link",
    tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device",
    tarfile.FIFOTYPE: "FIFO (named pipe)", tarfile.CONTTYPE: "contiguous file",
    tarfile.GNUTYPE_SPARSE: "sparse file",
}


def _kind(member: tarfile.TarInfo) -> str | None:
    """``"file"``, ``"dir"``, or None when the type is refused."""
    if member.type in (tarfile.REGTYPE, tarfile.AREGTYPE) and member.sparse is None:
        return "file"
    if member.type == tarfile.DIRTYPE:
        return "dir"
    return None


class _Extractor:
    """Writes members under ``root`` through directory descriptors: never through a link."""

    def __init__(self, bundle: Path, root: Path) -> None:
        self.bundle = bundle
        self.root = root
        self._root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)

    def close(self) -> None:
        os.close(self._root_fd)

    def _directory(self, parts: list[str]) -> int:
        fd = os.dup(self._root_fd)
        try:
            for part in parts:
                # The scan has refused such names already; this keeps the writer safe alone.
                if part in ("", ".", "..") or "/" in part:
                    raise BundleRefused(self.bundle, "/".join(parts), _UNSAFE_PART)
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, DIR_MODE, dir_fd=fd)
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                dir_fd=fd)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def make_dir(self, name: str) -> None:
        try:
            os.close(self._directory(name.split("/")))
        except OSError as exc:
            raise BundleExtractError(self.bundle, self.root, exc) from exc

    def open_file(self, name: str) -> int:
        parts = name.split("/")
        if parts[-1] in ("", ".", ".."):
            raise BundleRefused(self.bundle, name, _UNSAFE_PART)
        try:
            directory = self._directory(parts[:-1])
            try:
                return os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                               | os.O_CLOEXEC, FILE_MODE, dir_fd=directory)
            finally:
                os.close(directory)
        except OSError as exc:
            raise BundleExtractError(self.bundle, self.root, exc) from exc

    def write(self, fd: int, block: bytes) -> None:
        view = memoryview(block)
        try:
            while view:
                view = view[os.write(fd, view):]
        except OSError as exc:
            raise BundleExtractError(self.bundle, self.root, exc) from exc


def _parse_manifest(bundle: Path, data: bytes, limits: Limits) -> tuple[dict[str, Any],
                                                                         dict[str, BundleMember]]:
    try:
        manifest = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleDamaged(bundle, MANIFEST_NAME, f"is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise BundleDamaged(bundle, MANIFEST_NAME, "is not a JSON object")
    if manifest.get("kind") != KIND:
        raise BundleUnreadable(bundle, f"is not a weltklassebot bundle ({MANIFEST_NAME} has kind "
                               f"{manifest.get('kind')!r}, not {KIND!r})")
    if manifest.get("schema") != SCHEMA:
        raise BundleUnreadable(bundle, f"has bundle schema {manifest.get('schema')!r}; this "
                               f"version reads schema {SCHEMA}",
                               "Use the weltklassebot version that wrote it")
    created = manifest.get("created")
    try:
        if not isinstance(created, str) or datetime.fromisoformat(created).tzinfo is None:
            raise ValueError
    except ValueError:
        raise BundleDamaged(bundle, MANIFEST_NAME,
                            f"has no valid 'created' time ({created!r})") from None
    listed = manifest.get("members")
    if not isinstance(listed, dict):
        raise BundleDamaged(bundle, MANIFEST_NAME, "has no 'members' object")
    if len(listed) + 1 > limits.max_members:
        raise BundleRefused(bundle, MANIFEST_NAME, f"lists {len(listed)} members, more than the "
                            f"limit of {limits.max_members}", limit=True)
    names = _Names()
    names.add(MANIFEST_NAME, False)
    expected: dict[str, BundleMember] = {}
    total = 0
    for name, entry in listed.items():
        problem = name_problem(name) or names.add(name, False)
        if problem is not None:
            raise BundleRefused(bundle, MANIFEST_NAME, f"lists a member that {problem} ({name!r})")
        if (not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str)
                or not _SHA256.fullmatch(entry["sha256"]) or type(entry.get("bytes")) is not int
                or entry["bytes"] < 0):
            raise BundleDamaged(bundle, MANIFEST_NAME, f"has a malformed entry for {name!r} "
                                "(it needs 'sha256': 64 lowercase hex digits and 'bytes': n)")
        expected[name] = BundleMember(name, entry["sha256"], entry["bytes"])
        total += entry["bytes"]
    if total > limits.max_total_bytes:
        raise BundleRefused(bundle, MANIFEST_NAME, f"lists {_size(total)} of members, more than "
                            f"the limit of {_size(limits.max_total_bytes)}", limit=True)
    return manifest, expected


class _Scan:
    """One pass over the archive: every rule, every checksum; writes only through ``sink``."""

    def __init__(self, bundle: Path, fd: int, limits: Limits, sink: _Extractor | None) -> None:
        self.bundle = bundle
        self.fd = fd
        self.limits = limits
        self.sink = sink
        self.names = _Names()
        self.count = 0
        self.declared = 0
        self.manifest: dict[str, Any] | None = None
        self.expected: dict[str, BundleMember] = {}
        self.directories: set[str] = set()
        self.seen: set[str] = set()

    def run(self) -> BundleInfo:
        os.lseek(self.fd, 0, os.SEEK_SET)
        raw = io.FileIO(self.fd, "rb", closefd=False)
        magic = raw.read(2)
        if not magic:
            raise BundleUnreadable(self.bundle, "is an empty file")
        if magic != b"\x1f\x8b":
            raise BundleUnreadable(self.bundle, "is not a gzip file (a bundle is a .tar.gz)")
        raw.seek(0)
        stream = _Inflater(raw, self.bundle, self.limits)
        try:
            self._members(stream)
        except WeltklasseError:
            raise
        except EOFError:
            raise BundleDamaged(self.bundle, None, self._at(stream, "the archive ends early (it "
                                "was cut short)")) from None
        except _CorruptStream as exc:
            raise BundleDamaged(self.bundle, None, self._at(stream, f"the compressed data is "
                                                            f"corrupt ({exc})")) from None
        except tarfile.TarError as exc:
            if self.count == 0:
                raise BundleUnreadable(self.bundle, f"is not a tar archive ({exc})") from None
            raise BundleDamaged(self.bundle, None, self._at(stream, f"the tar data is corrupt "
                                                            f"({exc})")) from None
        except OSError as exc:
            raise BundleUnreadable(self.bundle, f"cannot be read: {_os_cause(exc, False)}") from exc
        assert self.manifest is not None
        return BundleInfo(self.bundle, self.manifest, tuple(sorted(
            self.expected.values(), key=lambda member: member.name)), os.fstat(self.fd).st_size)

    @staticmethod
    def _at(stream: _Inflater, what: str) -> str:
        if stream.member is None:
            return what
        return f"{what}, in or after member {stream.member!r}"

    def _members(self, stream: _Inflater) -> None:
        with tarfile.open(fileobj=cast(IO[bytes], stream), mode="r|") as tar:
            for member in tar:
                stream.in_header = False
                stream.member = member.name
                self._member(tar, member)
                stream.in_header = True
                stream.header_bytes = 0
        if self.manifest is None:
            raise BundleUnreadable(self.bundle, f"is an empty tar archive (no {MANIFEST_NAME})")
        missing = sorted(set(self.expected) - self.seen)
        if missing:
            others = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise BundleDamaged(self.bundle, missing[0], f"is listed in {MANIFEST_NAME} but "
                                f"missing from the archive{others}")
        stream.in_header = False
        stream.member = None
        # What follows the end-of-archive blocks must be padding; reading it to the end also
        # makes gzip check its CRC and length.
        while block := stream.read(_CHUNK):
            if block.strip(b"\0"):
                raise BundleDamaged(self.bundle, None, "there is data after the end of the tar "
                                    "archive")

    def _refuse(self, name: str, rule: str, *, limit: bool = False) -> BundleRefused:
        return BundleRefused(self.bundle, name, rule, limit=limit)

    def _member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        limits, name = self.limits, member.name
        self.count += 1
        if self.count > limits.max_members:
            raise self._refuse(name, f"is member number {self.count}: more than the limit of "
                               f"{limits.max_members} members", limit=True)
        problem = name_problem(name)
        if problem is not None:
            raise self._refuse(name, problem)
        kind = _kind(member)
        if kind is None:
            what = _TYPE_NAMES.get(member.type, f"tar entry of type {member.type!r}")
            raise self._refuse(name, f"is a {what}: only regular files and directories are "
                               "allowed")
        problem = self.names.add(name, kind == "dir")
        if problem is not None:
            raise self._refuse(name, problem)
        if kind == "file" and self.count > 1:  # bundle.json has a limit of its own
            if member.size > limits.max_member_bytes:
                raise self._refuse(name, f"is {_size(member.size)}, more than the limit of "
                                   f"{_size(limits.max_member_bytes)} for one member", limit=True)
            self.declared += member.size
            if self.declared > limits.max_total_bytes:
                raise self._refuse(name, f"takes the members past the limit of "
                                   f"{_size(limits.max_total_bytes)} in all", limit=True)
        if self.count == 1:
            self._manifest(tar, member, kind)
        elif kind == "dir":
            if name not in self.directories:
                raise BundleDamaged(self.bundle, name, f"is a directory that no file listed in "
                                    f"{MANIFEST_NAME} lies under")
            if self.sink is not None:
                self.sink.make_dir(name)
        else:
            self._file(tar, member)

    def _manifest(self, tar: tarfile.TarFile, member: tarfile.TarInfo, kind: str) -> None:
        if member.name != MANIFEST_NAME or kind != "file":
            raise BundleUnreadable(self.bundle, f"is not a weltklassebot bundle (its first member "
                                   f"is {member.name!r}, not {MANIFEST_NAME})")
        if member.size > self.limits.max_manifest_bytes:
            raise self._refuse(member.name, f"is {_size(member.size)}, more than the limit of "
                               f"{_size(self.limits.max_manifest_bytes)}", limit=True)
        handle = tar.extractfile(member)
        assert handle is not None
        data = handle.read()
        if len(data) != member.size:
            raise EOFError
        self.manifest, self.expected = _parse_manifest(self.bundle, data, self.limits)
        self.directories = {"/".join(name.split("/")[:depth]) for name in self.expected
                            for depth in range(1, name.count("/") + 1)}

    def _file(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        name = member.name
        listed = self.expected.get(name)
        if listed is None:
            raise BundleDamaged(self.bundle, name, f"is not listed in {MANIFEST_NAME}")
        if member.size != listed.size:
            raise BundleDamaged(self.bundle, name, f"is {member.size} bytes but {MANIFEST_NAME} "
                                f"records {listed.size}")
        handle = tar.extractfile(member)
        assert handle is not None
        digest = hashlib.sha256()
        out = self.sink.open_file(name) if self.sink is not None else None
        try:
            while block := handle.read(_CHUNK):
                digest.update(block)
                if out is not None:
                    assert self.sink is not None
                    self.sink.write(out, block)
        finally:
            if out is not None:
                os.close(out)
        if digest.hexdigest() != listed.sha256:
            raise BundleDamaged(self.bundle, name, f"has SHA-256 {digest.hexdigest()} but "
                                f"{MANIFEST_NAME} records {listed.sha256}")
        self.seen.add(name)


def _open_bundle(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise BundleUnreadable(path, f"cannot be opened: {_os_cause(exc, False)}") from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise BundleUnreadable(path, "is not a regular file")
    return fd


def verify_bundle(path: Path, limits: Limits = Limits()) -> BundleInfo:
    """Read the whole bundle and check every rule and checksum; write nothing.

    Raises ``BundleDamaged`` (exit 1) when the archive disagrees with its ``bundle.json``,
    ``BundleRefused`` (exit 2) for an unsafe member or a limit, ``BundleUnreadable`` (exit 2)
    when the file is missing, unreadable or not a bundle.
    """
    path = Path(path)
    fd = _open_bundle(path)
    try:
        return _Scan(path, fd, limits, None).run()
    finally:
        os.close(fd)


class ExtractedBundle:
    """A verified bundle extracted into a fresh private directory, removed on ``close``.

    Use as a context manager; ``root`` holds the listed files (and ``bundle.json`` is only in
    ``manifest``), ``path(name)`` gives one of them.
    """

    def __init__(self, info: BundleInfo, directory: tempfile.TemporaryDirectory[str]) -> None:
        self.info = info
        self._directory = directory
        self.root = Path(directory.name)

    @property
    def manifest(self) -> dict[str, Any]:
        return self.info.manifest

    def path(self, name: str) -> Path:
        """Where listed member ``name`` was extracted (KeyError when it is not in the bundle)."""
        self.info.member(name)
        return self.root / name

    def close(self) -> None:
        self._directory.cleanup()

    def __enter__(self) -> ExtractedBundle:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def extract_bundle(path: Path, limits: Limits = Limits(), *,
                   parent: Path | None = None) -> ExtractedBundle:
    """Verify the bundle, then extract it into a fresh temporary directory under ``parent``
    (default: the system's, ``TMPDIR``).

    The first pass checks everything and writes nothing, so a hostile or damaged archive is
    refused before any file exists; the second pass writes regular files only (``O_EXCL |
    O_NOFOLLOW``, through directory descriptors) and checks each checksum again, so a file
    that changes between the passes is caught too. On any failure the directory is removed.
    """
    path = Path(path)
    fd = _open_bundle(path)
    try:
        _Scan(path, fd, limits, None).run()
        try:
            directory = tempfile.TemporaryDirectory(prefix="weltklassebot-bundle-", dir=parent)
        except OSError as exc:
            where = parent if parent is not None else Path(tempfile.gettempdir())
            raise BundleExtractError(path, where, exc) from exc
        try:
            extractor = _Extractor(path, Path(directory.name))
            try:
                info = _Scan(path, fd, limits, extractor).run()
            finally:
                extractor.close()
        except BaseException:
            directory.cleanup()
            raise
    finally:
        os.close(fd)
    return ExtractedBundle(info, directory)
