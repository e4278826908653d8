"""Hostile archives are refused with exit 2 before anything is written, by ``bundle verify`` and
by ``extract_bundle``, and nothing appears outside (or inside) the extraction's parent."""

from __future__ import annotations

import hashlib
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from support.cli import run_cli
from weltklassebot.errors import UnusableInput
from weltklassebot.service.bundle_archive import (
    BundleRefused,
    Limits,
    extract_bundle,
    verify_bundle,
)

from .archives import entry, listing, write_tar_gz, zero_bomb

Builder = Callable[[Path], Path]


def _traversal(path: Path) -> Path:
    return write_tar_gz(path, [entry("../x", b"escaped\n")])


def _absolute(path: Path) -> Path:
    return write_tar_gz(path, [entry("/etc/x", b"escaped\n")])


def _symlink_escape(path: Path) -> Path:
    # The link leads out; the file after it would be written through it.
    return write_tar_gz(path, [entry("state", type_=tarfile.SYMTYPE, linkname="../../.."),
                               entry("state/passwd", b"root::0:0::/:/bin/sh\n")])


def _hardlink_escape(path: Path) -> Path:
    return write_tar_gz(path, [entry("passwd", type_=tarfile.LNKTYPE, linkname="/etc/passwd")])


def _char_device(path: Path) -> Path:
    return write_tar_gz(path, [entry("mem", type_=tarfile.CHRTYPE)])


def _block_device(path: Path) -> Path:
    return write_tar_gz(path, [entry("sda", type_=tarfile.BLKTYPE)])


def _fifo(path: Path) -> Path:
    return write_tar_gz(path, [entry("pipe", type_=tarfile.FIFOTYPE)])


def _duplicate(path: Path) -> Path:
    first = entry("state/seg.jsonl", b"{}\n")
    return write_tar_gz(path, [first, entry("state/seg.jsonl", b"{}\n")],
                        listed=listing([first]))


def _case_collision(path: Path) -> Path:
    return write_tar_gz(path, [entry("State.jsonl", b"{}\n"), entry("state.jsonl", b"[]\n")])


def _file_then_child(path: Path) -> Path:
    listed = listing([entry("logs", b"x")])
    return write_tar_gz(path, [entry("logs", b"x"), entry("logs/a", b"y")], listed=listed)


def _unsafe_characters(path: Path) -> Path:
    return write_tar_gz(path, [entry("logs/a\nb", b"y")])


def _listed_traversal(path: Path) -> Path:
    # bundle.json itself names a member outside: refused before any other member is read.
    data = b"escaped\n"
    listed = {"../../x": {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}}
    return write_tar_gz(path, [entry("../../x", data)], listed=listed)


def _file_count(path: Path) -> Path:
    return write_tar_gz(path, [entry(f"f{i:05d}") for i in range(20_000)],
                        fmt=tarfile.USTAR_FORMAT)


def _pax_header_bomb(path: Path) -> Path:
    info, data = entry("a.txt", b"a")
    info.pax_headers = {"comment": "x" * (2 << 20)}
    return write_tar_gz(path, [(info, data)])


HOSTILE: dict[str, tuple[Builder, str]] = {
    "path traversal": (_traversal, "'..' path component"),
    "absolute path": (_absolute, "absolute path"),
    "symlink escape": (_symlink_escape, "is a symbolic link"),
    "hardlink escape": (_hardlink_escape, "is a hard link"),
    "character device": (_char_device, "is a character device"),
    "block device": (_block_device, "is a block device"),
    "fifo": (_fifo, "is a FIFO"),
    "duplicate name": (_duplicate, "appears twice"),
    "case collision": (_case_collision, "differ only in case"),
    "file used as directory": (_file_then_child, "which is a file"),
    "unsafe characters": (_unsafe_characters, "characters other than"),
    "listed traversal": (_listed_traversal, "'..' path component"),
    "huge file count": (_file_count, "more than the limit of 10000"),
    "pax header bomb": (_pax_header_bomb, "tar header of more than"),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("hostile")
    built = {label: build(directory / f"{label.replace(' ', '-')}.tar.gz")
             for label, (build, _) in HOSTILE.items()}
    built["decompression bomb"] = zero_bomb(directory / "bomb.tar.gz")
    return built


RULES = {**{label: rule for label, (_, rule) in HOSTILE.items()},
         "decompression bomb": "a decompression bomb"}


@pytest.mark.parametrize("label", list(RULES))
def test_bundle_verify_refuses_with_exit_2(label: str, hostile: dict[str, Path],
                                           tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = run_cli("bundle", "verify", hostile[label], cwd=tmp_path,
                   env={"TMPDIR": str(scratch)}, timeout=60)
    assert done.returncode == 2, (label, done.stdout, done.stderr)
    assert "refused" in done.stderr, done.stderr
    assert RULES[label] in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr  # one paragraph, no traceback
    assert list(scratch.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]


@pytest.mark.parametrize("label", list(RULES))
def test_extract_refuses_before_writing_anything(label: str, hostile: dict[str, Path],
                                                 tmp_path: Path) -> None:
    parent = tmp_path / "a" / "b" / "c"  # so that '../x' and '../../..' land inside tmp_path
    parent.mkdir(parents=True)
    started = time.monotonic()
    with pytest.raises(BundleRefused) as caught:
        extract_bundle(hostile[label], parent=parent)
    assert time.monotonic() - started < 10
    refusal = caught.value
    assert isinstance(refusal, UnusableInput)
    assert refusal.exit_code == 2
    assert RULES[label] in refusal.message
    assert refusal.member is not None
    assert refusal.member in refusal.message
    assert [str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")] == ["a", "a/b", "a/b/c"]


def test_the_bomb_is_refused_early_not_after_a_gigabyte(hostile: dict[str, Path]) -> None:
    bomb = hostile["decompression bomb"]
    assert bomb.stat().st_size < 2 << 20
    with pytest.raises(BundleRefused) as caught:
        verify_bundle(bomb)
    assert caught.value.member == "snapshot/data.parquet"
    assert caught.value.expanded_bytes is not None
    assert caught.value.expanded_bytes < 16 << 20


def test_the_member_count_counts_directories_too(tmp_path: Path) -> None:
    files = [entry(f"d{i:03d}/f", b"x") for i in range(50)]
    directories = [entry(f"d{i:03d}", type_=tarfile.DIRTYPE) for i in range(50)]
    path = write_tar_gz(tmp_path / "b.tar.gz",
                        [e for pair in zip(directories, files, strict=True) for e in pair])
    assert len(verify_bundle(path, Limits(max_members=101)).members) == 50
    with pytest.raises(BundleRefused, match="member number 101: more than the limit of 100"):
        extract_bundle(path, Limits(max_members=100), parent=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.tar.gz"]


def test_size_limits_are_judged_from_the_header_before_reading(tmp_path: Path) -> None:
    data = bytes(range(256)) * 8
    path = write_tar_gz(tmp_path / "b.tar.gz", [entry("a.bin", data), entry("b.bin", data)])
    with pytest.raises(BundleRefused, match="for one member"):
        verify_bundle(path, Limits(max_member_bytes=2047))
    # bundle.json understates b.bin, so only the tar header tells its size.
    listed = {**listing([entry("a.bin", data)]),
              "b.bin": {"sha256": hashlib.sha256(b"").hexdigest(), "bytes": 0}}
    understated = write_tar_gz(tmp_path / "lie.tar.gz",
                               [entry("a.bin", data), entry("b.bin", data)], listed=listed)
    with pytest.raises(BundleRefused, match="in all"):
        verify_bundle(understated, Limits(max_total_bytes=3000))
    done = run_cli("bundle", "verify", path, "--max-bytes", "4KiB", cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    done = run_cli("bundle", "verify", path, "--max-bytes", "3000", cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "raise the limit" in done.stderr, done.stderr
