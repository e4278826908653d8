"""One fast-path run in a fresh process, for the cache tests: ``python -m fastpath.cache_probe``
prints the equity hash of the bundled sample's default backtest, whether the kernels use the
on-disk cache, the cache directory and the cache hits and misses, as one JSON line."""

from __future__ import annotations

import json

from weltklassebot import fastpath
from weltklassebot.config.model import BacktestConfig
from weltklassebot.fastpath import compiled
from weltklassebot.strategy.loader import resolve_strategy


def main() -> None:
    config = BacktestConfig()
    spec = resolve_strategy(config.strategy.name, dict(config.strategy.params))
    result = fastpath.run(spec, config, fastpath.prepare(config), with_stats=False)
    stats = compiled.kernel().stats
    print(json.dumps({"hash": result["equity_hash"], "cached": compiled.cached,
                      "cache_path": stats.cache_path,
                      "hits": sum(stats.cache_hits.values()),
                      "misses": sum(stats.cache_misses.values())}))


if __name__ == "__main__":
    main()
