"""Durable state: the crash-safe, rotating JSON Lines store and the tools to inspect and repair it.

Owns the on-disk format of the state directory (docs/state-store.md): record encoding and
checksums (``codec``), settings (``config``), segment naming and listing (``segment``), recovery
(``recovery``), the writer (``jsonl_store``) with its I/O seam (``fileops``) and directory lock
(``lock``), operator repair (``repair``), readers for ``state tail`` (``tail``) and the bounded
window of processed fill ids that checkpoints carry (``seen_ids``).

Must not: read the wall clock for record content (timestamps come from the caller's clock), know
what a payload means (that belongs to the engine, risk and portfolio code that writes it), or
swallow a write failure (every one raises ``StoreWriteError`` and is counted).
"""

from weltklassebot.state.codec import KNOWN_KINDS, SCHEMA_VERSION, Record
from weltklassebot.state.errors import (
    StoreCorrupt,
    StoreIncompatible,
    StoreLocked,
    StoreUnusable,
    StoreWriteError,
)
from weltklassebot.state.jsonl_store import CheckpointProvider, JsonlStore, StoreConfig
from weltklassebot.state.recovery import RecoveryResult, recover
from weltklassebot.state.seen_ids import SeenIdWindow

__all__ = [
    "KNOWN_KINDS",
    "SCHEMA_VERSION",
    "CheckpointProvider",
    "JsonlStore",
    "Record",
    "RecoveryResult",
    "SeenIdWindow",
    "StoreConfig",
    "StoreCorrupt",
    "StoreIncompatible",
    "StoreLocked",
    "StoreUnusable",
    "StoreWriteError",
    "recover",
]
