"""Bringing a file into the snapshot directory: a hashed copy, and validation of the copied bytes.

The copy is validated rather than its source, so what is promoted is exactly what was checked.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from weltklassebot.data.catalog.faults import fault_point
from weltklassebot.errors import InvalidSnapshot, UnusableInput


def copy_with_hash(src: Path, dst: Path) -> str:
    """Copy ``src`` to the new file ``dst``; return the SHA-256 of the bytes copied."""
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


def validate_copy(src: Path, copy: Path) -> Any:
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
