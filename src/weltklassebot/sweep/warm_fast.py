"""Imported by the process pool's fork server before it forks any worker: the fast path's
kernel is compiled (or loaded from numba's cache) once, there, and every worker forked from it
starts with it compiled, instead of each compiling it on its first cell. Failing here is never
an error: a worker then compiles the kernel itself, or runs its cells on the engine."""

from __future__ import annotations

import contextlib

from weltklassebot.sweep.worker import fastpath_module

with contextlib.suppress(Exception):
    _module = fastpath_module()
    if _module is not None and hasattr(_module, "warm"):
        _module.warm()
