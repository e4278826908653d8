"""A real, small filesystem for tests of full disks and read-only mounts."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def mounted_tmpfs(target: Path, options: str = "size=64k") -> Iterator[Path]:
    """Mount a tmpfs at ``target`` (created) for the block; unmount after.

    Needs root and mount(8): otherwise the test is skipped with the reason, as it is where the
    sandbox does not permit mounting (a permission, not a missing tool).
    """
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the seam tests cover the same paths")
    mount = shutil.which("mount")
    if mount is None:
        pytest.skip("no mount(8) on this machine")
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([mount, "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)
