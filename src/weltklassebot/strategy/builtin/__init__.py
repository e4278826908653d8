"""Built-in strategies, one per module."""

from weltklassebot.strategy.builtin.donchian_breakout import DonchianBreakout
from weltklassebot.strategy.builtin.sma_cross import SmaCross

BUILTINS = {cls.name: cls for cls in (SmaCross, DonchianBreakout)}

__all__ = ["BUILTINS", "DonchianBreakout", "SmaCross"]
