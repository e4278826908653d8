"""The incremental indicators, under the name strategies have imported them by.

They live in ``weltklassebot.indicators`` (the public home, documented in docs/indicators.md);
this module re-exports all of them so ``from weltklassebot.strategy.indicators import
RollingMax`` keeps working.
"""

from weltklassebot.indicators import (
    ADX,
    ATR,
    EMA,
    MACD,
    ROC,
    RSI,
    SMA,
    VWAP,
    WMA,
    Bollinger,
    Cross,
    RollingMax,
    RollingMin,
    RollingSum,
    StdDev,
    Stochastic,
    TrueRange,
    ZScore,
)

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
