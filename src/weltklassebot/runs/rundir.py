"""Atomic run directories: everything is written into a hidden temporary directory beside the
target and renamed into place last, so a failed or interrupted run leaves nothing that looks
complete (at most a ``.incomplete-*`` directory after a ``kill -9``)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from weltklassebot.errors import RuntimeFailure, UsageError
from weltklassebot.fsutil import fsync_dir, fsync_file


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n",
                    encoding="utf-8")


class RunDirectory:
    """A run directory under construction; ``commit`` renames it into place."""

    def __init__(self, parent: Path, final: Path | None, tag: str) -> None:
        self.parent = parent
        self.final = final
        if final is not None:
            refuse_non_empty(final)
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"cannot create the runs directory {parent}: {exc.strerror}. Choose another "
                "with --out or WELTKLASSE_RUNS_DIR."
            ) from exc
        self.tmp = parent / f".incomplete-{tag}-{os.getpid()}"
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        try:
            self.tmp.mkdir()
        except OSError as exc:
            raise UsageError(f"cannot write in {parent}: {exc.strerror}.") from exc

    def path(self, name: str) -> Path:
        return self.tmp / name

    def commit(self, final: Path) -> Path:
        """fsync every file, then rename the directory into place."""
        refuse_non_empty(final)
        for entry in self.tmp.iterdir():
            fsync_file(entry)
        fsync_dir(self.tmp)
        if final.exists():
            final.rmdir()  # empty directory allowed (checked above)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(self.tmp, final)
        except OSError as exc:
            raise RuntimeFailure(f"could not move the run into {final}: {exc.strerror}.") from exc
        fsync_dir(final.parent)
        return final

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.tmp)


def refuse_non_empty(path: Path) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UsageError(
            f"output directory {path} already exists and is not empty; runs never overwrite. "
            "Pass a new --out or remove the old run."
        )
