"""The Parquet writer: write the table beside its target, fsync, validate, then rename into place.

The result is validated with the same rules as ``snapshot validate`` before the rename, and a
violation is reported with the source lines of the rows at fault; on any failure nothing is left
behind (not even an output folder the import created).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from weltklassebot.core.timeutil import ns_to_iso
from weltklassebot.data.importing.context import ImportContext
from weltklassebot.data.importing.symbols import split_symbol
from weltklassebot.data.schema import KIND_BARS, META_KEY, SnapshotMeta
from weltklassebot.data.validate import ValidationReport, Violation, inspect_snapshot
from weltklassebot.errors import InvalidSnapshot, RuntimeFailure, UsageError
from weltklassebot.fsutil import fsync_dir, fsync_file, sha256_file

ROW_GROUP_ROWS = 1 << 20


@dataclass
class ImportResult:
    """What an import wrote and everything it fixed or found suspicious."""

    path: Path
    source: Path
    kind: str
    format: str
    rows: int
    source_rows: int
    symbols: tuple[str, ...]
    meta: SnapshotMeta
    fixes: list[str]
    warnings: list[str]
    report: ValidationReport
    sha256: str

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "source": str(self.source),
            "kind": self.kind,
            "format": self.format,
            "rows": self.rows,
            "source_rows": self.source_rows,
            "symbols": list(self.symbols),
            "price_increment": self.meta.price_increment,
            "sha256": self.sha256,
            "fixes": self.fixes,
            "warnings": self.warnings,
            "metadata": json_loads(self.meta.to_json()),
            "validation": self.report.to_json_dict(),
        }


def json_loads(text: str) -> Any:
    return json.loads(text)


def write_snapshot(table: pa.Table, ctx: ImportContext, out: Path, *, name: str, symbols: list[str],
                   overwrite: bool, price_increment: str | None = None) -> ImportResult:
    line_of_row: np.ndarray = ctx.extra.pop("line_of_row")
    kind = ctx.layout.kind
    keep_symbol = "symbol" in table.column_names
    single = symbols[0] if len(symbols) == 1 and symbols[0] else None
    base, quote = split_symbol(single)
    quote = quote or ctx.extra.pop("quote_currency_from_volume", None)
    interval = ctx.extra.pop("bar_interval_ns", None) if kind == KIND_BARS else None
    ctx.extra.pop("bar_interval_ns", None)
    meta = SnapshotMeta(
        symbol=single,
        price_increment=price_increment,
        quote_currency=quote,
        bar_interval_ns=interval,
        ts_convention="bar_start" if kind == KIND_BARS else "trade_time",
        source=ctx.src.name,
        kind=kind,
        name=name,
        extra={"import": {**ctx.extra, "rows": table.num_rows, "fixes": list(ctx.fixes),
                          "warnings": list(ctx.warnings)},
               **({"base_currency": base} if base else {})},
    )
    table = table.replace_schema_metadata({META_KEY: meta.to_json()})
    out = Path(out)
    created_dir: Path | None = None
    if not out.parent.exists():
        missing = out.parent
        while not missing.parent.exists():
            missing = missing.parent
        try:
            out.parent.mkdir(parents=True)
        except OSError as exc:
            raise RuntimeFailure(f"cannot create the output folder {out.parent}: "
                                 f"{exc.strerror}. Pass --out to write elsewhere.") from exc
        created_dir = missing
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    try:
        try:
            pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS, compression="zstd")
            fsync_file(tmp)
        except OSError as exc:
            raise RuntimeFailure(f"cannot write {out}: {exc.strerror or exc}. Nothing was "
                                 "written; free space or pass --out to write elsewhere.") from exc
        report = inspect_snapshot(tmp)
        if not report.ok:
            raise InvalidSnapshot(_explain_violations(ctx, report, line_of_row, keep_symbol))
        if out.exists() and not overwrite:
            raise UsageError(f"{out} appeared while importing and was left untouched.")
        os.replace(tmp, out)
        fsync_dir(out.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        if created_dir is not None:
            _remove_empty_dirs(out.parent, created_dir)
        raise
    report = dataclasses.replace(report, path=out)
    ctx.warnings.extend(report.warnings)
    return ImportResult(
        path=out, source=ctx.src, kind=kind, format=ctx.layout.format, rows=table.num_rows,
        source_rows=int(ctx.extra.get("source_rows", table.num_rows)),
        symbols=tuple(s for s in symbols if s), meta=meta, fixes=ctx.fixes,
        warnings=ctx.warnings, report=report, sha256=sha256_file(out),
    )


def _remove_empty_dirs(leaf: Path, top: Path) -> None:
    current = leaf
    while True:
        try:
            current.rmdir()
        except OSError:
            return
        if current == top:
            return
        current = current.parent


def _explain_violations(ctx: ImportContext, report: ValidationReport, line_of_row: np.ndarray,
                        keep_symbol: bool) -> str:
    parts: list[str] = []
    for violation in report.violations:
        parts.append(_violation_text(violation, line_of_row))
    advice = "Fix those rows in the source and import again."
    ticks = any(v.rule == "price_ticks" for v in report.violations)
    source = ctx.extra.get("price_increment_from")
    if ticks and source == "--price-increment":
        advice = ("The prices are not whole multiples of --price-increment: pass the step they "
                  "really move in (or leave --price-increment out to infer it from their "
                  "decimals), or fix those rows, and import again.")
    elif ticks and source is not None and source.startswith("none"):
        advice = ("The prices carry more decimals than whole ticks of a price can hold, so no "
                  "increment fits them: round the prices in the source to the step they really "
                  "move in (or pass that step with --price-increment) and import again.")
    return (f"{ctx.src} breaks the snapshot rules, so nothing was written: " + "; ".join(parts)
            + ". " + advice)


def _violation_text(violation: Violation, line_of_row: np.ndarray) -> str:
    where = []
    for ref in violation.examples:
        text = f"line {int(line_of_row[ref.index])}" if ref.index < line_of_row.size \
            else f"row {ref.index}"
        if ref.ts_ns is not None:
            text += f" ({ns_to_iso(ref.ts_ns)})"
        where.append(text)
    detail = f" ({violation.detail})" if violation.detail else ""
    return (f"{violation.description} fails for {violation.count} row(s){detail}, first at "
            + ", ".join(where))
