"""Parameter sweeps, walk-forward and Monte Carlo runs (docs/sweeps.md).

A sweep is a set of cells, the cartesian product of parameter values, seeds and snapshots;
each cell is an ordinary deterministic backtest (``runs.backtest.simulate``) whose equity hash
``backtest`` reproduces alone. Cells run on a backend (``local``: a process pool on this
machine; ``ray``: a Ray cluster) in any order; each finished cell is appended to a journal and
fsync'd, so a killed sweep resumes where it stopped, and the outputs (``results.parquet``,
``sweep.json`` with the sweep hash over the sorted rows, ``report.html``) do not depend on where
or in what order the cells ran.
"""
