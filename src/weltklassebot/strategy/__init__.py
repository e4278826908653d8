"""The strategy API: one class written once, run unchanged in backtest, live and replay.

A strategy sees a bar only at that bar's close event, submits and cancels orders through its
context, and never imports risk or execution: orders go strategy -> risk -> execution.
"""

from weltklassebot.strategy.base import Bar, Strategy, StrategyContext

__all__ = ["Bar", "Strategy", "StrategyContext"]
