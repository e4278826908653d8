"""Technical indicators for strategies, incremental and exact where prices decide.

Every indicator has one shape: ``update(...)`` once per bar (from ``on_bar``) returns its
``value``; ``ready`` says when the warm-up is over (before that, float outputs are 0.0);
multi-output ones also name each output (``Bollinger``: ``upper``/``middle``/``lower``,
``MACD``: ``macd``/``signal``/``histogram``, ``Stochastic``: ``k``/``d``, ``ADX``:
``adx``/``plus_di``/``minus_di``); ``state()`` / ``load_state(data)`` save and restore them as
plain data; ``update_many(...)`` runs a whole array at once with the same values to the bit.
Prices are integer ticks (``bar.close``), so sums, extremes, ranges and crossings are exact.

The same indicators computed by the engine, vectorised per chunk, are the ``ctx.sma(...)``,
``ctx.rsi(...)``, ... series (weltklassebot.strategy.indicator_series). docs/indicators.md
has the warm-ups, the TA-Lib comparison and where the conventions differ.
"""

from weltklassebot.indicators.averages import EMA, SMA, WMA, Cross
from weltklassebot.indicators.momentum import MACD, ROC, RSI, Stochastic
from weltklassebot.indicators.rolling import RollingMax, RollingMin, RollingSum
from weltklassebot.indicators.trend import ADX
from weltklassebot.indicators.volatility import ATR, Bollinger, StdDev, TrueRange, ZScore
from weltklassebot.indicators.volume import VWAP

__all__ = [
    "ADX",
    "ATR",
    "EMA",
    "MACD",
    "ROC",
    "RSI",
    "SMA",
    "VWAP",
    "WMA",
    "Bollinger",
    "Cross",
    "RollingMax",
    "RollingMin",
    "RollingSum",
    "StdDev",
    "Stochastic",
    "TrueRange",
    "ZScore",
]
