"""The snapshot directory: naming, SHA-256 sidecars, the ``latest.parquet`` symlink, lock, history.

Layout of a snapshot directory (DESIGN section 5)::

    20261124T153000.123456Z_btcusd-1h.parquet          read-only (0444) snapshot
    20261124T153000.123456Z_btcusd-1h.parquet.sha256   its SHA-256, ``sha256sum -c`` format
    latest.parquet -> 20261124T153000.123456Z_btcusd-1h.parquet   (relative symlink)
    history.jsonl                                       append-only record of every change
    history.head                                        the history's last seq and line SHA-256
    quarantine/                                         whatever was taken out of the way
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
- Each history line is a JSON record carrying its sequence number and the SHA-256 of the line
  before it; ``history.head`` records the last one, so an edited history and one missing trailing
  lines are both detected by ``verify``. A torn final line is cut into ``quarantine/`` before the
  next append. When ``latest.parquet`` does not match the last record (a command killed between
  the swap and its record, or a hand-made change), the next mutating command appends a
  ``reconcile`` record first.
- Nothing is deleted that was not this program's own unfinished work or a snapshot ``prune`` was
  asked to remove: a regular file at ``latest.parquet``, a snapshot failing its check, a stray
  sidecar, torn or damaged history go to ``quarantine/``, and the move is recorded.
- ``integrity.check_catalog_file`` is the check ``backtest`` makes before it reads a catalog file.

Test hook: the environment variable ``WELTKLASSE_FAULT_AT`` names steps (comma-separated) at which
the process kills itself with SIGKILL (``step``) or pauses (``step:sleep=SECONDS``). The crash
and concurrency tests use it; it is never set in production.

Modules: ``settings`` (where the directory is), ``naming`` (file names and SHA-256 sidecars),
``latest`` (the symlink and its swap), ``lock``, ``history``, ``intake`` (copy and validate),
``prune`` (what prune removes), ``integrity`` (a file against its sidecar), ``quarantine``,
``verify``, ``footer`` (facts for ``list``), ``faults`` (the test
hook) and ``directory`` (``Catalog``, the commands). Everything public is re-exported here.
Nothing here rewrites a file once it carries a final snapshot name.
"""

from __future__ import annotations

from weltklassebot.data.catalog.directory import FREE_SPACE_MARGIN, Catalog
from weltklassebot.data.catalog.faults import ENV_FAULT, fault_point
from weltklassebot.data.catalog.history import HEAD, HISTORY, HISTORY_SCHEMA_VERSION, Change
from weltklassebot.data.catalog.integrity import Check, check_catalog_file, check_entry
from weltklassebot.data.catalog.latest import LATEST, LatestState, read_latest
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
from weltklassebot.data.catalog.quarantine import QUARANTINE, Quarantined
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
    "HEAD",
    "HISTORY",
    "HISTORY_SCHEMA_VERSION",
    "LATEST",
    "LOCK",
    "MIN_KEEP",
    "QUARANTINE",
    "SIDECAR",
    "SNAPSHOT_RE",
    "TMP_PREFIX",
    "Catalog",
    "Change",
    "Check",
    "Entry",
    "LatestState",
    "Quarantined",
    "Settings",
    "check_catalog_file",
    "check_entry",
    "check_name",
    "fault_point",
    "parse_basic",
    "read_latest",
    "read_sidecar",
    "resolve_settings",
    "snapshot_file_name",
    "whoami",
]
