"""Accounting: one cash balance and netted positions per symbol, as a projection of fills.

Exact: cash, fees and marks are integer money units; cost basis is an exact ``Fraction`` so
realised + unrealised PnL always equals the equity change plus fees paid.
"""
