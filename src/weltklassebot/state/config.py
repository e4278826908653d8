"""How a state store rotates, retains, batches and names its kinds (docs/state-store.md)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from weltklassebot.core.timeutil import NS_PER_DAY
from weltklassebot.errors import ConfigError
from weltklassebot.state.codec import KNOWN_KINDS, normalise_kinds


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Rotation, retention, batching, kinds and file modes of a store.

    Parameters
    ----------
    max_segment_bytes
        Start a new segment before a record would make the active one larger than this.
    max_segment_age_ns
        Start a new segment once the active one is this old (``None``: never by age). Age is
        measured from the segment's checkpoint timestamp to the injected clock, or, without a
        clock, to the timestamp of the record being appended (the event clock).
    retain_segments
        How many segments older than the active one to keep; older ones are removed.
    batch_records, batch_bytes
        Write and sync buffered ``durable=False`` records once this many are waiting.
    kinds
        The registry of record kinds; ``checkpoint`` is always included.
    file_mode, dir_mode
        Permission bits for new segment files and for a state directory the store creates
        (further narrowed by the umask); world-writable modes are refused.
    """

    max_segment_bytes: int = 16 * 1024 * 1024
    max_segment_age_ns: int | None = NS_PER_DAY
    retain_segments: int = 4
    batch_records: int = 64
    batch_bytes: int = 256 * 1024
    kinds: frozenset[str] = KNOWN_KINDS
    file_mode: int = 0o640
    dir_mode: int = 0o750

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kinds", normalise_kinds(self.kinds))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"state store kinds: {exc}") from None
        for name in ("max_segment_bytes", "batch_records", "batch_bytes"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ConfigError(f"state store {name} must be a positive integer, not {value!r}")
        age = self.max_segment_age_ns
        if age is not None and (type(age) is not int or age < 1):
            raise ConfigError(
                f"state store max_segment_age_ns must be a positive integer or None, not {age!r}"
            )
        if type(self.retain_segments) is not int or self.retain_segments < 0:
            raise ConfigError(
                f"state store retain_segments must be an integer >= 0, not {self.retain_segments!r}"
            )
        for name in ("file_mode", "dir_mode"):
            mode = getattr(self, name)
            if type(mode) is not int or not 0 <= mode <= 0o777 or mode & 0o002:
                raise ConfigError(
                    f"state store {name} {mode!r} is refused: give permission bits without "
                    "world write, e.g. 0o640 for files and 0o750 for the directory"
                )

    def with_kinds(self, *names: str) -> StoreConfig:
        """Return a copy whose registry also holds ``names``."""
        return replace(self, kinds=self.kinds | frozenset(names))
