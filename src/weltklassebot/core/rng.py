"""Seeded, named random streams that survive library upgrades.

Each stream (``slippage``, ``latency``, ...) has its own PCG64 generator seeded from the run seed
and the SHA-256 of the stream's name, so adding a stream shifts no other. We draw raw 64-bit
integers (``random_raw``, fixed by the PCG64 algorithm) and map them to distributions in our own
code, so a NumPy upgrade that changes its distribution code cannot change a result.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

_TWO_POW_53 = float(1 << 53)


def stream_entropy(seed: int, name: str) -> list[int]:
    """Seed words for one stream: the run seed plus four 32-bit words of SHA-256(name)."""
    if seed < 0:
        raise ValueError("seed must be a non-negative integer")
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    return [seed & 0xFFFFFFFF, seed >> 32, *words]


class RandomStream:
    """One named stream of uniform draws in [0, 1) and integers."""

    __slots__ = ("_bitgen", "name")

    def __init__(self, seed: int, name: str) -> None:
        self.name = name
        self._bitgen = np.random.PCG64(np.random.SeedSequence(stream_entropy(seed, name)))

    def raw(self) -> int:
        """One raw unsigned 64-bit draw."""
        return int(self._bitgen.random_raw())

    def uniform(self) -> float:
        """A float in [0, 1) from the top 53 bits of one raw draw."""
        return (self.raw() >> 11) / _TWO_POW_53

    def below(self, bound: int) -> int:
        """An integer in [0, bound) without modulo bias (rejection sampling)."""
        if bound <= 0:
            raise ValueError("bound must be positive")
        limit = (1 << 64) - ((1 << 64) % bound)
        while True:
            draw = self.raw()
            if draw < limit:
                return draw % bound

    def state(self) -> dict[str, Any]:
        """Generator state, for persisting a live run across restarts."""
        return dict(self._bitgen.state)

    def restore(self, state: dict[str, Any]) -> None:
        self._bitgen.state = state  # type: ignore[assignment]


class RandomStreams:
    """Factory of named streams for one run seed; a stream is created on first use."""

    __slots__ = ("_streams", "seed")

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._streams: dict[str, RandomStream] = {}

    def stream(self, name: str) -> RandomStream:
        found = self._streams.get(name)
        if found is None:
            found = self._streams[name] = RandomStream(self.seed, name)
        return found

    def states(self) -> dict[str, dict[str, Any]]:
        """Every stream's position, by name (plain data: a resumed run continues from it)."""
        return {name: self._streams[name].state() for name in sorted(self._streams)}

    def restore_states(self, states: dict[str, dict[str, Any]]) -> None:
        for name, state in states.items():
            self.stream(name).restore(state)
