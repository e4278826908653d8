"""Driving an indicator over columns: bar by bar, or in chunks through ``update_many``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Outputs = dict[str, np.ndarray]


def fields_of(indicator: Any) -> tuple[str, ...]:
    """The named outputs of an indicator (``value`` for single-output ones)."""
    for fields in (("upper", "middle", "lower"), ("macd", "signal", "histogram"), ("k", "d"),
                   ("adx", "plus_di", "minus_di")):
        if all(hasattr(indicator, f) for f in fields):
            return fields
    return ("value",)


def one_by_one(indicator: Any, columns: Sequence[np.ndarray]) -> tuple[Outputs, np.ndarray]:
    """``update`` per bar with Python numbers; every output and ``ready`` after each."""
    fields = fields_of(indicator)
    values: dict[str, list[Any]] = {f: [] for f in fields}
    ready = []
    for row in zip(*[c.tolist() for c in columns], strict=True):
        returned = indicator.update(*row)
        assert returned == indicator.value, "update returns value"
        for f in fields:
            values[f].append(getattr(indicator, f))
        ready.append(indicator.ready)
    return {f: _array(v) for f, v in values.items()}, np.array(ready, dtype=bool)


def in_chunks(indicator: Any, columns: Sequence[np.ndarray], sizes: Sequence[int]) -> tuple[
        Outputs, np.ndarray]:
    """``update_many`` over consecutive chunks of the given sizes (the rest in one chunk)."""
    fields = fields_of(indicator)
    parts: dict[str, list[np.ndarray]] = {f: [] for f in fields}
    ready_parts = []
    start = 0
    total = columns[0].size
    for size in [*sizes, total]:
        end = min(start + size, total)
        result, ready = indicator.update_many(*[c[start:end] for c in columns])
        outputs = result if isinstance(result, dict) else {"value": result}
        for f in fields:
            parts[f].append(np.asarray(outputs[f]))
        ready_parts.append(ready)
        start = end
        if start >= total:
            break
    return ({f: np.concatenate(p) if p else np.zeros(0) for f, p in parts.items()},
            np.concatenate(ready_parts) if ready_parts else np.zeros(0, dtype=bool))


def _array(values: list[Any]) -> np.ndarray:
    if values and all(isinstance(v, int) for v in values):
        if max(abs(v) for v in values) < 1 << 62:
            return np.array(values, dtype=np.int64)
        return np.array(values, dtype=object)
    return np.array(values, dtype=np.float64)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal to the bit: floats compared by their IEEE bits (so 0.0 != -0.0), ints exactly."""
    if a.shape != b.shape:
        return False
    if not a.size:
        return True
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        if a.dtype.kind != "f" or b.dtype.kind != "f":
            return False
        return bool(np.array_equal(a.astype(np.float64).view(np.int64),
                                   b.astype(np.float64).view(np.int64)))
    return [int(v) for v in a.tolist()] == [int(v) for v in b.tolist()]
