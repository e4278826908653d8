"""The bundle archive: round trip, reproducible bytes, the exact format, damage found and named,
and a write that fails (a full disk) leaving nothing under the final name."""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import stat
import struct
import tarfile
from pathlib import Path

import pytest

from support.tmpfs import mounted_tmpfs
from weltklassebot.errors import RuntimeFailure, UnusableInput, VerdictFailed
from weltklassebot.service import bundle_archive
from weltklassebot.service.bundle_archive import (
    BundleDamaged,
    BundleUnreadable,
    BundleWriteError,
    Limits,
    extract_bundle,
    name_problem,
    verify_bundle,
    write_bundle,
)

from .archives import CREATED, entry, manifest_bytes, read_entries, rewrite, write_tar_gz

SNAPSHOT_BYTES = 3 * (1 << 20) + 17


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, Path | bytes]:
    """Members as the lead's bundle command passes them: files on disk and bytes in memory."""
    src = tmp_path / "src"
    (src / "state").mkdir(parents=True)
    segment = src / "state" / "segment-000001.jsonl"
    segment.write_text("".join(f'{{"seq": {i}, "kind": "fill"}}\n' for i in range(2000)))
    snapshot = src / "btc.parquet"
    with snapshot.open("wb") as handle:  # incompressible, several read blocks long
        seed = b"weltklasse"
        for i in range(SNAPSHOT_BYTES // 32 + 1):
            handle.write(hashlib.sha256(seed + i.to_bytes(8, "little")).digest())
        handle.truncate(SNAPSHOT_BYTES)
    empty = src / "empty.log"
    empty.write_bytes(b"")
    return {
        "state/segment-000001.jsonl": segment,
        "snapshot/btc.parquet": snapshot,
        "logs/service.jsonl": empty,
        "metrics.txt": b"risk_state{state=\"HALTED\"} 1\n",
        "runs/20250304T050607.000000Z-abcdef12/records/fills.jsonl": b'{"fill": 1}\n',
    }


def _content(source: Path | bytes) -> bytes:
    return source.read_bytes() if isinstance(source, Path) else source


def _write(path: Path, sources: dict[str, Path | bytes], created: str = CREATED,
           **fields: object) -> bundle_archive.BundleInfo:
    return write_bundle(path, {"created": created, "run_id": "r-1", **fields},
                        list(sources.items()))


def test_round_trip_writes_verifies_and_extracts_equal_files(
        tmp_path: Path, sources: dict[str, Path | bytes]) -> None:
    path = tmp_path / "out" / "incident.tar.gz"
    written = _write(path, sources, seed=7, config={"risk": {"max_drawdown": "0.1"}})
    assert sorted(m.name for m in written.members) == sorted(sources)
    assert written.created == CREATED
    assert written.run_id == "r-1"
    assert written.manifest["seed"] == 7
    assert written.manifest["config"]["risk"]

    verified = verify_bundle(path)
    assert verified.members == written.members
    assert verified.manifest == written.manifest
    assert verified.archive_bytes == path.stat().st_size
    assert verified.total_bytes == sum(len(_content(s)) for s in sources.values())

    parent = tmp_path / "extract"
    parent.mkdir()
    with extract_bundle(path, parent=parent) as bundle:
        root = bundle.root
        assert root.parent == parent
        for name, source in sources.items():
            extracted = bundle.path(name)
            assert extracted.read_bytes() == _content(source), name
            assert stat.S_IMODE(extracted.stat().st_mode) == 0o644
        files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        assert files == sorted(sources)  # bundle.json stays in .manifest, not on disk
        assert bundle.manifest["run_id"] == "r-1"
        with pytest.raises(KeyError):
            bundle.path("bundle.json")
    assert not root.exists()
    assert list(parent.iterdir()) == []


def test_the_same_inputs_and_creation_time_give_the_same_bytes(
        tmp_path: Path, sources: dict[str, Path | bytes]) -> None:
    first = tmp_path / "a" / "one.tar.gz"
    second = tmp_path / "b" / "two.tar.gz"
    _write(first, sources)
    _write(second, dict(reversed(list(sources.items()))))  # order of the caller's list is free
    assert first.read_bytes() == second.read_bytes()
    later = tmp_path / "c.tar.gz"
    _write(later, sources, created="2025-03-04T05:06:08+00:00")
    assert later.read_bytes() != first.read_bytes()


def test_the_archive_has_the_documented_shape(
        tmp_path: Path, sources: dict[str, Path | bytes]) -> None:
    path = tmp_path / "b.tar.gz"
    _write(path, sources)
    raw = path.read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    assert struct.unpack("<I", raw[4:8])[0] == 1741064767  # gzip mtime = created
    assert raw[3] & 0x08 == 0  # no file name stored in the gzip header
    with tarfile.open(path, "r:gz") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names[0] == "bundle.json"
    assert names[1:] == sorted(names[1:])
    directories = {m.name for m in members if m.isdir()}
    assert directories == {"logs", "runs", "runs/20250304T050607.000000Z-abcdef12",
                           "runs/20250304T050607.000000Z-abcdef12/records", "snapshot", "state"}
    for member in members:
        assert member.isfile() or member.isdir()
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
        assert member.mtime == 1741064767
        assert member.mode == (0o755 if member.isdir() else 0o644)
    with tarfile.open(path, "r:gz") as tar:
        handle = tar.extractfile("bundle.json")
        assert handle is not None
        manifest = json.loads(handle.read())
    assert manifest["schema"] == 1
    assert manifest["kind"] == "weltklassebot-bundle"
    assert manifest["created"] == CREATED
    assert set(manifest["members"]) == set(sources)
    for name, source in sources.items():
        data = _content(source)
        assert manifest["members"][name] == {"sha256": hashlib.sha256(data).hexdigest(),
                                             "bytes": len(data)}


def test_write_refuses_bad_names_and_reserved_keys(tmp_path: Path) -> None:
    path = tmp_path / "b.tar.gz"
    for bad in ("../x", "/etc/x", "a//b", "a/./b", "a b", "bundle.json", "", "a\\b", "é"):
        with pytest.raises(ValueError, match="bundle member"):
            write_bundle(path, {}, [(bad, b"x")])
    with pytest.raises(ValueError, match="twice"):
        write_bundle(path, {}, [("a", b"x"), ("a", b"y")])
    with pytest.raises(ValueError, match="case"):
        write_bundle(path, {}, [("A.txt", b"x"), ("a.txt", b"y")])
    with pytest.raises(ValueError, match="as a directory"):
        write_bundle(path, {}, [("a/b", b"x"), ("a", b"y")])
    with pytest.raises(ValueError, match="set by write_bundle"):
        write_bundle(path, {"members": {}}, [])
    for local in ("2025-03-04T05:06:07", "2025-03-04T07:06:07+02:00"):
        with pytest.raises(ValueError, match="not in UTC"):
            write_bundle(path, {"created": local}, [])
    with pytest.raises(ValueError, match="plain JSON"):
        write_bundle(path, {"x": float("nan")}, [])
    assert not path.exists()
    assert name_problem("runs/20250304T050607.000000Z-abcdef12/fills.jsonl") is None


def test_the_creation_time_keeps_the_callers_precision(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    path = tmp_path / "b.tar.gz"
    precise = "2025-03-04T05:06:07.123456789Z"
    assert write_bundle(path, {"created": precise}, []).created == precise
    with tarfile.open(path, "r:gz") as tar:
        assert tar.getmembers()[0].mtime == 1741064767
    moment = datetime(2025, 3, 4, 5, 6, 7, 250000, tzinfo=UTC)
    assert write_bundle(path, {"created": moment}, []).created == "2025-03-04T05:06:07.250000Z"


def test_an_empty_bundle_and_the_default_creation_time(tmp_path: Path) -> None:
    path = tmp_path / "empty.tar.gz"
    info = write_bundle(path, {}, [])
    assert info.members == ()
    assert info.run_id is None
    assert info.created.endswith("Z")
    assert len(info.created) == 20
    assert verify_bundle(path).created == info.created


# ----------------------------------------------------------------------------------- damage


def _bundle(tmp_path: Path, sources: dict[str, Path | bytes]) -> Path:
    path = tmp_path / "good.tar.gz"
    _write(path, sources)
    return path


def test_a_flipped_byte_in_any_member_is_named(
        tmp_path: Path, sources: dict[str, Path | bytes]) -> None:
    good = _bundle(tmp_path, sources)
    entries = read_entries(good)
    for index, (info, data) in enumerate(entries):
        if data is None or info.name == "bundle.json" or not data:
            continue
        flipped = bytearray(data)
        flipped[len(data) // 2] ^= 0x01
        damaged = rewrite(tmp_path / "damaged.tar.gz",
                          [*entries[:index], (info, bytes(flipped)), *entries[index + 1:]])
        with pytest.raises(BundleDamaged) as caught:
            verify_bundle(damaged)
        assert caught.value.member == info.name
        assert "SHA-256" in caught.value.message
        assert info.name in caught.value.message
        assert caught.value.exit_code == 1


def test_a_flipped_byte_in_the_compressed_stream_is_damage(
        tmp_path: Path, sources: dict[str, Path | bytes]) -> None:
    good = _bundle(tmp_path, sources).read_bytes()
    damaged = tmp_path / "damaged.tar.gz"
    for position in range(20, len(good), len(good) // 25):
        data = bytearray(good)
        data[position] ^= 0x10
        damaged.write_bytes(bytes(data))
        with pytest.raises(VerdictFailed):
            verify_bundle(damaged)


@pytest.mark.parametrize("keep", [20, 400, 0.5, -9, -1])
def test_a_truncated_archive_is_damage(tmp_path: Path, sources: dict[str, Path | bytes],
                                       keep: float) -> None:
    good = _bundle(tmp_path, sources).read_bytes()
    cut = int(len(good) * keep) if isinstance(keep, float) else keep
    truncated = tmp_path / "cut.tar.gz"
    truncated.write_bytes(good[:cut])
    with pytest.raises(BundleDamaged, match=r"ends early|corrupt"):
        verify_bundle(truncated)


def test_a_missing_member_is_named(tmp_path: Path, sources: dict[str, Path | bytes]) -> None:
    entries = read_entries(_bundle(tmp_path, sources))
    kept = [e for e in entries if e[0].name != "state/segment-000001.jsonl"]
    with pytest.raises(BundleDamaged, match="missing from the archive") as caught:
        verify_bundle(rewrite(tmp_path / "missing.tar.gz", kept))
    assert caught.value.member == "state/segment-000001.jsonl"


def test_an_extra_member_is_named(tmp_path: Path, sources: dict[str, Path | bytes]) -> None:
    entries = read_entries(_bundle(tmp_path, sources))
    extra = [*entries, entry("state/zz-extra.jsonl", b"{}\n")]
    with pytest.raises(BundleDamaged, match="not listed") as caught:
        verify_bundle(rewrite(tmp_path / "extra.tar.gz", extra))
    assert caught.value.member == "state/zz-extra.jsonl"
    stray_dir = [*entries, entry("stray", type_=tarfile.DIRTYPE)]
    with pytest.raises(BundleDamaged, match="directory that no file"):
        verify_bundle(rewrite(tmp_path / "dir.tar.gz", stray_dir))


def test_a_member_of_another_size_is_named(tmp_path: Path) -> None:
    listed = {"a.txt": {"sha256": hashlib.sha256(b"abc").hexdigest(), "bytes": 3}}
    path = write_tar_gz(tmp_path / "b.tar.gz", [entry("a.txt", b"abcd")], listed=listed)
    with pytest.raises(BundleDamaged, match=r"is 4 bytes but bundle\.json records 3"):
        verify_bundle(path)


def test_data_after_the_end_of_the_archive_is_damage(tmp_path: Path) -> None:
    path = write_tar_gz(tmp_path / "b.tar.gz", [entry("a.txt", b"abc")],
                        after_end=bytes(4096) + b"hidden")
    with pytest.raises(BundleDamaged, match="after the end"):
        verify_bundle(path)
    padded = write_tar_gz(tmp_path / "p.tar.gz", [entry("a.txt", b"abc")], after_end=bytes(4096))
    assert [m.name for m in verify_bundle(padded).members] == ["a.txt"]


def test_a_bad_bundle_json_is_damage(tmp_path: Path) -> None:
    for document, pattern in ((b"{not json", "not valid JSON"),
                              (b"[]", "not a JSON object"),
                              (manifest_bytes({"a": {"sha256": "x", "bytes": 1}}), "malformed"),
                              (manifest_bytes({}, created="yesterday"), "'created'")):
        path = write_tar_gz(tmp_path / "b.tar.gz", [], manifest=document)
        with pytest.raises(BundleDamaged, match=pattern):
            verify_bundle(path)


def test_what_is_not_a_bundle_is_unusable_input(tmp_path: Path) -> None:
    cases: dict[str, bytes] = {
        "empty": b"",
        "text": b"hello, this is not an archive\n",
        "gzip of text": gzip.compress(b"hello " * 200),
        "tar of other things": _plain_tar_gz(),
    }
    for label, data in cases.items():
        path = tmp_path / f"{label.replace(' ', '-')}.tar.gz"
        path.write_bytes(data)
        with pytest.raises(BundleUnreadable) as caught:
            verify_bundle(path)
        assert caught.value.exit_code == 2, label
    wrong_kind = write_tar_gz(tmp_path / "k.tar.gz", [], manifest=manifest_bytes({}, kind="x"))
    with pytest.raises(BundleUnreadable, match="not a weltklassebot bundle"):
        verify_bundle(wrong_kind)
    newer = write_tar_gz(tmp_path / "s.tar.gz", [], manifest=manifest_bytes({}, schema=2))
    with pytest.raises(BundleUnreadable, match="schema 2"):
        verify_bundle(newer)
    with pytest.raises(BundleUnreadable, match="cannot be opened"):
        verify_bundle(tmp_path / "absent.tar.gz")
    with pytest.raises(BundleUnreadable, match="not a regular file"):
        verify_bundle(tmp_path)
    with pytest.raises(UnusableInput):
        extract_bundle(tmp_path / "absent.tar.gz")


def _plain_tar_gz() -> bytes:
    import io

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info, data = entry("README", b"hi")
        tar.addfile(info, io.BytesIO(data or b""))
    return buffer.getvalue()


# ----------------------------------------------------------------------------- failed writes


def test_a_full_disk_leaves_no_bundle_under_the_final_name(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(1 << 20))
    with mounted_tmpfs(tmp_path / "small", "size=256k") as small:
        target = small / "bundles" / "incident.tar.gz"
        with pytest.raises(BundleWriteError) as caught:
            write_bundle(target, {"run_id": "r"}, [("snapshot/big.bin", big)])
        assert caught.value.errno == errno.ENOSPC
        assert "no space left" in caught.value.message
        assert str(target) in caught.value.message
        assert isinstance(caught.value, RuntimeFailure)
        assert caught.value.exit_code == 3
        assert not target.exists()
        assert list(target.parent.iterdir()) == []


def test_a_failed_write_keeps_the_old_bundle_and_removes_the_temporary_file(
        tmp_path: Path, sources: dict[str, Path | bytes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = _bundle(tmp_path, sources)
    before = path.read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(BundleWriteError, match="no space left"):
        _write(path, sources, run_id="another")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["good.tar.gz", "src"]


def test_a_member_that_changes_while_written_is_an_error(
        tmp_path: Path, sources: dict[str, Path | bytes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = bundle_archive._hash_file
    path = tmp_path / "out" / "b.tar.gz"

    def longer(name: str, source: Path, bundle: Path) -> tuple[int, str]:
        size, digest = real(name, source, bundle)
        return size + 10, digest

    monkeypatch.setattr(bundle_archive, "_hash_file", longer)
    with pytest.raises(BundleWriteError, match="shrank while the bundle was written"):
        _write(path, sources)

    def other(name: str, source: Path, bundle: Path) -> tuple[int, str]:
        return real(name, source, bundle)[0], "0" * 64

    monkeypatch.setattr(bundle_archive, "_hash_file", other)
    with pytest.raises(BundleWriteError, match="changed while the bundle was written"):
        _write(path, sources)
    assert list(path.parent.iterdir()) == []


def test_a_missing_source_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "b.tar.gz"
    with pytest.raises(BundleWriteError, match=r"state/gone\.jsonl") as caught:
        write_bundle(path, {}, [("state/gone.jsonl", tmp_path / "gone.jsonl")])
    assert caught.value.member == "state/gone.jsonl"
    with pytest.raises(BundleWriteError, match="Is a directory"):
        write_bundle(path, {}, [("d", tmp_path)])
    assert not path.exists()


def test_a_file_that_grows_after_hashing_is_captured_at_its_first_size(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    segment = tmp_path / "segment.jsonl"
    segment.write_bytes(b'{"seq": 1}\n')
    real = bundle_archive._hash_file

    def hash_then_append(name: str, source: Path, bundle: Path) -> tuple[int, str]:
        result = real(name, source, bundle)
        with source.open("ab") as handle:  # the service appends a record meanwhile
            handle.write(b'{"seq": 2}\n')
        return result

    monkeypatch.setattr(bundle_archive, "_hash_file", hash_then_append)
    path = tmp_path / "b.tar.gz"
    write_bundle(path, {}, [("state/segment.jsonl", segment)])
    with extract_bundle(path, parent=tmp_path) as bundle:
        assert bundle.path("state/segment.jsonl").read_bytes() == b'{"seq": 1}\n'


# ---------------------------------------------------------------------------- extraction


def test_extraction_goes_to_tmpdir_by_default_and_is_removed(
        tmp_path: Path, sources: dict[str, Path | bytes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    path = _bundle(tmp_path, sources)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    bundle = extract_bundle(path)
    try:
        assert bundle.root.parent == scratch
        assert bundle.root.name.startswith("weltklassebot-bundle-")
        assert stat.S_IMODE(bundle.root.stat().st_mode) == 0o700
    finally:
        bundle.close()
    assert list(scratch.iterdir()) == []


def test_a_full_extraction_directory_is_a_runtime_failure_and_is_removed(
        tmp_path: Path, sources: dict[str, Path | bytes]) -> None:
    path = _bundle(tmp_path, sources)
    with mounted_tmpfs(tmp_path / "small", "size=512k") as small:
        with pytest.raises(RuntimeFailure, match="no space left") as caught:
            extract_bundle(path, parent=small)
        assert caught.value.exit_code == 3
        assert list(small.iterdir()) == []


def test_limits_that_a_genuine_bundle_exceeds_say_how_to_raise_them(
        tmp_path: Path, sources: dict[str, Path | bytes]) -> None:
    path = _bundle(tmp_path, sources)
    with pytest.raises(UnusableInput, match="raise the limit") as caught:
        verify_bundle(path, Limits(max_total_bytes=1 << 20))
    assert "bundle.json" in caught.value.message
    with pytest.raises(UnusableInput, match="for one member"):
        verify_bundle(path, Limits(max_member_bytes=1 << 20))
    with pytest.raises(UnusableInput, match="members, more than the limit of 3"):
        verify_bundle(path, Limits(max_members=3))
