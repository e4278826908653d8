"""``report.html`` of a sweep: one self-contained offline page, built like the run report.

The page holds the results as JSON, its renderer (``assets/sweep.js``) and plotly.js from the
``plotly`` package, inline: it makes no request. It shows a heatmap of a statistic over two
parameters (mean over seeds and snapshots; the statistic and the two parameters are chosen on
the page), the distribution of the statistic over seeds, the top cells, failed cells with their
errors, and for a walk-forward its windows and the stitched out-of-sample curves, for Monte
Carlo the quantiles of every statistic. Nothing on the page depends on when it was written
(sweep.json's timings are not on it).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from weltklassebot.runs.report import ASSETS as RUN_REPORT_ASSETS
from weltklassebot.runs.report import plotly_js
from weltklassebot.runs.report.data import series
from weltklassebot.runs.results import STATS_KEYS
from weltklassebot.sweep.cells import MONEY_STATS
from weltklassebot.sweep.grid import Axis
from weltklassebot.sweep.walkforward import LOWER_IS_BETTER

ASSETS = Path(__file__).resolve().parent / "assets"
_MARKERS = ("<!--TITLE-->", "/*STYLE*/", "<!--DATA-->", "//PLOTLY", "//APP")
TITLES = {"sweep": "Sweep", "walkforward": "Walk-forward", "montecarlo": "Monte Carlo"}
ROW_COLUMNS = ("seed", "snapshot_sha256", "equity_hash", "status", "error", "window", "phase",
               "start", "end")


def report_payload(summary: dict[str, Any], rows: list[dict[str, Any]], axes: list[Axis],
                   stat: str, stitched: list[dict[str, Any]] | None) -> dict[str, Any]:
    inputs = summary["inputs"]
    strategy = inputs["strategy"]
    names = [a.name for a in axes]
    columns: dict[str, list[Any]] = {n: [r.get(n) for r in rows] for n in names}
    for key in (*ROW_COLUMNS, *STATS_KEYS):
        values = [r.get(key) for r in rows]
        if key in MONEY_STATS:
            values = [None if v is None else float(Decimal(str(v))) for v in values]
        if any(v is not None for v in values) or key in ROW_COLUMNS[:5]:
            columns[key] = values
    payload: dict[str, Any] = {
        "mode": "sweep",
        "title": f"{TITLES[summary['kind']]} of {strategy['name']} "
                 f"({summary['counts']['cells']:,} cells)",
        "kind": summary["kind"],
        "strategy": strategy,
        "sweep_hash": summary["sweep_hash"],
        "counts": summary["counts"],
        "grid": inputs["grid"],
        "seeds": inputs["seeds"],
        "snapshots": [{"name": Path(s["path"]).name, "sha256": s["sha256"], "rows": s["rows"]}
                      for s in inputs["snapshots"]],
        "params": names,
        "param_kinds": {a.name: a.kind for a in axes},
        "stat_keys": [k for k in STATS_KEYS if k in columns],
        "stat": stat if stat in columns else "total_return",
        "lower_is_better": sorted(LOWER_IS_BETTER),
        "rows": columns,
        "failed": summary.get("failed", []),
        "package_version": inputs.get("package_version"),
    }
    if "walkforward" in summary:
        wf = dict(summary["walkforward"])
        wf["curves"] = [{"snapshot_sha256": c["snapshot_sha256"], "seed": c["seed"],
                         **series(np.asarray(c["ts"]), np.asarray(c["equity"], dtype=float))}
                        for c in (stitched or [])]
        payload["walkforward"] = wf
    if "montecarlo" in summary:
        payload["montecarlo"] = summary["montecarlo"]
    return payload


def render(payload: dict[str, Any]) -> bytes:
    blob = json.dumps(payload, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).replace("<", "\\u003c")
    title = str(payload["title"]).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    style = ((RUN_REPORT_ASSETS / "report.css").read_text(encoding="utf-8")
             + (ASSETS / "sweep.css").read_text(encoding="utf-8"))
    fillers = [title, style, blob, plotly_js(), (ASSETS / "sweep.js").read_text(encoding="utf-8")]
    text = (ASSETS / "template.html").read_text(encoding="utf-8")
    out: list[str] = []
    for marker, filler in zip(_MARKERS, fillers, strict=True):
        head, _, text = text.partition(marker)
        out.extend((head, filler))
    out.append(text)
    return "".join(out).encode("utf-8")


def build_sweep_report(summary: dict[str, Any], rows: list[dict[str, Any]], axes: list[Axis],
                       stat: str, stitched: list[dict[str, Any]] | None) -> bytes:
    return render(report_payload(summary, rows, axes, stat, stitched))
