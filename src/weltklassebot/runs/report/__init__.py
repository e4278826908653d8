"""``report.html`` and comparison pages: one self-contained HTML file each.

The page holds its data as JSON, the renderer (``assets/report.js``) and plotly.js, inlined
from the ``plotly`` package's own bundle, so it opens offline and makes no request. The same
inputs give the same bytes: nothing in the page depends on when it was written.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from weltklassebot.errors import UnusableInput
from weltklassebot.runs.benchmark import MarketTape
from weltklassebot.runs.report.data import (
    RawJSON,
    drawdown_of,
    load_equity,
    report_payload,
    series,
)

ASSETS = Path(__file__).resolve().parent / "assets"
_MARKERS = ("<!--TITLE-->", "/*STYLE*/", "<!--DATA-->", "//PLOTLY", "//APP")


@cache
def plotly_js() -> str:
    """plotly.js as the ``plotly`` package ships it (minified, MIT licence)."""
    spec = importlib.util.find_spec("plotly")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / "package_data" / "plotly.min.js"
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise UnusableInput("the plotly package (which ships the charts' plotly.js) is not "
                        "installed; run `bash scripts/setup.sh` to install the dependencies, "
                        "or pass --no-report.")


@cache
def _template() -> list[str]:
    text = (ASSETS / "template.html").read_text(encoding="utf-8")
    parts = []
    for marker in _MARKERS:
        head, _, text = text.partition(marker)
        parts.append(head)
    parts.append(text)
    return parts


def _escape_html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@cache
def _static_bytes() -> tuple[list[bytes], bytes, bytes, bytes]:
    """The page's fixed parts as UTF-8, encoded once per process (plotly.js alone is several
    MB): the template's pieces between the markers, the style sheet, plotly.js, the renderer."""
    return ([part.encode("utf-8") for part in _template()],
            (ASSETS / "report.css").read_text(encoding="utf-8").encode("utf-8"),
            plotly_js().encode("utf-8"),
            (ASSETS / "report.js").read_text(encoding="utf-8").encode("utf-8"))


_SPLICE = "\ue000"  # a private-use character: marks where RawJSON text goes


def payload_json(payload: dict[str, Any]) -> str:
    """``payload`` as compact JSON (non-ASCII kept); each ``RawJSON`` in it contributes its
    text, exactly what ``json.dumps`` gives its plain value (a marker that also occurs in the
    data makes it encode the plain values instead)."""
    options: dict[str, Any] = {"separators": (",", ":"), "ensure_ascii": False,
                               "allow_nan": False}
    raws: list[RawJSON] = []

    def marker(value: Any) -> str:
        raws.append(_raw(value))
        return f"{_SPLICE}{len(raws) - 1}{_SPLICE}"

    text = json.dumps(payload, default=marker, **options)
    quoted = [json.dumps(f"{_SPLICE}{i}{_SPLICE}", **options) for i in range(len(raws))]
    if all(text.count(q) == 1 for q in quoted):
        for q, raw in zip(quoted, raws, strict=True):
            text = text.replace(q, raw.text)
        return text
    return json.dumps(payload, default=lambda value: _raw(value).plain(), **options)


def _raw(value: Any) -> RawJSON:
    if not isinstance(value, RawJSON):
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
    return value


def render_page(payload: dict[str, Any]) -> bytes:
    """The HTML page for ``payload`` (a report's or a comparison's data)."""
    # "<" never occurs in JSON outside strings: escaped, no text can close the script element.
    blob = payload_json(payload).replace("<", "\\u003c")
    parts, style, plotly, app = _static_bytes()
    fillers = [_escape_html(str(payload.get("title", "report"))).encode("utf-8"), style,
               blob.encode("utf-8"), plotly, app]
    out = [parts[0]]
    for filler, rest in zip(fillers, parts[1:], strict=True):
        out.append(filler)
        out.append(rest)
    return b"".join(out)


def write_page(path: Path, page: bytes) -> Path:
    """Write atomically: a reader never sees half a page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(page)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def report_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest fields a report may use: those known before the manifest is sealed."""
    return {k: v for k, v in manifest.items() if k not in ("files", "manifest_sha256")}


def build_report(run_dir: Path, summary: dict[str, Any], manifest: dict[str, Any],
                 tape: MarketTape | None) -> bytes:
    return render_page(report_payload(run_dir, summary, report_manifest(manifest), tape))


def compare_payload(run_dirs: list[Path]) -> dict[str, Any]:
    """Equity curves (as cumulative return), drawdowns, statistics and equity hashes of runs."""
    runs: list[dict[str, Any]] = []
    benchmarks: list[dict[str, Any]] = []
    seen_data: set[str] = set()
    labels: list[str] = []
    for index, run_dir in enumerate(run_dirs):
        summary, manifest = read_run(run_dir)
        ts, values = load_equity(run_dir)
        initial = float(summary["initial_equity"])
        label = run_dir.resolve().name or str(run_dir)
        if label in labels:
            label = f"{label} ({index + 1})"
        labels.append(label)
        data = summary.get("data") or {}
        params = summary.get("params") or (manifest.get("strategy") or {}).get("params") or {}
        returns = values / initial - 1.0 if initial else values * 0.0
        runs.append({
            "label": label,
            "run_dir": str(run_dir),
            "strategy": f"{summary.get('strategy')} {summary.get('strategy_version') or ''}"
                        .strip(),
            "params": ", ".join(f"{k}={v}" for k, v in params.items()) or "(none)",
            "data": f"{Path(str(data.get('file'))).name} "
                    f"({str(data.get('sha256') or '')[:12]})",
            "seed": summary.get("seed"),
            "equity_hash": summary.get("equity_hash"),
            "stats": summary.get("stats"),
            "returns": series(ts, returns),
            "drawdown": series(ts, drawdown_of(values, initial), 6),
        })
        sha = str(data.get("sha256") or "")
        if summary.get("benchmark") and sha not in seen_data:
            seen_data.add(sha)
            benchmarks.append({"label": f"Buy & hold ({Path(str(data.get('file'))).name})",
                               "stats": summary["benchmark"]})
    groups: dict[str, list[int]] = {}
    for i, run in enumerate(runs):
        groups.setdefault(str(run["equity_hash"]), []).append(i)
    return {"mode": "compare", "title": f"Comparison of {len(runs)} runs", "runs": runs,
            "benchmarks": benchmarks, "hashes_match": len(groups) == 1,
            "hash_groups": list(groups.values()), "currency": ""}


def read_run(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """summary.json and manifest.json of a run directory this build wrote (schema 3)."""
    from weltklassebot.runs.record import MANIFEST_SCHEMA_VERSION

    if not run_dir.is_dir():
        what = "does not exist" if not run_dir.exists() else "is not a directory"
        raise UnusableInput(f"run directory {run_dir} {what}; pass a directory a backtest or "
                            "the live service wrote (it holds manifest.json).")
    loaded = []
    for name in ("summary.json", "manifest.json"):
        path = run_dir / name
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise UnusableInput(f"{run_dir} has no {name}, so it is not a complete run "
                                "directory; pass a directory a finished run wrote.") from exc
        except (OSError, ValueError) as exc:
            raise UnusableInput(f"{path} cannot be read as JSON ({exc}); the run directory "
                                "is damaged. Run the backtest again.") from exc
        if not isinstance(value, dict):
            raise UnusableInput(f"{path} is not a JSON object; the run directory is damaged.")
        loaded.append(value)
    summary, manifest = loaded
    version = manifest.get("schema_version")
    if version != MANIFEST_SCHEMA_VERSION or "stats" not in summary:
        raise UnusableInput(
            f"{run_dir} was written by another build (manifest schema version {version!r}; "
            f"this build reads {MANIFEST_SCHEMA_VERSION}), so it has no statistics to show. "
            "Run it again with this build: its settings are in its manifest.json.")
    if not (run_dir / "equity.parquet").is_file():
        raise UnusableInput(f"{run_dir} has no equity.parquet; pass a complete run directory.")
    return summary, manifest


@dataclass(frozen=True)
class WrittenReport:
    path: Path
    bytes: int
    price_chart: bool
    note: str | None


def tape_of_record(manifest: dict[str, Any]) -> tuple[MarketTape | None, str | None]:
    """The recorded snapshot's bars, when the file is still there with its recorded SHA-256;
    otherwise None and why."""
    from decimal import Decimal

    from weltklassebot.data.reader import open_snapshot
    from weltklassebot.fsutil import sha256_file
    from weltklassebot.model.instrument import Instrument, MoneySpec

    snapshot = manifest.get("snapshot") or {}
    path = Path(str(snapshot.get("resolved_path")))
    if not path.is_file():
        return None, (f"the snapshot {path} is gone, so the price chart and benchmark curve "
                      "are left out")
    if sha256_file(path) != snapshot.get("sha256"):
        return None, (f"the snapshot {path} changed since the run (its SHA-256 differs), so the "
                      "price chart and benchmark curve are left out")
    execution = (manifest.get("config") or {}).get("execution") or {}
    money = MoneySpec(str(execution.get("quote_currency", "USD")),
                      Decimal(str(execution.get("cash_increment", "0.00000001"))))
    instruments = {
        name: Instrument(name, Decimal(str(facts["price_increment"])),
                         Decimal(str(facts["quantity_increment"])), money)
        for name, facts in (manifest.get("instruments") or {}).items()}
    if not instruments:
        return None, "the manifest names no instruments"
    return MarketTape.from_snapshot(open_snapshot(path), instruments, time_ordered=False), None


def rebuild_report(run_dir: Path, out: Path | None = None) -> WrittenReport:
    """``python -m cli report``: check the record, then write its report to ``out`` (default:
    ``RUN_DIR/report.html``). A report the record covers is only ever written again with the
    same bytes; a different one goes elsewhere (``--out``)."""
    import hashlib

    from weltklassebot.runs.record import REPORT, verify_record

    record = verify_record(run_dir, skip=(REPORT,))
    summary, manifest = read_run(run_dir)
    tape, note = tape_of_record(record.manifest)
    page = build_report(run_dir, summary, manifest, tape)
    target = out if out is not None else run_dir / REPORT
    recorded = (record.manifest.get("files") or {}).get(REPORT)
    if (isinstance(recorded, dict) and target.resolve() == (run_dir / REPORT).resolve()
            and hashlib.sha256(page).hexdigest() != recorded.get("sha256")):
        why = note or "it was written by another version of weltklassebot"
        raise UnusableInput(
            f"{run_dir / REPORT} is part of the run's record (manifest.json records its "
            f"SHA-256), and the report written now differs from it ({why}). Pass --out FILE "
            "to write the new report elsewhere; the recorded one stays as it is.")
    if target.is_dir():
        raise UnusableInput(f"--out {target} is a directory; name the HTML file to write.")
    write_page(target, page)
    return WrittenReport(target, len(page), tape is not None, note)


def write_compare(run_dirs: list[Path], out: Path) -> WrittenReport:
    if out.is_dir():
        raise UnusableInput(f"--out {out} is a directory; name the HTML file to write.")
    page = render_page(compare_payload(run_dirs))
    write_page(out, page)
    return WrittenReport(out, len(page), False, None)
