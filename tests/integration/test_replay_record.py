"""Replay checks the record it replays.

Generated faults: every file of a recorded run directory gets random byte flips, truncations,
deletion, garbage and an appended byte; each must be refused (exit 2, the file named), never
MATCH. ``WELTKLASSE_REPLAY_TAMPER_FLIPS`` (default 40 per file) sets the number of flips for a
longer soak. The named tampers of the issue run end to end through the CLI, ``--force`` included.
A forged but self-consistent record passes verification and is caught by the re-run: DIVERGED.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from support.cli import run_cli
from support.runrecord import (
    ALL_FILES,
    generated_tampers,
    reseal,
    restore_files,
    rewrite_parquet,
    snapshot_files,
)
from weltklassebot.config.model import BacktestConfig
from weltklassebot.errors import UnusableInput
from weltklassebot.runs.backtest import RunRequest, execute
from weltklassebot.runs.record import (
    MANIFEST,
    REPORT,
    RUN_FILES,
    TamperedRecord,
    equity_hash_of_files,
    verify_record,
)
from weltklassebot.runs.replay import replay

FLIPS = int(os.environ.get("WELTKLASSE_REPLAY_TAMPER_FLIPS", "40"))
SAMPLE_GOLDEN_HASH = "5157286e233f572603d426108774f4ce4a1407c5602cc1df7cc4999e7a1a94e8"


def _record(parent: Path, name: str, **config: Any) -> Path:
    request = RunRequest(config=BacktestConfig.model_validate(config), config_file=None,
                         argv=["test"], out=parent / name, runs_dir=parent)
    return execute(request).run_dir


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample with a tight drawdown cap: fills, orders, equity and events."""
    run_dir = _record(tmp_path_factory.mktemp("record"), "run", seed=3,
                      strategy={"name": "sma_cross"}, risk={"drawdown_cap": "0.001"})
    assert (run_dir / "events.jsonl").stat().st_size > 0
    assert (run_dir / "fills.parquet").stat().st_size > 0
    return run_dir


@pytest.fixture
def copy(recorded: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(recorded, target)
    return target


def _manifest(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / MANIFEST).read_text())
    return data


def _write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    (run_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


# -- the record itself -------------------------------------------------------------------------


def test_a_fresh_record_verifies_with_one_seed_and_its_checksums(recorded: Path) -> None:
    manifest = _manifest(recorded)
    assert manifest["schema_version"] == 3
    assert manifest["seed"] == 3
    assert "seed" not in manifest["config"]
    assert sorted(manifest["files"]) == sorted([*RUN_FILES, REPORT])
    assert list(manifest)[-1] == "manifest_sha256"
    record = verify_record(recorded)
    assert record.seed == 3
    assert record.equity_hash == manifest["equity_hash"]


def test_the_equity_hash_recomputed_from_files_is_the_engines(tmp_path: Path,
                                                              msft_daily: Path) -> None:
    """Golden sample, a multi-row-group run, and a file without metadata (default increments)."""
    cases = [
        ({}, SAMPLE_GOLDEN_HASH),
        ({"strategy": {"name": "donchian_breakout"}, "data": {"snapshot": str(msft_daily)},
          "execution": {"slippage": {"model": "stochastic", "max_bps": "5"}}}, None),
    ]
    for index, (config, expected) in enumerate(cases):
        run_dir = _record(tmp_path, f"r{index}", **config)
        summary = json.loads((run_dir / "summary.json").read_text())
        digest = equity_hash_of_files(run_dir / "fills.parquet", run_dir / "equity.parquet")
        assert digest == summary["equity_hash"]
        if expected is not None:
            assert digest == expected


def test_the_manifest_checksum_can_be_checked_by_hand(recorded: Path) -> None:
    """As docs/equity-hash.md says: zero the 64 digits, SHA-256 the bytes."""
    import hashlib

    raw = (recorded / MANIFEST).read_bytes()
    recorded_sum = _manifest(recorded)["manifest_sha256"]
    zeroed = raw.replace(recorded_sum.encode(), b"0" * 64)
    assert hashlib.sha256(zeroed).hexdigest() == recorded_sum


# -- generated faults ---------------------------------------------------------------------------


def test_generated_tampering_is_always_refused_naming_the_file(
        recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "victim"
    shutil.copytree(recorded, run_dir)
    saved = snapshot_files(run_dir)
    rng = random.Random(20260701)
    tried: Counter[str] = Counter()
    detected: Counter[str] = Counter()
    missed: list[str] = []
    for tamper in generated_tampers(run_dir, rng, FLIPS):
        tamper.apply(run_dir)
        if snapshot_files_equal(run_dir, saved):
            restore_files(run_dir, saved)
            continue  # e.g. a truncation to the full length: nothing changed
        tried[tamper.file] += 1
        try:
            verify_record(run_dir)
        except UnusableInput as exc:
            if tamper.file in exc.message:
                detected[tamper.file] += 1
            else:
                missed.append(f"{tamper.kind} of {tamper.file} refused without naming it: "
                              f"{exc.message}")
        else:
            missed.append(f"{tamper.kind} of {tamper.file} verified as intact")
        restore_files(run_dir, saved)
    verify_record(run_dir)  # restored: intact again
    with capsys.disabled():
        per_file = ", ".join(f"{name} {detected[name]}/{tried[name]}" for name in ALL_FILES)
        print(f"\nreplay record tampering: {sum(tried.values())} tried, "
              f"{sum(detected.values())} refused naming the file ({per_file})")
    assert missed == []
    assert set(tried) == set(ALL_FILES)
    assert sum(detected.values()) == sum(tried.values())


def snapshot_files_equal(run_dir: Path, saved: dict[str, bytes]) -> bool:
    for name, data in saved.items():
        path = run_dir / name
        if not path.is_file() or path.read_bytes() != data:
            return False
    return True


# -- the issue's tampers, end to end --------------------------------------------------------------


def _edit_one_price(run_dir: Path) -> None:
    def edit(table: pa.Table) -> pa.Table:
        prices = table.column("price").to_pylist()
        prices[3] = prices[3] + 1
        return table.set_column(table.schema.get_field_index("price"), "price",
                                pa.array(prices, type=table.schema.field("price").type))
    rewrite_parquet(run_dir / "fills.parquet", edit)


def _drop_a_fill(run_dir: Path) -> None:
    rewrite_parquet(run_dir / "fills.parquet", lambda t: pa.concat_tables([t.slice(0, 2),
                                                                           t.slice(3)]))


def _seed_and_hash(run_dir: Path) -> None:
    manifest = _manifest(run_dir)
    manifest["seed"] = manifest["seed"] + 1
    manifest["equity_hash"] = "0123456789abcdef" * 4
    _write_manifest(run_dir, manifest)


def _garbage_fills(run_dir: Path) -> None:
    (run_dir / "fills.parquet").write_bytes(os.urandom(4096))


ISSUE_TAMPERS = {
    "one fill's price edited, valid Parquet": (_edit_one_price, "fills.parquet"),
    "a fill dropped": (_drop_a_fill, "fills.parquet"),
    "seed and equity_hash changed together": (_seed_and_hash, "equity_hash"),
    "fills.parquet replaced with garbage": (_garbage_fills, "fills.parquet"),
    "fills.parquet deleted": (lambda d: (d / "fills.parquet").unlink(), "fills.parquet is missing"),
    "manifest.json deleted": (lambda d: (d / MANIFEST).unlink(), "no manifest.json"),
}


@pytest.mark.parametrize("name", list(ISSUE_TAMPERS))
def test_the_issues_tampers_are_refused_in_process(copy: Path, name: str) -> None:
    tamper, phrase = ISSUE_TAMPERS[name]
    tamper(copy)
    with pytest.raises(TamperedRecord) as caught:
        replay(copy, force=True)
    assert phrase in caught.value.message


@pytest.mark.parametrize("name", list(ISSUE_TAMPERS))
def test_the_issues_tampers_are_refused_even_with_force(copy: Path, name: str) -> None:
    tamper, phrase = ISSUE_TAMPERS[name]
    tamper(copy)
    proc = run_cli("replay", copy, "--force")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "MATCH" not in proc.stdout
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert phrase in proc.stderr
    assert "--force does not bypass" in proc.stderr or "no manifest.json" in proc.stderr


def test_seed_and_hash_changed_together_names_both_mismatches(copy: Path) -> None:
    _seed_and_hash(copy)
    with pytest.raises(TamperedRecord) as caught:
        verify_record(copy)
    text = " ".join(caught.value.problems)
    assert "manifest_sha256" in text
    assert "fills.parquet and equity.parquet hash to the equity hash" in text
    assert "summary.json records seed 3, manifest.json records seed 4" in text


@pytest.mark.parametrize("kind", ["second seed in config", "duplicate key", "checksum removed",
                                  "files entry removed", "unknown schema version"])
def test_an_inconsistent_manifest_is_refused(copy: Path, kind: str) -> None:
    manifest = _manifest(copy)
    if kind == "second seed in config":
        manifest["config"]["seed"] = 3
        _write_manifest(copy, manifest)
        reseal(copy, update_hash=False)  # a resealed manifest must still hold one seed
        phrase = "second seed"
    elif kind == "duplicate key":
        text = (copy / MANIFEST).read_text().replace('"seed": 3,', '"seed": 3,\n  "seed": 4,')
        (copy / MANIFEST).write_text(text)
        phrase = "'seed' appears twice"
    elif kind == "checksum removed":
        del manifest["manifest_sha256"]
        _write_manifest(copy, manifest)
        phrase = "no valid manifest_sha256"
    elif kind == "files entry removed":
        del manifest["files"]["events.jsonl"]
        _write_manifest(copy, manifest)
        reseal_manifest_only(copy)
        phrase = "files.events.jsonl is missing"
    else:
        manifest["schema_version"] = 9
        _write_manifest(copy, manifest)
        phrase = "schema_version is 9"
    with pytest.raises(TamperedRecord) as caught:
        verify_record(copy)
    assert phrase in caught.value.message


def reseal_manifest_only(run_dir: Path) -> None:
    """Recompute only the checksum, keeping the (edited) files table."""
    from weltklassebot.runs.record import seal_manifest

    manifest = _manifest(run_dir)
    manifest.pop("manifest_sha256")
    sealed, _ = seal_manifest(manifest)
    (run_dir / MANIFEST).write_bytes(sealed)


def test_an_old_manifest_is_refused_with_the_way_forward(copy: Path) -> None:
    manifest = _manifest(copy)
    for key in ("manifest_sha256", "files"):
        del manifest[key]
    manifest["schema_version"] = 1
    manifest["config"]["seed"] = manifest["seed"]
    _write_manifest(copy, manifest)
    proc = run_cli("replay", copy, "--force")
    assert proc.returncode == 2
    assert "schema version 1" in proc.stderr
    assert "Run the backtest again" in proc.stderr
    assert proc.stdout == ""


def test_a_missing_run_directory_is_refused(tmp_path: Path) -> None:
    proc = run_cli("replay", tmp_path / "nope")
    assert proc.returncode == 2
    assert f"run directory {tmp_path / 'nope'} does not exist" in proc.stderr


def test_a_symlinked_run_file_with_the_recorded_bytes_is_accepted(copy: Path,
                                                                  tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.parquet"
    shutil.move(copy / "orders.parquet", elsewhere)
    (copy / "orders.parquet").symlink_to(elsewhere)
    verify_record(copy)


# -- a consistent forgery is caught by the re-run --------------------------------------------------


def test_a_resealed_price_edit_is_diverged_at_that_fill(copy: Path) -> None:
    _edit_one_price(copy)
    reseal(copy)
    verify_record(copy)  # every checksum agrees: only the re-run can tell
    proc = run_cli("replay", copy, "--json")
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    assert result["verdict"] == "DIVERGED"
    assert result["first_difference"]["kind"] == "fill"
    assert result["first_difference"]["index"] == 3
    assert result["recorded_equity_hash"] != result["replayed_equity_hash"]


def test_a_resealed_dropped_fill_is_diverged(copy: Path) -> None:
    _drop_a_fill(copy)
    reseal(copy)
    result = replay(copy)
    assert result.verdict == "DIVERGED"
    assert result.difference is not None
    assert result.difference["kind"] == "fill"
    assert result.difference["index"] == 2


def test_a_resealed_order_edit_is_diverged_although_the_equity_hash_matches(copy: Path) -> None:
    def edit(table: pa.Table) -> pa.Table:
        tags = pc.if_else(pc.equal(table.column("order_id"), 5), "forged", table.column("tag"))
        return table.set_column(table.schema.get_field_index("tag"), "tag", tags)
    rewrite_parquet(copy / "orders.parquet", edit)
    reseal(copy, update_hash=False)
    result = replay(copy)
    assert result.recorded_hash == result.replayed_hash
    assert result.verdict == "DIVERGED"
    assert result.difference is not None
    assert result.difference["kind"] == "order"
    assert result.difference["recorded"]["tag"] == "forged"


def test_a_resealed_event_edit_is_diverged(copy: Path) -> None:
    lines = (copy / "events.jsonl").read_text().splitlines(keepends=True)
    del lines[1]
    (copy / "events.jsonl").write_text("".join(lines))
    reseal(copy, update_hash=False)
    result = replay(copy)
    assert result.verdict == "DIVERGED"
    assert result.difference is not None
    assert result.difference["kind"] == "event"
    assert result.difference["index"] == 1


def test_changed_data_with_force_is_diverged_with_the_first_difference(tmp_path: Path) -> None:
    """A genuine divergence: the snapshot changed after the run and --force goes on."""
    from support.cli import REPO

    sample = tmp_path / "data.parquet"
    shutil.copyfile(REPO / "src/weltklassebot/sample/coinbase_btcusd_1h_2017-07_2019-10.parquet",
                    sample)
    run_dir = _record(tmp_path, "run", seed=1, data={"snapshot": str(sample)})
    import pyarrow.parquet as pq

    table = pq.read_table(sample)
    schema = table.schema
    table = table.slice(200)  # drop the first 200 bars: the crossings move
    pq.write_table(table.cast(schema), sample)
    refused = run_cli("replay", run_dir)
    assert refused.returncode == 2
    assert "SHA-256" in refused.stderr
    proc = run_cli("replay", run_dir, "--force")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("DIVERGED\n")
    assert "first difference: fill #0" in proc.stdout
    assert "data changed" in proc.stderr


def test_an_intact_record_matches_end_to_end(recorded: Path) -> None:
    proc = run_cli("replay", recorded)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("MATCH\n")
    assert "record verified       manifest.json checksum" in proc.stdout
