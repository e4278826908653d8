"""Risk: pre-trade checks and the ``ACTIVE`` / ``COOL`` / ``HALTED`` state machine.

The engine (``engine``, ``rules``, ``state``, ``config``) is pure and deterministic: integers
only, time from the event clock passed in by the caller, no I/O. It reads the portfolio through
``weltklassebot.portfolio.view.PortfolioView``. The edges that touch files live in
``weltklassebot.service`` (operator commands, the risk journal). See docs/risk.md.
"""

from weltklassebot.portfolio.view import PortfolioView
from weltklassebot.risk.config import RiskConfig
from weltklassebot.risk.engine import SNAPSHOT_SCHEMA, Persist, RiskEngine
from weltklassebot.risk.rules import OrderProposal, RiskDecision, split_exposure
from weltklassebot.risk.state import DenialReason, RiskState, RiskTransition, TransitionReason

__all__ = [
    "SNAPSHOT_SCHEMA",
    "DenialReason",
    "OrderProposal",
    "Persist",
    "PortfolioView",
    "RiskConfig",
    "RiskDecision",
    "RiskEngine",
    "RiskState",
    "RiskTransition",
    "TransitionReason",
    "split_exposure",
]
