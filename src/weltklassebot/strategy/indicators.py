"""The incremental indicators, under the name strategies have imported them by.

They live in ``weltklassebot.indicators`` (the public home, documented in docs/indicators.md);
this module re-exports every one of them, so ``from weltklassebot.strategy.indicators import
RollingMax`` keeps working and an indicator added there is here too.
"""

from weltklassebot import indicators as _home
from weltklassebot.indicators import *  # noqa: F403 - the home's names, as its __all__ lists

__all__ = list(_home.__all__)
