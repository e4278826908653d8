"""The importer on the real raw files bundled in tests/data/raw, compared with the clean files."""

from __future__ import annotations

import gzip
import json
import shutil
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from weltklassebot.data.importer import import_csv
from weltklassebot.data.schema import META_KEY, SnapshotMeta, read_meta
from weltklassebot.data.validate import require_valid
from weltklassebot.errors import UnusableInput

from .snapshot_support import (
    COINBASE_CLEAN,
    COINBASE_CSV,
    MSFT_CLEAN,
    MSFT_CSV,
    MTGOX_CLEAN,
    MTGOX_CSV,
    SPY_CLEAN,
    SPY_CSV,
    CliRunner,
)

BAR_COLUMNS = ["ts", "open", "high", "low", "close", "volume"]


def _same(imported: Path, clean: Path, columns: list[str]) -> None:
    got = pq.read_table(imported)
    want = pq.read_table(clean)
    assert got.num_rows == want.num_rows
    for column in columns:
        assert got.column(column).equals(want.column(column)), column


def test_coinbase_equals_clean_file_row_for_row(tmp_path: Path) -> None:
    result = import_csv(COINBASE_CSV, name="btcusd-1h", out=tmp_path / "c.parquet")
    _same(result.path, COINBASE_CLEAN, BAR_COLUMNS)
    assert pq.read_schema(result.path).names == BAR_COLUMNS  # single instrument: no symbol
    assert pq.read_schema(result.path).field("ts").type == pa.timestamp("ns", tz="UTC")
    fixes = "\n".join(result.fixes)
    assert "banner" in fixes
    assert "CryptoDataDownload" in fixes
    assert "newest-first" in fixes
    assert "12-hour clock" in fixes
    assert "banner line says so" in fixes
    assert "volume_btc" in fixes
    assert "quote-currency" in fixes
    warnings = "\n".join(result.warnings)
    assert "5 consecutive bars 2017-11-12T04:00:00Z .. 2017-11-12T08:00:00Z" in warnings
    assert "2017-11-11T23:00:00Z .. 2017-11-12T03:00:00Z" in warnings
    assert "28 zero-volume bar(s)" in warnings
    meta = read_meta(result.path)
    assert meta is not None
    assert meta.kind == "bars"
    assert meta.name == "btcusd-1h"
    assert meta.symbol == "BTCUSD"
    assert meta.quote_currency == "USD"
    assert meta.bar_interval_ns == 3600 * 10**9
    assert meta.ts_convention == "bar_start"
    assert meta.source == COINBASE_CSV.name
    assert meta.extra["import"]["volume_column"] == "volume_btc"


def test_msft_dates_equal_clean_file(tmp_path: Path) -> None:
    result = import_csv(MSFT_CSV, name="msft", out=tmp_path / "m.parquet")
    _same(result.path, MSFT_CLEAN, BAR_COLUMNS)
    assert any("00:00 UTC" in fix for fix in result.fixes)
    assert result.report.ok
    assert any("zero-volume" in w for w in result.warnings)


def test_ninjatrader_needs_zone_then_moves_bar_end_to_start(tmp_path: Path) -> None:
    out = tmp_path / "spy.parquet"
    with pytest.raises(UnusableInput, match="--tz"):
        import_csv(SPY_CSV, name="spy", out=out)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
    result = import_csv(SPY_CSV, name="spy", out=out, tz="UTC")
    assert result.format == "ninjatrader"
    got, want = pq.read_table(out), pq.read_table(SPY_CLEAN)
    # Documented difference: the clean file keeps NinjaTrader's END-of-bar stamps.
    shifted = pa.compute.subtract(want.column("ts").cast(pa.int64()), 60 * 10**9)
    assert got.column("ts").cast(pa.int64()).equals(shifted)
    for column in BAR_COLUMNS[1:]:
        assert got.column(column).equals(want.column(column))
    meta = read_meta(out)
    assert meta is not None
    assert meta.ts_convention == "bar_start"
    assert meta.extra["import"]["ts_shift_ns"] == -60 * 10**9
    assert any("END time" in fix for fix in result.fixes)


def test_mtgox_trades_equal_clean_file_and_bar_commands_refuse(tmp_path: Path) -> None:
    result = import_csv(MTGOX_CSV, name="mtgox", out=tmp_path / "t.parquet")
    assert result.kind == "trades"
    _same(result.path, MTGOX_CLEAN, ["ts", "price", "size", "side", "trade_id"])
    assert any("Mt.Gox" in fix for fix in result.fixes)
    assert any("'bid' -> buy" in fix for fix in result.fixes)
    meta = read_meta(result.path)
    assert meta is not None
    assert meta.kind == "trades"
    with pytest.raises(UnusableInput, match="trade ticks"):
        require_valid(result.path, kind="bars")


def test_gzip_and_zip_inputs_give_identical_snapshots(tmp_path: Path) -> None:
    plain = import_csv(MSFT_CSV, name="msft", out=tmp_path / "plain.parquet")
    gz = tmp_path / "msft.csv.gz"
    with MSFT_CSV.open("rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    zipped = tmp_path / "msft.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.write(MSFT_CSV, "msft.csv")
    for source in (gz, zipped):
        result = import_csv(source, name="msft", out=tmp_path / f"{source.suffix[1:]}.parquet")
        assert pq.read_table(result.path).equals(pq.read_table(plain.path))
    assert any("gzip" in fix for fix in import_csv(
        gz, name="msft", out=tmp_path / "again.parquet").fixes)


def test_import_is_deterministic(tmp_path: Path) -> None:
    a = import_csv(COINBASE_CSV, name="btc", out=tmp_path / "a.parquet")
    b = import_csv(COINBASE_CSV, name="btc", out=tmp_path / "b.parquet")
    assert a.sha256 == b.sha256
    assert a.path.read_bytes() == b.path.read_bytes()


def test_cli_import_prints_path_and_json_report(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("import", COINBASE_CSV, "--name", "btcusd-1h")
    assert result.returncode == 0, result.stderr
    written = tmp_path / "staging" / "btcusd-1h.parquet"
    assert result.stdout.strip() == "staging/btcusd-1h.parquet"
    assert written.exists()
    assert "newest-first" in result.stderr
    assert "warning:" in result.stderr
    again = cli("import", COINBASE_CSV, "--name", "btcusd-1h")
    assert again.returncode == 2
    assert "already exists" in again.stderr
    forced = cli("import", COINBASE_CSV, "--name", "btcusd-1h", "--force", "--json")
    assert forced.returncode == 0
    report = json.loads(forced.stdout)
    assert report["rows"] == 20111
    assert report["kind"] == "bars"
    assert report["validation"]["ok"] is True
    assert report["metadata"]["symbol"] == "BTCUSD"
    assert any("2017-11-12T04:00:00Z" in w for w in report["warnings"])


def test_cli_import_zone_less_refused_with_fix_named(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("import", SPY_CSV, "--name", "spy", "--out", tmp_path / "o.parquet")
    assert result.returncode == 2
    assert "--tz" in result.stderr
    assert SPY_CSV.name in result.stderr
    assert not (tmp_path / "o.parquet").exists()
    ok = cli("import", SPY_CSV, "--name", "spy", "--tz", "UTC", "--format", "ninjatrader",
             "--dir", tmp_path / "snaps")
    assert ok.returncode == 0, ok.stderr
    assert Path(ok.stdout.strip()) == tmp_path / "snaps" / "staging" / "spy.parquet"


def test_cli_trades_snapshot_refused_by_bar_commands(cli: CliRunner, tmp_path: Path,
                                                      snapdir: Path) -> None:
    result = cli("import", MTGOX_CSV, "--name", "mtgox")
    assert result.returncode == 0, result.stderr
    validated = cli("validate", "staging/mtgox.parquet")
    assert validated.returncode == 0
    assert "kind: trades" in validated.stdout
    promoted = cli("promote", "staging/mtgox.parquet", "--dir", snapdir)
    assert promoted.returncode == 2
    assert "trade ticks" in promoted.stderr
    assert sorted(p.name for p in snapdir.iterdir()) == []


def test_metadata_is_json_under_key(tmp_path: Path) -> None:
    result = import_csv(MSFT_CSV, name="msft", out=tmp_path / "m.parquet", symbol="MSFT")
    raw = pq.read_schema(result.path).metadata[META_KEY.encode()]
    meta = SnapshotMeta.from_json(raw)
    assert meta.symbol == "MSFT"
    assert pq.read_table(result.path).column("symbol").to_pylist()[:2] == ["MSFT", "MSFT"]
    assert json.loads(raw)["extra"]["import"]["source_sha256"]
