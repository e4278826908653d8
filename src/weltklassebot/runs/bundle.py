"""Incident bundles: everything needed to replay a live run (or a finished run) elsewhere.

``build_bundle`` gathers a run directory or a service's state directory into one archive
(``service/bundle_archive.py``: the format, checksums and safe extraction): the exact invocation,
resolved config, seed, strategy name, version, code hash and source file, the snapshot's path
and SHA-256 (the snapshot itself with ``with_snapshot``), package and dependency versions, the
engine-state version, the state store's segments, the run's records so far (its spool, or its run
directory once it ended), the service's recent logs and a ``/metrics`` scrape when reachable.

``replay_bundle`` re-runs what a bundle recorded: a finished run through ``replay`` (MATCH or
DIVERGED against its run directory); a run recorded part-way on the service's own path with its
operator commands at their recorded cursors, up to the bundle's last equity point, comparing
every fill, closed order and equity point with the bundle's spool.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from weltklassebot import __version__
from weltklassebot.config.load import validate_config
from weltklassebot.config.model import BacktestConfig
from weltklassebot.config.service import LiveSettings
from weltklassebot.core.timeutil import ns_to_basic, ns_to_iso
from weltklassebot.engine.state import ENGINE_STATE_VERSION
from weltklassebot.errors import UnusableInput, UsageError, VerdictFailed
from weltklassebot.fsutil import sha256_file
from weltklassebot.runs.environment import dependency_versions, git_commit
from weltklassebot.runs.live import APPLIED_BY, SERVICE_FILE, SPOOL_DIR, LiveService
from weltklassebot.runs.live_record import LiveRequest, read_resume
from weltklassebot.runs.replay import ReplayResult, replay
from weltklassebot.runs.spool import SPOOL_FILES
from weltklassebot.service.bundle_archive import extract_bundle, write_bundle
from weltklassebot.state.recovery import recover
from weltklassebot.strategy.loader import resolve_strategy

BUNDLES_DIR = "bundles"
"""Bundles go beside the state directory: ``<state dir>/../bundles/`` (auto-bundles in its
``auto/`` folder, the newest ``keep`` kept)."""
AUTO_DIR = "auto"
LOG_LINES = 5000
UNIT = "weltklassebot"


def default_bundles_dir(state_dir: Path) -> Path:
    return state_dir.absolute().parent / BUNDLES_DIR


def _is_state_dir(path: Path) -> bool:
    try:
        return any(p.name.startswith("segment-") for p in path.iterdir())
    except OSError:
        return False


# --- building -----------------------------------------------------------------------------------


def build_bundle(source: Path, out: Path | None, *, with_snapshot: bool = False,
                 invocation: list[str] | None = None, reason: str = "operator",
                 now_ns: int | None = None) -> tuple[Path, dict[str, Any]]:
    """Write the bundle of ``source`` (a run directory or a state directory); return its path
    and manifest."""
    created_ns = time.time_ns() if now_ns is None else now_ns
    if (source / "manifest.json").is_file():
        manifest, members = _from_run_dir(source)
        default_parent = source.absolute().parent / BUNDLES_DIR
    elif _is_state_dir(source):
        manifest, members = _from_state_dir(source)
        default_parent = default_bundles_dir(source)
    else:
        raise UsageError(
            f"{source} is neither a run directory (no manifest.json) nor a state directory (no "
            "state store segments). Pass the run directory of a backtest or live run, or the "
            "service's state directory (WELTKLASSE_STATE_DIR).")
    manifest.update({
        "created": ns_to_iso(created_ns), "reason": reason,
        "bundle_invocation": invocation or [],
        "package_version": __version__, "git_commit": git_commit(),
        "versions": dependency_versions(), "engine_state_version": ENGINE_STATE_VERSION,
    })
    snapshot = Path(str(manifest["snapshot"].get("resolved_path") or ""))
    if with_snapshot:
        if not snapshot.is_file():
            raise UnusableInput(f"--with-snapshot: the recorded snapshot {snapshot} does not "
                                "exist any more; bundle without it or restore it first.")
        member = f"snapshot/{snapshot.name}"
        members.append((member, snapshot))
        manifest["snapshot"]["member"] = member
    run_id = str(manifest.get("run_id") or "run")
    path = out or default_parent / f"{ns_to_basic(created_ns)}-{_safe(run_id)}.tar.gz"
    if path.exists():
        raise UsageError(f"{path} exists already; choose another --out.")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bundle(path, manifest, members)
    return path, manifest


def write_auto_bundle(state_dir: Path, directory: Path, reason: str, run_id: str,
                      keep: int) -> Path:
    """The service's own bundle (never with the snapshot) into ``directory``, the newest
    ``keep`` kept; raises what writing raises (the caller counts it)."""
    folder = directory / AUTO_DIR
    name = f"{ns_to_basic(time.time_ns())}-{_safe(run_id)}-{reason}.tar.gz"
    path, _manifest = build_bundle(state_dir, folder / name, reason=reason)
    bundles = sorted(folder.glob("*.tar.gz"))
    for old in bundles[: max(0, len(bundles) - keep)]:
        with contextlib.suppress(OSError):
            old.unlink()
    return path


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80] or "run"


def _strategy_member(config: dict[str, Any], members: list[tuple[str, Path | bytes]]) -> dict[
        str, Any]:
    strategy = config.get("strategy") or {}
    info: dict[str, Any] = {"name": strategy.get("name"), "params": strategy.get("params")}
    try:
        spec = resolve_strategy(str(strategy.get("name") or "sma_cross"),
                                dict(strategy.get("params") or {}))
    except Exception as exc:  # the bundle is for forensics: say why, never fail on it
        info["error"] = f"cannot load the strategy here: {exc}"
        return info
    info.update({"name": spec.name, "version": spec.version, "code_hash": spec.code_hash,
                 "source_file": spec.source_file})
    if spec.source_file and Path(spec.source_file).is_file():
        member = f"strategy/{Path(spec.source_file).name}"
        members.append((member, Path(spec.source_file)))
        info["source_member"] = member
    return info


def _from_run_dir(run_dir: Path) -> tuple[dict[str, Any], list[tuple[str, Path | bytes]]]:
    recorded = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    members: list[tuple[str, Path | bytes]] = [
        (f"run/{p.name}", p) for p in sorted(run_dir.iterdir()) if p.is_file()]
    config = dict(recorded.get("config") or {})
    live = recorded.get("live") or {}
    strategy = _strategy_member(config, members)
    strategy["recorded"] = recorded.get("strategy")
    manifest = {
        "source": "run", "source_path": str(run_dir.absolute()),
        "run_id": live.get("run_id") or run_dir.name, "run_kind": recorded.get("kind"),
        "invocation": recorded.get("argv"), "config": config,
        "config_file": recorded.get("config_file"), "seed": recorded.get("seed"),
        "strategy": strategy, "snapshot": dict(recorded.get("snapshot") or {}),
        "equity_hash": recorded.get("equity_hash"),
        "operator_commands": live.get("operator_commands") or [],
    }
    return manifest, members


def _from_state_dir(state_dir: Path) -> tuple[dict[str, Any], list[tuple[str, Path | bytes]]]:
    survey = recover(state_dir, kinds=None)
    found = read_resume(survey.records, survey.checkpoint)
    identity = found.identity or {}
    members: list[tuple[str, Path | bytes]] = []
    for path in sorted(state_dir.iterdir()):
        name = path.name
        if path.is_file() and (name.startswith("segment-") or name == "store.mark"):
            members.append((f"state/{name}", _stable_copy(path)))
    if (state_dir / SERVICE_FILE).is_file():
        members.append((f"state/{SERVICE_FILE}", (state_dir / SERVICE_FILE).read_bytes()))
    commands = list(found.commands) + [
        r.payload for r in found.after
        if r.kind == "operator_command" and r.payload.get("applied_by") == APPLIED_BY]
    run_id = str(identity.get("run_id") or "")
    points = None
    spool = state_dir / SPOOL_DIR / run_id
    if run_id and spool.is_dir() and found.status == "active":
        for name in SPOOL_FILES:
            data = _stable_copy(spool / name) if (spool / name).is_file() else b""
            members.append((f"spool/{name}", data))
            if name == "equity.txt":
                points = data.count(b"\n")
    closed = found.closed or {}
    run_dir = Path(str(closed.get("run_dir") or ""))
    ended = found.status == "closed" and closed.get("complete")
    if ended and (run_dir / "manifest.json").is_file():
        members += [(f"run/{p.name}", p) for p in sorted(run_dir.iterdir()) if p.is_file()]
    config = dict(identity.get("config") or {})
    config.pop("seed", None)
    logs = _journal()
    if logs is not None:
        members.append(("logs/journal.jsonl", logs))
    metrics = _scrape(state_dir)
    if metrics is not None:
        members.append(("metrics.txt", metrics))
    manifest = {
        "source": "state", "source_path": str(state_dir.absolute()), "run_id": run_id,
        "run_status": found.status, "invocation": identity.get("argv"), "config": config,
        "config_file": identity.get("config_file"), "seed": identity.get("seed"),
        "strategy": {**_strategy_member(config, members),
                     "recorded_code_hash": identity.get("code_hash"),
                     "recorded_version": identity.get("strategy_version")},
        "snapshot": {"path": identity.get("snapshot_path"),
                     "resolved_path": identity.get("snapshot_resolved"),
                     "sha256": identity.get("snapshot_sha256"), "rows": identity.get("rows")},
        "operator_commands": commands, "points": points,
        "cursor": (found.engine or {}).get("cursor"),
        "logs": "journal" if logs is not None else "not reachable (no journalctl or no unit)",
        "metrics": "scraped" if metrics is not None else "service not reachable",
        "closed": found.closed,
    }
    return manifest, members


def _stable_copy(path: Path) -> bytes:
    """A file that may be appended to while we read it: its bytes up to the last full line."""
    data = path.read_bytes()
    cut = data.rfind(b"\n")
    return data[: cut + 1] if cut >= 0 else b""


def _journal() -> bytes | None:
    journalctl = shutil.which("journalctl")
    if journalctl is None:
        return None
    try:
        done = subprocess.run([journalctl, "-u", UNIT, "-o", "cat", "-n", str(LOG_LINES),
                               "--no-pager"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0 or not done.stdout.strip() or done.stdout.startswith(b"-- No"):
        return None
    return done.stdout


def _scrape(state_dir: Path) -> bytes | None:
    try:
        info = json.loads((state_dir / SERVICE_FILE).read_text(encoding="utf-8"))
        host = str(info.get("bind") or "127.0.0.1")
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        url = f"http://{host}:{int(info['port'])}/metrics"
        with urllib.request.urlopen(url, timeout=2) as response:
            return bytes(response.read())
    except (OSError, ValueError, KeyError, TypeError):
        return None


# --- replaying ------------------------------------------------------------------------------


def replay_bundle(bundle: Path, *, snapshot: Path | None = None,
                  force: bool = False) -> ReplayResult:
    """Re-run what ``bundle`` recorded; MATCH or DIVERGED with the first differing point."""
    try:
        extracted_bundle = extract_bundle(bundle)  # verifies every checksum before writing
    except VerdictFailed as exc:
        raise UnusableInput(f"replay refused: {exc.message}") from None
    with extracted_bundle as extracted:
        root = extracted.root
        manifest = extracted.manifest
        chosen = _find_snapshot(manifest, root, snapshot, force)
        if (root / "run" / "manifest.json").is_file():
            return replay(root / "run", force=force, snapshot=chosen)
        return _replay_spool(manifest, root, chosen, force)


def _find_snapshot(manifest: dict[str, Any], root: Path, flag: Path | None,
                   force: bool) -> Path:
    recorded = manifest.get("snapshot") or {}
    want = recorded.get("sha256")
    candidates: list[tuple[str, Path]] = []
    if flag is not None:
        candidates.append(("--data-snapshot", flag))
    if recorded.get("member"):
        candidates.append(("the bundle", root / str(recorded["member"])))
    if recorded.get("resolved_path"):
        candidates.append(("the recorded path", Path(str(recorded["resolved_path"]))))
    for origin, path in candidates:
        if not path.is_file():
            if origin == "--data-snapshot":
                raise UnusableInput(f"--data-snapshot {path} does not exist.")
            continue
        actual = sha256_file(path)
        if actual == want:
            return path
        if origin == "--data-snapshot" or origin == "the bundle":
            message = (f"snapshot {path} (from {origin}) has SHA-256 {actual}, but the bundle "
                       f"recorded {want}: the data differs, so a replay cannot reproduce the run")
            if not force:
                raise UnusableInput(message + ". Give the recorded snapshot, or pass --force.")
            return path
    raise UnusableInput(
        f"the recorded snapshot (SHA-256 {want}) is not in the bundle and not at "
        f"{recorded.get('resolved_path')}: pass it with --data-snapshot PATH (it is checked "
        "against the recorded SHA-256), or bundle again with --with-snapshot.")


def _replay_spool(manifest: dict[str, Any], root: Path, snapshot: Path,
                  force: bool) -> ReplayResult:
    if not (root / "spool" / "equity.txt").is_file():
        raise UnusableInput("the bundle holds no run records (no spool and no run directory): "
                            "the state directory had no active run when it was bundled.")
    raw = dict(manifest.get("config") or {}, seed=manifest.get("seed"))
    raw["data"] = dict(raw.get("data") or {}, snapshot=str(snapshot))
    config = validate_config(BacktestConfig, raw, "the bundle's manifest")
    warnings: list[str] = []
    recorded_hash = (manifest.get("strategy") or {}).get("recorded_code_hash")
    spec = resolve_strategy(config.strategy.name, dict(config.strategy.params))
    if recorded_hash and spec.code_hash != recorded_hash:
        message = (f"strategy {spec.name} code hash is {spec.code_hash}, but the bundle "
                   f"recorded {recorded_hash}: the strategy code changed")
        if not force:
            raise UnusableInput(message + ". Check out the recorded code, or pass --force.")
        warnings.append(message)
    recorded = _spool_lines(root / "spool")
    points = len(recorded["equity.txt"])
    with tempfile.TemporaryDirectory(prefix="weltklassebot-replay-") as tmp:
        request = LiveRequest(
            config=config, settings=LiveSettings(), config_file=manifest.get("config_file"),
            argv=list(manifest.get("invocation") or []), state_dir=Path(tmp) / "state",
            runs_dir=Path(tmp) / "runs", out=Path(tmp) / "run", speed=None, exit_at_end=True,
            bind="127.0.0.1", port=0, serve_metrics=False,
            replay_commands=tuple(manifest.get("operator_commands") or ()),
            stop_after_points=points)
        service = LiveService(request)
        service.run()
        spool_root = Path(tmp) / "state" / SPOOL_DIR
        spools = [p for p in spool_root.iterdir() if p.is_dir()] if spool_root.is_dir() else []
        if service.result_dir is None and spools:
            replayed = _spool_lines(spools[0])
            difference = _first_difference(recorded, replayed)
        else:
            replayed = {name: [] for name in SPOOL_FILES}
            difference = {"kind": "equity point", "index": service.points,
                          "detail": f"the re-run reached the end of the snapshot after "
                                    f"{service.points} equity points; the bundle records "
                                    f"{points}"}
    verdict = "MATCH" if difference is None else "DIVERGED"
    return ReplayResult(verdict, f"{points} equity points",
                        f"{len(replayed['equity.txt'])} equity points", difference, warnings,
                        [f"bundle spool: {points} equity points, {len(recorded['fills.jsonl'])} "
                         f"fills, {len(recorded['orders.jsonl'])} closed orders"])


def _spool_lines(directory: Path) -> dict[str, list[str]]:
    lines = {name: (directory / name).read_text(encoding="utf-8").splitlines()
             if (directory / name).is_file() else [] for name in SPOOL_FILES}
    # A spool copied while the service ran may hold the next event's fills and orders but not
    # its equity point: keep what belongs to the recorded equity points.
    if lines["equity.txt"]:
        last = int(lines["equity.txt"][-1].split()[0])
        lines["fills.jsonl"] = [x for x in lines["fills.jsonl"] if json.loads(x)[2] <= last]
        lines["orders.jsonl"] = [x for x in lines["orders.jsonl"]
                                 if (json.loads(x)[14] or 0) <= last]
        lines["events.jsonl"] = [x for x in lines["events.jsonl"]
                                 if int(json.loads(x).get("ts_ns", 0)) <= last]
    return lines


def _first_difference(recorded: dict[str, list[str]],
                      replayed: dict[str, list[str]]) -> dict[str, Any] | None:
    for name, kind in (("fills.jsonl", "fill"), ("orders.jsonl", "order state"),
                       ("equity.txt", "equity point"),
                       ("events.jsonl", "event (risk transition, denial or strategy log)")):
        mine, theirs = recorded[name], replayed[name]
        for index, (a, b) in enumerate(zip(mine, theirs, strict=False)):
            if a != b:
                return {"kind": kind, "index": index, "recorded": _parse(a),
                        "replayed": _parse(b)}
        if len(mine) != len(theirs):
            index = min(len(mine), len(theirs))
            return {"kind": kind, "index": index,
                    "recorded": _parse(mine[index]) if index < len(mine) else None,
                    "replayed": _parse(theirs[index]) if index < len(theirs) else None,
                    "detail": f"the bundle holds {len(mine)}, the re-run {len(theirs)}"}
    return None


def _parse(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return line.split()


def iter_auto_bundles(state_dir: Path) -> Iterator[Path]:
    yield from sorted((default_bundles_dir(state_dir) / AUTO_DIR).glob("*.tar.gz"))


__all__ = ["build_bundle", "default_bundles_dir", "iter_auto_bundles", "replay_bundle",
           "write_auto_bundle"]
