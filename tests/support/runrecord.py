"""Tampering with recorded run directories, for the replay tests.

``forge`` rewrites a record consistently (every checksum recomputed), as a deliberate forger
would: such a record passes verification, and only the re-run can catch it.
"""

from __future__ import annotations

import functools
import json
import random
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from weltklassebot.runs.record import (
    CHECKSUM_KEY,
    MANIFEST,
    REPORT,
    RUN_FILES,
    equity_hash_of_files,
    file_digests,
    seal_manifest,
)

ALL_FILES = (MANIFEST, *RUN_FILES, REPORT)


@dataclass(frozen=True)
class Tamper:
    file: str
    kind: str
    apply: Callable[[Path], None]


def rewrite_parquet(path: Path, edit: Callable[[pa.Table], pa.Table]) -> None:
    """Read a run's Parquet file, edit the table, write valid Parquet with the same schema."""
    table = pq.read_table(path)
    pq.write_table(edit(table).cast(table.schema), path)


def reseal(run_dir: Path, *, update_hash: bool = True) -> None:
    """Make the record consistent again after an edit: equity hash (in manifest and summary),
    file digests and the manifest checksum, all recomputed."""
    manifest = json.loads((run_dir / MANIFEST).read_text())
    if update_hash:
        digest = equity_hash_of_files(run_dir / "fills.parquet", run_dir / "equity.parquet")
        summary = json.loads((run_dir / "summary.json").read_text())
        summary["equity_hash"] = manifest["equity_hash"] = digest
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    manifest.pop(CHECKSUM_KEY, None)
    manifest["files"] = file_digests(run_dir)
    sealed, _ = seal_manifest(manifest)
    (run_dir / MANIFEST).write_bytes(sealed)


def generated_tampers(run_dir: Path, rng: random.Random, flips: int) -> Iterator[Tamper]:
    """For every file of a record: ``flips`` random byte flips, truncations (to 0, 1, half,
    all but the last byte, a random length), deletion, same-length and other-length garbage,
    and an appended byte."""
    for name in ALL_FILES:
        size = (run_dir / name).stat().st_size
        if size:
            for _ in range(flips):
                at, mask = rng.randrange(size), rng.randrange(1, 256)
                yield Tamper(name, "flip", _flip(name, at, mask))
            for length in sorted({0, 1, size // 2, size - 1, rng.randrange(size)}):
                yield Tamper(name, "truncate", _truncate(name, length))
        yield Tamper(name, "delete", functools.partial(_delete, name))
        garbage = rng.randbytes(max(size, 1))
        yield Tamper(name, "garbage", functools.partial(_overwrite, name, garbage))
        other = rng.randbytes(rng.randrange(1, 4096))
        yield Tamper(name, "garbage", functools.partial(_overwrite, name, other))
        yield Tamper(name, "append", functools.partial(_append_to, name))


def _flip(name: str, at: int, mask: int) -> Callable[[Path], None]:
    def apply(run_dir: Path) -> None:
        data = bytearray((run_dir / name).read_bytes())
        data[at] ^= mask
        (run_dir / name).write_bytes(bytes(data))
    return apply


def _truncate(name: str, length: int) -> Callable[[Path], None]:
    def apply(run_dir: Path) -> None:
        with (run_dir / name).open("r+b") as handle:
            handle.truncate(length)
    return apply


def _delete(name: str, run_dir: Path) -> None:
    (run_dir / name).unlink()


def _overwrite(name: str, data: bytes, run_dir: Path) -> None:
    (run_dir / name).write_bytes(data)


def _append_to(name: str, run_dir: Path) -> None:
    _append(run_dir / name)


def _append(path: Path) -> None:
    with path.open("ab") as handle:
        handle.write(b"\n")


def snapshot_files(run_dir: Path) -> dict[str, bytes]:
    return {name: (run_dir / name).read_bytes() for name in ALL_FILES}


def restore_files(run_dir: Path, saved: dict[str, bytes]) -> None:
    for name, data in saved.items():
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.is_symlink():
            path.unlink()
        path.write_bytes(data)
