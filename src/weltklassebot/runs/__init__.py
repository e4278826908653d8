"""Run orchestration at the edge: resolve inputs, drive the pure engine, write the run directory.

Everything that touches files, the wall clock or the environment for a backtest or a replay is
here or in ``cli``; the engine itself stays pure.
"""
