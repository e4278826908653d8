"""report and compare as a user runs them, --no-report, the record covering report.html, and the
summary's data, parameters and bundled-sample notice."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from support.cli import run_cli
from support.live import sample_slice
from weltklassebot.runs.record import REPORT, verify_record

PLOTLY_HEADER = re.compile(rb"plotly\.js v\d+\.\d+\.\d+")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_slice(tmp_path_factory.mktemp("data") / "btc.parquet", 3000, offset=2000)


def test_a_run_directory_has_a_self_contained_report(tmp_path: Path, data: Path) -> None:
    out = tmp_path / "run"
    proc = run_cli("backtest", "--data-snapshot", data, "--out", out, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    page = (out / REPORT).read_bytes()
    assert PLOTLY_HEADER.search(page)  # the chart library is inside the page
    assert not re.search(rb"<script[^>]*\ssrc=", page)
    assert not re.search(rb"<link[^>]*\shref=\"(?!data:)", page)
    assert len(page) < 20_000_000
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["files"][REPORT]["sha256"] == hashlib.sha256(page).hexdigest()
    assert f"Report               {out / REPORT}" in proc.stdout
    # The report is rebuilt byte for byte from the record.
    again = run_cli("report", out, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["price_chart"] is True
    assert (out / REPORT).read_bytes() == page
    verify_record(out)


def test_a_report_the_record_covers_is_never_replaced_by_another(tmp_path: Path,
                                                                  data: Path) -> None:
    snapshot = tmp_path / "moved.parquet"
    shutil.copyfile(data, snapshot)
    out = tmp_path / "run"
    assert run_cli("backtest", "--data-snapshot", snapshot, "--out", out,
                   "--no-progress").returncode == 0
    recorded = (out / REPORT).read_bytes()
    snapshot.unlink()  # the bars are gone: the price chart cannot be drawn again
    proc = run_cli("report", out)
    assert proc.returncode == 2
    assert "part of the run's record" in proc.stderr
    assert "--out FILE" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (out / REPORT).read_bytes() == recorded
    elsewhere = tmp_path / "elsewhere.html"
    proc = run_cli("report", out, "--out", elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert "snapshot" in proc.stderr  # says why the price chart is missing
    assert elsewhere.stat().st_size > 1_000_000
    # A damaged record is refused before any report is written.
    (out / "fills.parquet").write_bytes(b"not parquet")
    proc = run_cli("report", out, "--out", tmp_path / "never.html")
    assert proc.returncode == 2
    assert "fills.parquet" in proc.stderr
    assert not (tmp_path / "never.html").exists()


def test_no_report_writes_none_and_report_writes_it_later(tmp_path: Path, data: Path) -> None:
    out = tmp_path / "run"
    proc = run_cli("backtest", "--data-snapshot", data, "--out", out, "--no-progress",
                   "--no-report")
    assert proc.returncode == 0, proc.stderr
    assert not (out / REPORT).exists()
    assert REPORT not in json.loads((out / "manifest.json").read_text())["files"]
    proc = run_cli("report", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out / REPORT)
    assert (out / REPORT).stat().st_size > 1_000_000
    verify_record(out)  # not part of the record: the record still verifies
    assert run_cli("replay", out).returncode == 0


def test_compare_needs_two_runs_and_names_its_page_by_time(tmp_path: Path, data: Path) -> None:
    out = tmp_path / "run"
    assert run_cli("backtest", "--data-snapshot", data, "--out", out, "--no-progress",
                   "--no-report").returncode == 0
    one = run_cli("compare", out)
    assert one.returncode == 2
    assert "at least two" in one.stderr
    proc = run_cli("compare", out, out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (page,) = tmp_path.glob("compare-*.html")
    assert re.fullmatch(r"compare-\d{8}T\d{6}Z\.html", page.name)
    assert proc.stdout.strip() == page.name
    missing = run_cli("compare", out, tmp_path / "nope")
    assert missing.returncode == 2
    assert "nope" in missing.stderr


def test_summary_names_data_and_parameters(tmp_path: Path, data: Path) -> None:
    out = tmp_path / "run"
    proc = run_cli("backtest", "--data-snapshot", data, "--out", out, "--no-progress",
                   "--strategy", "donchian_breakout", "--param", "entry=30", "--no-report")
    assert proc.returncode == 0, proc.stderr
    sha = hashlib.sha256(data.read_bytes()).hexdigest()
    assert re.search(r"^Strategy +donchian_breakout \S+ \(entry=30, .*\)$", proc.stdout,
                     re.MULTILINE)
    assert re.search(rf"^Data +btc\.parquet \(sha256 {sha[:12]}\)$", proc.stdout, re.MULTILINE)
    assert re.search(r"^ +BTC/USD, 1h bars, \S+ to \S+, 3,000 rows$", proc.stdout, re.MULTILINE)
    assert re.search(r"^ +Strategy +Buy & hold$", proc.stdout, re.MULTILINE)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["sha256"] == sha
    assert summary["params"]["entry"] == 30
    assert "notice" not in summary
    assert proc.stderr == ""


def test_the_bundled_sample_says_so_when_a_snapshot_directory_is_configured(
        tmp_path: Path, data: Path) -> None:
    snapdir = tmp_path / "snapshots"
    snapdir.mkdir()
    out = tmp_path / "run"
    proc = run_cli("backtest", "--out", out, "--no-progress", "--no-report",
                   env={"WELTKLASSE_SNAPSHOT_DIR": str(snapdir)})
    assert proc.returncode == 0, proc.stderr
    latest = snapdir / "latest.parquet"
    assert f"used the bundled sample, not {latest}" in proc.stderr
    assert f"--data-snapshot {latest}" in proc.stderr
    assert "Notice" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert f"--data-snapshot {latest}" in summary["notice"]
    # From the config file's [snapshots] section too; never when a snapshot is named.
    config = tmp_path / "c.toml"
    config.write_text(f'[snapshots]\nsnapshot_dir = "{snapdir}"\n')
    proc = run_cli("backtest", "--config", config, "--out", tmp_path / "r2", "--no-progress",
                   "--no-report")
    assert proc.returncode == 0, proc.stderr
    assert f"[snapshots] snapshot_dir in {config}" in proc.stderr
    named = run_cli("backtest", "--config", config, "--out", tmp_path / "r3", "--no-progress",
                    "--no-report", "--data-snapshot", data)
    assert named.returncode == 0, named.stderr
    assert "bundled sample" not in named.stderr
    assert "notice" not in json.loads((tmp_path / "r3" / "summary.json").read_text())
