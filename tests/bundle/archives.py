"""Hand-made archives for the bundle tests: what an attacker or a broken copy could produce.

Every builder writes with ``tarfile`` or by hand, never with ``write_bundle``, so the reader is
tested against archives it did not make. A builder lists its regular files in a valid
``bundle.json`` (as an attacker would, to get past the checksums) unless told otherwise.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import struct
import tarfile
import zlib
from collections.abc import Iterable
from pathlib import Path

from weltklassebot.service.bundle_archive import KIND, MANIFEST_NAME, SCHEMA

CREATED = "2025-03-04T05:06:07Z"
MTIME = 1741064767

Entry = tuple[tarfile.TarInfo, bytes | None]


def entry(name: str, data: bytes | None = b"", *, type_: bytes = tarfile.REGTYPE,
          linkname: str = "", size: int | None = None) -> Entry:
    """One tar entry; ``size`` may differ from ``len(data)`` for headers that lie."""
    info = tarfile.TarInfo(name)
    info.type = type_
    info.linkname = linkname
    info.mtime = MTIME
    info.mode = 0o755 if type_ == tarfile.DIRTYPE else 0o644
    if type_ in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    is_file = type_ in (tarfile.REGTYPE, tarfile.AREGTYPE)
    info.size = (len(data or b"") if size is None else size) if is_file else 0
    return info, data if is_file else None


def listing(entries: Iterable[Entry]) -> dict[str, dict[str, object]]:
    """``members`` as bundle.json states them, for the regular files among ``entries``."""
    return {info.name: {"sha256": hashlib.sha256(data or b"").hexdigest(), "bytes": info.size}
            for info, data in entries if info.type in (tarfile.REGTYPE, tarfile.AREGTYPE)}


def manifest_bytes(members: dict[str, dict[str, object]], **fields: object) -> bytes:
    document: dict[str, object] = {"schema": SCHEMA, "kind": KIND, "created": CREATED,
                                   "run_id": "20250304T050607.000000Z-abcdef12", **fields,
                                   "members": members}
    return json.dumps(document, indent=2, sort_keys=True).encode() + b"\n"


def write_tar_gz(path: Path, entries: Iterable[Entry], *, manifest: bytes | None = None,
                 listed: dict[str, dict[str, object]] | None = None, after_end: bytes = b"",
                 fmt: int = tarfile.PAX_FORMAT) -> Path:
    """A gzip'd tar of ``entries`` after a bundle.json (``manifest`` bytes, else one that lists
    ``listed``, else every regular file). ``after_end`` is appended to the tar stream."""
    entries = list(entries)
    if manifest is None:
        manifest = manifest_bytes(listing(entries) if listed is None else listed)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        tar.addfile(entry(MANIFEST_NAME, manifest)[0], io.BytesIO(manifest))
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    path.write_bytes(gzip.compress(buffer.getvalue() + after_end, mtime=0))
    return path


def read_entries(path: Path) -> list[Entry]:
    """Every entry of a (trusted, test-made) bundle with its data, bundle.json included."""
    out: list[Entry] = []
    with tarfile.open(path, "r:gz") as tar:
        for info in tar:
            handle = tar.extractfile(info) if info.isfile() else None
            out.append((info, handle.read() if handle is not None else None))
    return out


def rewrite(path: Path, entries: Iterable[Entry]) -> Path:
    """Write ``entries`` back as they are (bundle.json included, nothing added)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    path.write_bytes(gzip.compress(buffer.getvalue(), mtime=0))
    return path


def zero_bomb(path: Path, zeros: int = 1 << 30) -> Path:
    """A valid bundle-shaped .tar.gz whose one member is ``zeros`` zero bytes (about 1 MB per
    GiB on disk), built without ever holding or compressing the whole: one compressed MiB of
    zeros, flushed so that it stands alone, is repeated.

    The listed SHA-256 is not the data's (hashing a GiB would slow the test down); a reader that
    judged the checksum before the size would answer "damaged", not refuse.
    """
    chunk = 1 << 20
    assert zeros % chunk == 0
    bomb = entry("snapshot/data.parquet", None, size=zeros)[0]
    bomb_listing = {bomb.name: {"sha256": "0" * 64, "bytes": zeros}}
    document = manifest_bytes(bomb_listing)
    head = io.BytesIO()
    head.write(entry(MANIFEST_NAME, document)[0].tobuf(tarfile.PAX_FORMAT))
    head.write(document + bytes(-len(document) % tarfile.BLOCKSIZE))
    head.write(bomb.tobuf(tarfile.PAX_FORMAT))
    prefix = head.getvalue()
    tail = bytes(2 * tarfile.BLOCKSIZE)

    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zero_block = bytes(chunk)
    with path.open("wb") as out:
        out.write(b"\x1f\x8b\x08\x00" + struct.pack("<I", 0) + b"\x00\xff")
        out.write(compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH))
        crc = zlib.crc32(prefix)
        # After a full flush the compressor starts afresh, so one compressed MiB serves all.
        packed = compressor.compress(zero_block) + compressor.flush(zlib.Z_FULL_FLUSH)
        for _ in range(zeros // chunk):
            out.write(packed)
            crc = zlib.crc32(zero_block, crc)
        out.write(compressor.compress(tail) + compressor.flush(zlib.Z_FINISH))
        crc = zlib.crc32(tail, crc)
        size = len(prefix) + zeros + len(tail)
        out.write(struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF))
    return path
