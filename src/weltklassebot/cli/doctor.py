"""``python -m cli doctor``: the preflight before ``systemctl start weltklassebot``.

It checks what the service will meet when systemd starts it, with the settings it will run with:
when the unit is installed, its ``Environment=`` and ``EnvironmentFile=`` values (not the
operator's shell), the interpreter it names and the user it runs as. One line per check,
``OK`` / ``WARN`` / ``FAIL`` with the detail and the fix; exit 1 when any check fails.
"""

from __future__ import annotations

import errno
import json
import os
import pwd
import shutil
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click

from weltklassebot.cli.options import config_option, json_option

OK, WARN, FAIL = "OK", "WARN", "FAIL"
PACKAGES = ("numpy", "pyarrow", "pydantic", "click", "rich", "structlog",
            "prometheus_client:prometheus-client", "weltklassebot", "cli:weltklassebot")
"""``module[:distribution]``: imported by the service's interpreter; versions from metadata."""
MIN_FREE_BYTES = 100 * 2**20
LOW_FREE_BYTES = 2**30
_PROBE = (
    "import importlib, importlib.metadata as md, json, sys\n"
    "out = {'version': '.'.join(map(str, sys.version_info[:3])), 'packages': {}}\n"
    "for spec in sys.argv[1:]:\n"
    "    name, _, dist = spec.partition(':')\n"
    "    try:\n"
    "        importlib.import_module(name)\n"
    "        out['packages'][name] = md.version(dist or name)\n"
    "    except Exception as exc:\n"
    "        out['packages'][name] = 'ERROR ' + type(exc).__name__ + ': ' + str(exc)\n"
    "print(json.dumps(out))\n"
)

# Loads the configured strategy as the service will (its file, its imports, its parameters).
_STRATEGY_PROBE = (
    "import json, sys\n"
    "from weltklassebot.errors import WeltklasseError\n"
    "from weltklassebot.strategy.loader import resolve_strategy\n"
    "try:\n"
    "    spec = resolve_strategy(sys.argv[1], json.loads(sys.argv[2]))\n"
    "    print(json.dumps({'name': spec.cls.name}))\n"
    "except WeltklasseError as exc:\n"
    "    print(json.dumps({'error': exc.message}))\n"
    "except BaseException as exc:\n"
    "    print(json.dumps({'error': type(exc).__name__ + ': ' + str(exc)}))\n"
)


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class ServiceUser:
    name: str
    uid: int
    gid: int
    gids: frozenset[int]


def _service_user(name: str | None) -> ServiceUser | None:
    if not name:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return ServiceUser(name, entry.pw_uid, entry.pw_gid,
                       frozenset(os.getgrouplist(name, entry.pw_gid)))


def _may(path: Path, user: ServiceUser | None, write: bool) -> bool:
    """Whether ``user`` (else this process) may read (or write) ``path`` by its mode bits,
    including search permission on every folder above it."""
    if user is None:
        return os.access(path, os.W_OK if write else os.R_OK) and all(
            os.access(p, os.X_OK) for p in path.parents)
    if user.uid == 0:
        return True

    def allowed(target: Path, bits: int) -> bool:
        st = target.stat()
        shift = 6 if st.st_uid == user.uid else 3 if st.st_gid in user.gids else 0
        return (st.st_mode >> shift) & bits == bits

    try:
        wanted = (0o2 if write else 0o4) | (0o1 if path.is_dir() else 0)
        return allowed(path, wanted) and all(allowed(p, 0o1) for p in path.parents)
    except OSError:
        return False


def _owner(path: Path) -> str:
    st = path.stat()
    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = str(st.st_uid)
    import grp

    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return f"{user}:{group} {st.st_mode & 0o7777:04o}"


def _config(path: Path | None) -> tuple[dict[str, Any], Check]:
    from weltklassebot.config.load import read_toml, validate_config
    from weltklassebot.config.model import BacktestConfig
    from weltklassebot.config.service import OTHER_COMMANDS_SECTIONS, LiveSettings, live_sections
    from weltklassebot.errors import WeltklasseError

    if path is None:
        return {}, Check("config", OK, "none: the service runs on the defaults")
    try:
        raw = read_toml(path)
        validate_config(LiveSettings, live_sections(raw), f"config file {path}")
        validate_config(BacktestConfig, {k: v for k, v in raw.items()
                                         if k not in OTHER_COMMANDS_SECTIONS},
                        f"config file {path}")
    except WeltklasseError as exc:
        return {}, Check("config", FAIL, exc.message, "edit the file (docs/configuration.md)")
    return raw, Check("config", OK, f"{path}: valid")


def _interpreter(python: Path | None, user: ServiceUser | None) -> list[Check]:
    """Run the service's interpreter (as its user, when root can) and import every package."""
    import sys

    target = python or Path(sys.executable)
    if not target.exists():
        return [Check("python", FAIL, f"{target} does not exist",
                      "sudo python -m cli service install (it builds the venv)")]
    probe, as_user, failure = _run_probe(target, _PROBE, PACKAGES, user, Path("/"), 60)
    if probe is None:
        return [Check("python", FAIL, f"{target} did not run{as_user}: {failure}",
                      "sudo python -m cli service install (re-builds the venv)")]
    checks = []
    major_minor = tuple(int(p) for p in probe["version"].split(".")[:2])
    checks.append(Check("python", OK if major_minor >= (3, 11) else FAIL,
                        f"{target}{as_user}: Python {probe['version']}",
                        "" if major_minor >= (3, 11) else "install Python 3.11+"))
    packages: dict[str, str] = probe["packages"]
    broken = {k: v for k, v in packages.items() if v.startswith("ERROR")}
    if broken:
        checks.append(Check("packages", FAIL, "; ".join(f"{k}: {v[6:]}" for k, v in
                                                         broken.items()),
                            "sudo python -m cli service install (re-installs the lock)"))
    else:
        checks.append(Check("packages", OK, ", ".join(f"{k} {v}" for k, v in packages.items())))
    return checks


def _run_probe(interpreter: Path, script: str, args: Sequence[str], user: ServiceUser | None,
               cwd: Path, timeout: float) -> tuple[dict[str, Any] | None, str, str]:
    """Run ``script`` in the service's interpreter, as its user when root can switch to it,
    with a bare environment; its last stdout line is JSON. Returns that (None when it did not
    run or said nothing readable), the words naming the user (" as NAME" or "") and why not."""
    argv = [str(interpreter), "-c", script, *args]
    as_user = ""
    if user is not None and os.geteuid() == 0 and user.uid != 0 and shutil.which("setpriv"):
        argv = ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups",
                *argv]
        as_user = f" as {user.name}"
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              check=False, cwd=cwd,
                              env={"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, as_user, str(exc)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1]), as_user, ""
    except (ValueError, IndexError):
        said = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        return None, as_user, said[0]


def _strategy(raw: dict[str, Any], python: Path | None, user: ServiceUser | None,
              workdir: Path, sandboxed: bool) -> Check:
    """The configured strategy loads in the service's interpreter, as its user, from its
    working directory: its file is where the sandbox lets the service read it, and every
    package it imports is in the service's venv."""
    import sys

    from weltklassebot.config.model import StrategyConfig
    from weltklassebot.service.install import sandbox_hides

    section = raw.get("strategy", {})
    config = StrategyConfig.model_validate(section if isinstance(section, dict) else {})
    target, _, _ = config.name.partition(":")
    fix = ("install what it imports into the service's venv (docs/service.md), or fix "
           "[strategy] in the config")
    if sandboxed and (target.endswith(".py") or "/" in target):
        path = workdir / target  # an absolute path stays itself
        hidden = sandbox_hides(path)
        if hidden is not None:
            return Check("strategy", FAIL, f"strategy file {path} lies under {hidden[0]}, which "
                         f"the unit's {hidden[1]} for the service", "copy the file under the "
                         "install's prefix or config directory and name that path in "
                         "[strategy] name")
    interpreter = python or Path(sys.executable)
    probe, as_user, failure = _run_probe(
        interpreter, _STRATEGY_PROBE, [config.name, json.dumps(dict(config.params), default=str)],
        user, workdir, 120)
    if probe is None:
        return Check("strategy", FAIL, f"{config.name}: the check did not run in "
                     f"{interpreter}{as_user}: {failure}", fix)
    if "error" in probe:
        return Check("strategy", FAIL, f"{config.name} does not load in {interpreter}{as_user}: "
                     f"{probe['error']}", fix)
    return Check("strategy", OK, f"{config.name} ({probe['name']}) loads in "
                 f"{interpreter}{as_user} with its parameters")


def _unit(unit: Any, env: dict[str, str]) -> list[Check]:
    from weltklassebot.service.install import UNIT_NAME

    if unit is None:
        return [Check("unit", FAIL, f"{UNIT_NAME} is not installed",
                      "sudo python -m cli service install")]
    missing = []
    if unit.python is None or not os.access(unit.python, os.X_OK):
        missing.append(f"ExecStart {unit.python}")
    for key in ("WorkingDirectory", "ReadWritePaths"):
        for value in unit.settings.get(key, []):
            missing += [f"{key} {p}" for p in value.split()
                        if not p.startswith("-") and not Path(p).exists()]
    config = env.get("WELTKLASSE_CONFIG")
    if config and not Path(config).is_file():
        missing.append(f"WELTKLASSE_CONFIG {config}")
    for name in unit.environment_files:
        if not name.startswith("-") and not Path(name).is_file():
            missing.append(f"EnvironmentFile {name}")
    checks = [Check("unit", FAIL if missing else OK,
                    f"{unit.path}" + (": missing " + ", ".join(missing) if missing else
                                      ": every path it names exists"),
                    "sudo python -m cli service install (re-renders the unit)" if missing
                    else "")]
    user = unit.user
    if user and _service_user(user) is None:
        checks.append(Check("user", FAIL, f"User={user} does not exist",
                            "sudo python -m cli service install (creates it)"))
    elif user:
        checks.append(Check("user", OK, f"the service runs as {user}"))
    if shutil.which("systemctl") and Path("/run/systemd/system").is_dir():
        done = subprocess.run(["systemctl", "show", UNIT_NAME, "-p", "NeedDaemonReload",
                               "--value"], capture_output=True, text=True, check=False)
        if done.stdout.strip() == "yes":
            checks.append(Check("systemd", WARN, "the unit file changed since systemd read it",
                                "systemctl daemon-reload"))
    return checks


def _state_dir(path: Path, user: ServiceUser | None) -> list[Check]:
    fix_install = "sudo python -m cli service install (creates it for the service user)"
    who = f"the service user {user.name}" if user else "this user"
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if path.is_dir():
        writable = _may(path, user, write=True)
        check = Check("state dir", OK if writable else FAIL,
                      f"{path} ({_owner(path)}), {'writable' if writable else 'NOT writable'} "
                      f"by {who}", "" if writable else fix_install)
    elif path.exists():
        check = Check("state dir", FAIL, f"{path} is not a directory", "move it away")
    elif _may(existing, user, write=True):
        check = Check("state dir", WARN, f"{path} does not exist; the service creates it in "
                                         f"{existing}", fix_install)
    else:
        check = Check("state dir", FAIL, f"{path} does not exist and {who} cannot create it "
                                         f"in {existing}", fix_install)
    checks = [check]
    try:
        free = shutil.disk_usage(existing).free
    except OSError as exc:
        return [*checks, Check("disk", FAIL, f"{existing}: {exc.strerror}", "")]
    status = FAIL if free < MIN_FREE_BYTES else WARN if free < LOW_FREE_BYTES else OK
    checks.append(Check("disk", status, f"{free / 2**30:.1f} GiB free for {path}",
                        "" if status == OK else "free space on that file system"))
    return checks


def _snapshots(directory: Path, user: ServiceUser | None) -> list[Check]:
    from weltklassebot.data.catalog import LATEST, check_entry, read_latest

    promote = f"python -m cli snapshot promote FILE --dir {directory}"
    if not directory.is_dir():
        return [Check("snapshot dir", FAIL, f"{directory} does not exist",
                      "sudo python -m cli service install (creates it), then " + promote)]
    checks = [Check("snapshot dir", OK, f"{directory} ({_owner(directory)})")]
    state = read_latest(directory)
    if not state.exists:
        return [*checks, Check(LATEST, FAIL, f"no {LATEST} in {directory}", promote)]
    if state.entry is None:
        return [*checks, Check(LATEST, FAIL, state.describe(),
                               f"python -m cli snapshot verify --dir {directory}, then "
                               f"python -m cli snapshot rollback --dir {directory}")]
    result = check_entry(state.entry)
    if not result.ok:
        return [*checks, Check(LATEST, FAIL, result.problem() or result.status,
                               f"python -m cli snapshot verify --dir {directory}")]
    readable = _may(state.entry.path, user, write=False)
    return [*checks, Check(
        LATEST, OK if readable else FAIL,
        f"-> {state.target}, SHA-256 {result.actual} matches its sidecar"
        + ("" if readable else f"; NOT readable by {user.name if user else 'this user'}"),
        "" if readable else f"chown -R {user.name if user else 'USER'} {directory}")]


def _port(bind: str, port: int, state_dir: Path) -> Check:
    from weltklassebot.service.operator import service_holder

    where = f"{bind}:{port}"
    if port == 0:
        return Check("metrics port", OK, "0: the service picks a free port at start")
    if port < 1024:
        return Check("metrics port", FAIL, f"{port} needs CAP_NET_BIND_SERVICE, which the "
                     "unit does not grant", "use a port >= 1024 (service install --port)")
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((bind, port))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            return Check("metrics port", FAIL, f"cannot bind {where}: {exc.strerror}",
                         "set [service] bind to an address of this machine")
        try:
            holder = service_holder(state_dir)
            service = json.loads((state_dir / "service.json").read_text())
        except (OSError, ValueError):
            holder, service = None, {}
        if holder is not None and isinstance(service, dict) and service.get("port") == port:
            return Check("metrics port", OK, f"{where} in use by the running service "
                                             f"(pid {service.get('pid', holder)})")
        return Check("metrics port", FAIL, f"{where} is in use by another process",
                     f"stop it (ss -ltnp 'sport = :{port}') or install with another --port")
    return Check("metrics port", OK, f"{where} is free")


def run_checks(config_file: Path | None, unit_dir: Path | None) -> list[Check]:
    from weltklassebot.service.install import find_unit, parse_unit

    unit_path = find_unit(unit_dir)
    unit = parse_unit(unit_path) if unit_path is not None else None
    # The settings the service will run with: the unit's environment when it is installed.
    env = unit.effective_environment() if unit is not None else dict(os.environ)
    config_path = config_file or (Path(env["WELTKLASSE_CONFIG"])
                                  if env.get("WELTKLASSE_CONFIG") else None)
    raw, config_check = _config(config_path)
    user = _service_user(unit.user) if unit is not None else None
    checks = [*_interpreter(unit.python if unit else None, user), config_check]
    if config_check.status != FAIL:
        workdir = Path((unit.settings.get("WorkingDirectory") or [os.getcwd()])[0]
                       if unit is not None else os.getcwd())
        checks.append(_strategy(raw, unit.python if unit else None, user, workdir,
                                sandboxed=unit is not None))
    checks += _unit(unit, env)

    def section(name: str) -> dict[str, Any]:
        value = raw.get(name, {})
        return value if isinstance(value, dict) else {}

    state_dir = Path(env.get("WELTKLASSE_STATE_DIR") or section("state").get("dir")
                     or "/var/lib/weltklassebot/state")
    snapshot_dir = Path(env.get("WELTKLASSE_SNAPSHOT_DIR")
                        or section("snapshots").get("snapshot_dir")
                        or "/var/lib/weltklassebot/snapshots")
    checks += _state_dir(state_dir, user)
    checks += _snapshots(snapshot_dir, user)
    port_text = env.get("WELTKLASSE_METRICS_PORT", "").strip()
    port = int(port_text) if port_text.isdigit() else int(section("service").get(
        "metrics_port", 9000))
    bind = str(section("service").get("bind", "127.0.0.1"))
    checks.append(_port(bind, port, state_dir))
    if unit is not None and bind not in ("127.0.0.1", "::1", "localhost"):
        allowed = " ".join(unit.settings.get("IPAddressAllow", []))
        if allowed.split() == ["localhost"]:
            checks.append(Check("metrics access", WARN, f"[service] bind = {bind!r}, but the "
                                f"unit accepts connections from localhost only",
                                "re-install with --allow-from CIDR of your Prometheus"))
    return checks


@click.command("doctor")
@config_option
@click.option("--unit-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the unit is (default: systemd's unit search path).")
@json_option
def command(config_file: Path | None, unit_dir: Path | None, as_json: bool) -> None:
    """Check everything the service needs before `systemctl start weltklassebot`.

    One line per check (OK, WARN or FAIL, the detail and the fix); exit 1 when any fails.
    """
    checks = run_checks(config_file, unit_dir)
    failed = [c for c in checks if c.status == FAIL]
    if as_json:
        click.echo(json.dumps({"ok": not failed, "checks": [asdict(c) for c in checks]},
                              indent=2))
    else:
        for check in checks:
            line = f"{check.status:<4} {check.name}: {check.detail}"
            if check.fix and check.status != OK:
                line += f"  [fix: {check.fix}]"
            click.echo(line)
        warned = sum(c.status == WARN for c in checks)
        click.echo(f"doctor: {len(checks) - len(failed) - warned} OK, {warned} WARN, "
                   f"{len(failed)} FAIL")
    if failed:
        raise SystemExit(1)
