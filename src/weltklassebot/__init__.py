"""Weltklassebot: one deterministic trading pipeline run as backtester, live service and replayer.

The package owns the pure core (``core``, ``model``, ``engine``, ``strategy``, ``risk``,
``portfolio``) and the edges that touch the world (``data``, ``state``, ``cli``, ``service``,
``metrics``). The core reads no wall clock and no global random state.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
