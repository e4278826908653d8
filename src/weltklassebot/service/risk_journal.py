"""Binds a ``RiskEngine`` to the state store: transitions are persisted (fsync'd) before they
take effect, and a store that cannot write halts trading at once.

The risk engine calls ``persist`` before applying a transition; when the store raises
``StoreWriteError`` the transition does not happen, and the journal moves the engine to
``HALTED`` (reason ``store_write_failed``) immediately — that halt is kept pending and written
first when the store works again (``retry``). Used by anything that runs the risk engine against
a state directory (the live service; the operator CLI's offline path writes directly).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from weltklassebot.risk.engine import RiskEngine
from weltklassebot.risk.recovery import RISK_TRANSITION_KIND
from weltklassebot.risk.state import RiskTransition
from weltklassebot.state.jsonl_store import JsonlStore, StoreWriteError

T = TypeVar("T")


class RiskJournal:
    """Durable risk transitions on a ``JsonlStore``; write failures become a halt."""

    def __init__(self, store: JsonlStore) -> None:
        self.store = store
        self.write_failures = 0
        self.last_error: StoreWriteError | None = None

    def persist(self, transition: RiskTransition) -> None:
        """The ``persist`` callback of ``RiskEngine``: durable before acknowledged."""
        self.store.append(RISK_TRANSITION_KIND, transition.to_payload(), transition.ts_ns,
                          durable=True)

    def guard(self, risk: RiskEngine, ts_ns: int, call: Callable[[], T]) -> T | None:
        """Run ``call`` (a risk-engine method); a store write failure halts trading."""
        try:
            return call()
        except StoreWriteError as exc:
            self.write_failures += 1
            self.last_error = exc
            risk.store_failed(ts_ns, f"state store cannot write: {exc.message}")
            return None

    def retry(self, risk: RiskEngine) -> bool:
        """Write the pending halt (and anything queued behind it); True when nothing waits."""
        try:
            risk.retry_persist()
        except StoreWriteError as exc:
            self.write_failures += 1
            self.last_error = exc
            return False
        return True
