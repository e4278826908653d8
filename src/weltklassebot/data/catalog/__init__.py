"""The snapshot directory: naming, SHA-256 sidecars, the ``latest.parquet`` symlink, lock, history.

Layout of a snapshot directory (DESIGN section 5)::

    20261124T153000.123456Z_btcusd-1h.parquet          read-only (0444) snapshot
    20261124T153000.123456Z_btcusd-1h.parquet.sha256   its SHA-256, ``sha256sum -c`` format
    latest.parquet -> 20261124T153000.123456Z_btcusd-1h.parquet   (relative symlink)
    history.jsonl                                       append-only record of every change
    .lock                                               flock()ed by mutating commands

Guarantees:

- A file with a final snapshot name is always complete: it is written under a hidden
  ``.tmp-`` name, validated, fsync'd and made read-only first, then renamed. Its sidecar is
  renamed into place before it, so every snapshot has its SHA-256.
- ``latest.parquet`` is swapped atomically: a new relative link is created under a temporary
  name and renamed over the old one, then the directory is fsync'd. It never points at a
  partial file.
- Mutating commands (promote, rollback, prune) hold an exclusive ``flock`` on ``.lock``; a second
  one waits up to a time-out and then fails naming the holder (pid, host, user, command). The
  kernel drops the lock when its holder dies, so a killed command never leaves a stale lock.
- Each history line is a JSON record carrying the SHA-256 of the line before it, so an edited
  or truncated history is detected by ``verify``. When ``latest.parquet`` does not match the last
  record (a command killed between the swap and its record, or a hand-made change), the next
  mutating command appends a ``reconcile`` record first.

Test hook: the environment variable ``WELTKLASSE_FAULT_AT`` names steps (comma-separated) at which
the process kills itself with SIGKILL (``step``) or pauses (``step:sleep=SECONDS``). The crash
and concurrency tests use it; it is never set in production.

Modules: ``settings`` (where the directory is), ``naming`` (file names and SHA-256 sidecars),
``latest`` (the symlink and its swap), ``lock``, ``history``, ``intake`` (copy and validate),
``prune`` (what prune removes), ``verify``, ``footer`` (facts for ``list``), ``faults`` (the test
hook) and ``directory`` (``Catalog``, the commands). Everything public is re-exported here.
Nothing here rewrites a file once it carries a final snapshot name.
"""

from __future__ import annotations

from weltklassebot.data.catalog.directory import FREE_SPACE_MARGIN, Catalog
from weltklassebot.data.catalog.faults import ENV_FAULT, fault_point
from weltklassebot.data.catalog.history import HISTORY, HISTORY_SCHEMA_VERSION, Change
from weltklassebot.data.catalog.latest import LATEST, LatestState
from weltklassebot.data.catalog.lock import LOCK, whoami
from weltklassebot.data.catalog.naming import (
    SIDECAR,
    SNAPSHOT_RE,
    TMP_PREFIX,
    Entry,
    check_name,
    parse_basic,
    read_sidecar,
    snapshot_file_name,
)
from weltklassebot.data.catalog.prune import MIN_KEEP
from weltklassebot.data.catalog.settings import (
    CONFIG_KEYS,
    DEFAULT_LOCK_TIMEOUT_S,
    DEFAULT_SNAPSHOT_DIR,
    DEFAULT_STAGING_DIR,
    ENV_CONFIG,
    ENV_LOCK_TIMEOUT,
    ENV_SNAPSHOT_DIR,
    ENV_STAGING_DIR,
    Settings,
    resolve_settings,
)

__all__ = [
    "CONFIG_KEYS",
    "DEFAULT_LOCK_TIMEOUT_S",
    "DEFAULT_SNAPSHOT_DIR",
    "DEFAULT_STAGING_DIR",
    "ENV_CONFIG",
    "ENV_FAULT",
    "ENV_LOCK_TIMEOUT",
    "ENV_SNAPSHOT_DIR",
    "ENV_STAGING_DIR",
    "FREE_SPACE_MARGIN",
    "HISTORY",
    "HISTORY_SCHEMA_VERSION",
    "LATEST",
    "LOCK",
    "MIN_KEEP",
    "SIDECAR",
    "SNAPSHOT_RE",
    "TMP_PREFIX",
    "Catalog",
    "Change",
    "Entry",
    "LatestState",
    "Settings",
    "check_name",
    "fault_point",
    "parse_basic",
    "read_sidecar",
    "resolve_settings",
    "snapshot_file_name",
    "whoami",
]
