"""Install the live service under systemd: a venv in a prefix, a system user, its directories, the
rendered unit; and undo it (keeping the data).

Why a prefix: a checkout (and its ``.venv``) often sits under ``/root`` or ``/home``, which the
unit's ``ProtectHome=yes`` hides from the service, and ``/tmp`` is private to it
(``PrivateTmp=yes``). So the service runs from its own venv in a prefix (default
``/opt/weltklassebot``) built from the checkout: the runtime part of the pinned, hashed
``requirements.lock`` (:mod:`~weltklassebot.service.runtime_lock`) with plain pip
(``PIP_INDEX_URL`` / ``PIP_TRUSTED_HOST`` apply; pip's cache makes a re-install fast), then the
package itself, non-editable, then ``pip check``. The venv's interpreter must itself lie outside
those trees.

What install creates is recorded in ``PREFIX/install.json``; ``uninstall`` reads it, removes the
unit, the prefix and the files it wrote, and keeps the state and snapshot directories. Every
action on the machine goes through :class:`Host`, so tests can substitute a fake one.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weltklassebot.errors import RuntimeFailure, UsageError
from weltklassebot.service.runtime_lock import LockError, runtime_subset

UNIT_NAME = "weltklassebot.service"
DEFAULT_USER = "weltklassebot"
DEFAULT_PREFIX = Path("/opt/weltklassebot")
DEFAULT_STATE_DIR = Path("/var/lib/weltklassebot/state")
DEFAULT_SNAPSHOT_DIR = Path("/var/lib/weltklassebot/snapshots")
DEFAULT_UNIT_DIR = Path("/etc/systemd/system")
DEFAULT_CONFIG_DIR = Path("/etc/weltklassebot")
DEFAULT_PORT = 9000
UNIT_SEARCH_PATH = (
    Path("/etc/systemd/system"), Path("/run/systemd/system"),
    Path("/usr/local/lib/systemd/system"), Path("/lib/systemd/system"),
    Path("/usr/lib/systemd/system"),
)
TEMPLATE = Path("ops/systemd/weltklassebot.service")
ENV_EXAMPLE = Path("ops/systemd/env.example")
RECORD = "install.json"
RECORD_SCHEMA = 1
VAR_LIB = Path("/var/lib")

HIDDEN_TREES = (Path("/home"), Path("/root"), Path("/run/user"))
"""What ``ProtectHome=yes`` makes inaccessible to the service."""
PRIVATE_TREES = (Path("/tmp"), Path("/var/tmp"))
"""What ``PrivateTmp=yes`` replaces with the service's own empty directories."""
MIN_PYTHON = (3, 11)
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/@+-]*$")
_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,30}$")
_SAFE_ADDRESS = re.compile(r"^[A-Za-z0-9.:/_-]+$")

Say = Callable[[str], None]


class Host:
    """The machine install acts on: users, ownership, processes and systemd."""

    def euid(self) -> int:
        return os.geteuid()

    def run(self, argv: Sequence[str | Path], *, cwd: Path | None = None,
            output_to_stderr: bool = True) -> str:
        """Run ``argv``; its output goes to our stderr (stdout stays clean for ``--json``), or
        is returned when ``output_to_stderr`` is False. Failure raises RuntimeFailure (exit 3)."""
        args = [str(a) for a in argv]
        try:
            done = subprocess.run(
                args, cwd=cwd, check=False, text=True, stdin=subprocess.DEVNULL,
                stdout=sys.stderr if output_to_stderr else subprocess.PIPE,
                stderr=None if output_to_stderr else subprocess.PIPE,
            )
        except OSError as exc:
            raise RuntimeFailure(f"could not run `{' '.join(args)}`: {exc.strerror or exc}. "
                                 "Check that the program is installed and run again.") from None
        if done.returncode != 0:
            detail = (done.stderr or "").strip().splitlines()[-3:] if done.stderr else []
            raise RuntimeFailure(
                f"`{' '.join(args)}` failed with exit status {done.returncode}"
                + (f": {' / '.join(detail)}" if detail else " (its output is above)")
                + ". The steps after it were not made; fix the cause and run the command "
                "again (it is safe to repeat).")
        return done.stdout or ""

    def python_info(self, path: Path) -> dict[str, Any] | None:
        """Version, base prefix and venv support of an interpreter; None if it does not run."""
        code = ("import json, os, sys, importlib.util as u; print(json.dumps({'version': "
                "list(sys.version_info[:3]), 'base_prefix': sys.base_prefix, 'executable': "
                "os.path.realpath(sys.executable), 'venv': all(u.find_spec(m) is not None "
                "for m in ('venv', 'ensurepip'))}))")
        try:
            done = subprocess.run([str(path), "-I", "-c", code], capture_output=True, text=True,
                                  timeout=30, check=False)
            info: dict[str, Any] = json.loads(done.stdout)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            return None
        return info if done.returncode == 0 else None

    def user(self, name: str) -> tuple[int, int] | None:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return None
        return entry.pw_uid, entry.pw_gid

    def group(self, name: str) -> int | None:
        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            return None

    def add_group(self, name: str) -> None:
        self.run(["groupadd", "--system", name])

    def add_user(self, name: str, group: str) -> None:
        shell = shutil.which("nologin") or "/usr/sbin/nologin"
        self.run(["useradd", "--system", "--gid", group, "--no-create-home",
                  "--home-dir", "/nonexistent", "--shell", shell,
                  "--comment", "Weltklassebot live simulation", name])

    def del_user(self, name: str) -> None:
        self.run(["userdel", name])

    def del_group(self, name: str) -> None:
        self.run(["groupdel", name])

    def chown(self, path: Path, uid: int, gid: int) -> None:
        os.chown(path, uid, gid, follow_symlinks=False)

    def systemd_running(self) -> bool:
        """systemd's own test (``sd_booted``): it is the init system of this machine."""
        return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None

    def systemctl(self, *args: str) -> subprocess.CompletedProcess[str] | None:
        """``systemctl ARGS`` when systemd runs here, else None."""
        if not self.systemd_running():
            return None
        return subprocess.run(["systemctl", "--no-pager", *args], capture_output=True,
                              text=True, check=False, timeout=120)


def _under(path: Path, tree: Path) -> bool:
    return path == tree or tree in path.parents


def check_service_path(path: Path, what: str, option: str) -> Path:
    """An absolute path the unit can name and the sandboxed service can reach."""
    if not path.is_absolute():
        raise UsageError(f"{option} {path}: {what} must be an absolute path.")
    path = Path(os.path.normpath(path))
    if not _SAFE_PATH.match(str(path)):
        raise UsageError(
            f"{option} {path}: {what} may hold only letters, digits and . _ / @ + - (the "
            "path is written into the systemd unit as is); choose another path.")
    sandboxed = sandbox_hides(path)
    if sandboxed is not None:
        tree, hides = sandboxed
        raise UsageError(
            f"{option} {path}: {what} lies under {tree}, which the unit's {hides} for the "
            "service; choose a path such as /opt/weltklassebot or /var/lib/weltklassebot "
            "(docs/service.md, Why a prefix).")
    return path


def sandbox_hides(path: Path) -> tuple[Path, str] | None:
    """The tree of an absolute ``path`` that the unit's sandbox keeps from the service, and the
    setting that does it (``ProtectHome=yes hides``, ``PrivateTmp=yes replaces``); else None."""
    path = Path(os.path.normpath(path))
    for tree in (*HIDDEN_TREES, *PRIVATE_TREES):
        if _under(path, tree):
            return tree, ("ProtectHome=yes hides" if tree in HIDDEN_TREES
                          else "PrivateTmp=yes replaces")
    return None


def check_name(name: str, what: str) -> str:
    if not _SAFE_NAME.match(name):
        raise UsageError(f"{what} {name!r} is not a valid system user/group name (lower-case "
                         "letters, digits, '_' and '-', starting with a letter or '_').")
    return name


def state_directory(state_dir: Path) -> str | None:
    """``StateDirectory=`` for a state dir under ``/var/lib`` (its first component there)."""
    if not _under(state_dir, VAR_LIB) or state_dir == VAR_LIB:
        return None
    return state_dir.relative_to(VAR_LIB).parts[0]


def find_source(flag: Path | None) -> Path:
    """The checkout to install from: ``--source``, else the one this package was loaded from."""
    import weltklassebot

    root = flag.absolute() if flag is not None else \
        Path(weltklassebot.__file__).resolve().parents[2]
    if not all((root / name).is_file() for name in ("pyproject.toml", "requirements.lock",
                                                    str(TEMPLATE))):
        raise UsageError(
            f"{root} is not a weltklassebot checkout (it needs pyproject.toml, "
            f"requirements.lock and {TEMPLATE}). Run the command from a checkout's .venv, or "
            "pass --source DIR naming one.")
    return root


def _python_problem(path: Path, info: dict[str, Any] | None) -> str | None:
    if info is None:
        return f"{path} does not run as a Python interpreter"
    if tuple(info["version"][:2]) < MIN_PYTHON:
        return f"{path} is Python {'.'.join(map(str, info['version']))}; 3.11 or newer is needed"
    for where in (Path(info["executable"]), Path(info["base_prefix"])):
        for tree in (*HIDDEN_TREES, *PRIVATE_TREES):
            if _under(where, tree):
                return (f"{path} lives in {where}, under {tree}, which the unit's sandbox "
                        "(ProtectHome=yes, PrivateTmp=yes) hides from the service")
    if not info["venv"]:
        return f"{path} lacks the venv/ensurepip modules (Debian: apt-get install python3-venv)"
    return None


def choose_python(flag: Path | None, host: Host) -> tuple[Path, str]:
    """The interpreter the service's venv is built on, and its version.

    ``--python``, else the interpreter running this command (its base, outside any venv), else
    ``python3.X`` / ``python3`` from the system's directories: a checkout's interpreter is often a
    pyenv build under ``/root``, which the service could never start.
    """
    if flag is not None:
        info = host.python_info(flag)
        problem = _python_problem(flag, info)
        if problem:
            raise UsageError(f"--python: {problem}. Pass another interpreter.")
        assert info is not None
        return flag, ".".join(map(str, info["version"]))
    major, minor = sys.version_info[:2]
    candidates = [Path(getattr(sys, "_base_executable", sys.executable))]
    for name in (f"python{major}.{minor}", "python3"):
        found = shutil.which(name, path="/usr/local/bin:/usr/bin:/bin")
        if found:
            candidates.append(Path(found))
    problems = []
    for candidate in candidates:
        info = host.python_info(candidate)
        problem = _python_problem(candidate, info)
        if problem is None:
            assert info is not None
            return candidate, ".".join(map(str, info["version"]))
        problems.append(problem)
    raise UsageError(
        "no interpreter the service can run was found: " + "; ".join(problems) + ". Install "
        "Python 3.11+ from the distribution (Debian: apt-get install python3 python3-venv) or "
        "pass --python PATH (outside /home, /root and /tmp).")


@dataclass(frozen=True)
class UnitValues:
    """Everything the template's ``@NAME@`` placeholders take."""

    python: Path
    prefix: Path
    user: str
    group: str
    port: int
    state_dir: Path
    snapshot_dir: Path
    config_dir: Path
    config_file: Path | None = None
    ip_allow: tuple[str, ...] = ("localhost",)
    extra_writable: tuple[Path, ...] = ()


def render_unit(template: str, values: UnitValues) -> str:
    """The unit file for ``values``: every placeholder replaced; refuses an unknown one."""
    state_lines = []
    unit_state_dir = state_directory(values.state_dir)
    if unit_state_dir is not None:
        # systemd creates /var/lib/<name> for the service user (0750) and makes it writable.
        state_lines += [f"StateDirectory={unit_state_dir}", "StateDirectoryMode=0750"]
    writable = [p for p in (values.state_dir, *values.extra_writable)
                if unit_state_dir is None or not _under(p, VAR_LIB / unit_state_dir)]
    if writable:
        state_lines.append("ReadWritePaths=" + " ".join(str(p) for p in writable))
    # The service only reads snapshots: promote/rollback are the operators' (group members').
    state_lines.append(f"ReadOnlyPaths=-{values.snapshot_dir}")
    config_env = (f"Environment=WELTKLASSE_CONFIG={values.config_file}"
                  if values.config_file is not None else
                  "# (no WELTKLASSE_CONFIG: no config.toml in the config directory at install)")
    replacements = {
        "PYTHON": str(values.python), "PREFIX": str(values.prefix), "USER": values.user,
        "GROUP": values.group, "PORT": str(values.port), "STATE_DIR": str(values.state_dir),
        "SNAPSHOT_DIR": str(values.snapshot_dir), "CONFIG_DIR": str(values.config_dir),
        "CONFIG_ENV": config_env, "STATE_PATHS": "\n".join(state_lines),
        "IP_ALLOW": " ".join(values.ip_allow),
    }

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in replacements:
            raise UsageError(f"unit template: unknown placeholder @{key}@ ({TEMPLATE}).")
        return replacements[key]

    return re.sub(r"@([A-Z_]+)@", replace, template)


@dataclass(frozen=True)
class InstalledUnit:
    """What an installed unit file says about the service it starts."""

    path: Path
    python: Path | None
    user: str | None
    environment: dict[str, str]
    environment_files: tuple[str, ...]
    settings: dict[str, list[str]] = field(default_factory=dict)

    def effective_environment(self) -> dict[str, str]:
        """``Environment=`` overridden by the ``EnvironmentFile=`` files, as systemd does."""
        env = dict(self.environment)
        for name in self.environment_files:
            env.update(read_env_file(Path(name.removeprefix("-"))))
        return env


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of an environment file (comments and blank lines skipped)."""
    try:
        text = path.read_text()
    except OSError:
        return {}
    env: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        env[key.strip().removeprefix("export ").strip()] = value
    return env


def parse_unit(path: Path) -> InstalledUnit:
    """Read the ``[Service]`` settings of a unit file."""
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if section == "Service" and "=" in line:
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    environment: dict[str, str] = {}
    for value in settings.get("Environment", []):
        for item in value.split():
            if "=" in item:
                key, val = item.strip("\"'").split("=", 1)
                environment[key] = val
    exec_start = (settings.get("ExecStart") or [""])[-1].split()
    python = Path(exec_start[0].lstrip("-@:+!")) if exec_start else None
    users = settings.get("User", [])
    return InstalledUnit(
        path=path, python=python, user=users[-1] if users else None, environment=environment,
        environment_files=tuple(settings.get("EnvironmentFile", [])), settings=settings)


def find_unit(unit_dir: Path | None = None) -> Path | None:
    """The installed unit file: in ``unit_dir``, else the first in systemd's search path."""
    for directory in (unit_dir,) if unit_dir is not None else UNIT_SEARCH_PATH:
        candidate = directory / UNIT_NAME
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class InstallOptions:
    user: str = DEFAULT_USER
    group: str | None = None
    prefix: Path = DEFAULT_PREFIX
    state_dir: Path = DEFAULT_STATE_DIR
    snapshot_dir: Path = DEFAULT_SNAPSHOT_DIR
    port: int = DEFAULT_PORT
    unit_dir: Path = DEFAULT_UNIT_DIR
    config_dir: Path = DEFAULT_CONFIG_DIR
    config: Path | None = None
    python: Path | None = None
    source: Path | None = None
    allow_from: tuple[str, ...] = ()
    reload: bool = True


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_record(prefix: Path) -> dict[str, Any] | None:
    try:
        record: dict[str, Any] = json.loads((prefix / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _write_file(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` atomically (temporary name, fsync, rename) with ``mode``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def _check_prefix(prefix: Path, protected: Sequence[tuple[str, Path]]) -> None:
    """The prefix is ours to fill and, on uninstall, to delete: refuse anything else."""
    if len(prefix.parts) < 3:
        raise UsageError(f"--prefix {prefix}: too close to / (uninstall deletes the prefix); "
                         "use a dedicated directory such as /opt/weltklassebot.")
    for what, path in protected:
        if _under(path, prefix):
            raise UsageError(f"--prefix {prefix} holds the {what} {path}; uninstall deletes the "
                             "prefix, so keep data and sources outside it.")
    if prefix.is_dir() and any(prefix.iterdir()) and read_record(prefix) is None:
        raise UsageError(
            f"--prefix {prefix} exists, is not empty and holds no {RECORD} (it was not made by "
            "`service install`); uninstall would delete it, so choose an empty or new directory.")


def _stage_source(source: Path, into: Path) -> Path:
    """Copy what a build needs, so building the package writes nothing into the checkout."""
    stage = into / "source"
    stage.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "setup.cfg"):
        if (source / name).is_file():
            shutil.copy2(source / name, stage / name)
    shutil.copytree(source / "src", stage / "src", ignore=shutil.ignore_patterns(
        "__pycache__", "*.pyc", "*.egg-info", ".mypy_cache"))
    return stage


def _make_dir(host: Host, path: Path, uid: int, gid: int, mode: int) -> str:
    created = not path.exists()
    for parent in reversed([p for p in path.parents if not p.exists()]):
        parent.mkdir(mode=0o755)
    path.mkdir(exist_ok=True)
    st = path.stat()
    if (st.st_uid, st.st_gid) != (uid, gid):
        host.chown(path, uid, gid)
    os.chmod(path, mode)
    return "created" if created else "kept"


@dataclass
class _Plan:
    """Checked install inputs, and what the steps learn on the way (the record)."""

    options: InstallOptions
    user: str
    group: str
    prefix: Path
    state_dir: Path
    snapshot_dir: Path
    config_dir: Path
    source: Path
    python: Path
    python_version: str
    config_text: str | None
    previous: dict[str, Any] | None
    runtime_text: str  # the lock's runtime part, as a requirements file
    runtime_packages: list[str]
    record: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def venv_python(self) -> Path:
        return self.prefix / "venv" / "bin" / "python"

    def save_record(self) -> None:
        _write_file(self.prefix / RECORD, (json.dumps(self.record, indent=2) + "\n").encode(),
                    0o644)


def _plan(options: InstallOptions, host: Host) -> _Plan:
    if host.euid() != 0:
        raise UsageError(
            "`service install` must run as root: it creates a system user, directories owned "
            "by it and a systemd unit. Run it with sudo (e.g. `sudo .venv/bin/python -m cli "
            "service install`).")
    user = check_name(options.user, "--user")
    prefix = check_service_path(options.prefix, "the install prefix", "--prefix")
    state_dir = check_service_path(options.state_dir, "the state directory", "--state-dir")
    snapshot_dir = check_service_path(options.snapshot_dir, "the snapshot directory",
                                      "--snapshot-dir")
    config_dir = check_service_path(options.config_dir, "the config directory", "--config-dir")
    if not 1 <= options.port <= 65535:
        raise UsageError(f"--port {options.port}: a TCP port is 1..65535.")
    for address in options.allow_from:
        if not _SAFE_ADDRESS.match(address):
            raise UsageError(f"--allow-from {address!r}: give an address or prefix such as "
                             "10.0.0.0/8, or 'any'.")
    source = find_source(options.source)
    runtime_text, runtime_packages = _runtime_part(source)
    _check_prefix(prefix, [("state directory", state_dir), ("snapshot directory", snapshot_dir),
                           ("config directory", config_dir), ("source checkout", source)])
    config_text = _checked_config(options.config) if options.config is not None else None
    python, version = choose_python(options.python, host)
    return _Plan(options=options, user=user, group=check_name(options.group or user, "--group"),
                 prefix=prefix, state_dir=state_dir, snapshot_dir=snapshot_dir,
                 config_dir=config_dir, source=source, python=python, python_version=version,
                 config_text=config_text, previous=read_record(prefix),
                 runtime_text=runtime_text, runtime_packages=runtime_packages)


def _runtime_part(source: Path) -> tuple[str, list[str]]:
    """The lock's runtime part, selected before anything is made (a bad lock changes nothing)."""
    lock = source / "requirements.lock"
    try:
        return runtime_subset(lock.read_text(encoding="utf-8"),
                              (source / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, LockError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise UsageError(f"{lock}: cannot select the service's dependencies from it: "
                         f"{reason}. Nothing was installed or changed.") from None


def install(options: InstallOptions, say: Say, host: Host | None = None) -> dict[str, Any]:
    """Install (or upgrade) the service; returns what was done, for ``--json``."""
    host = host or Host()
    started = time.monotonic()
    plan = _plan(options, host)
    with _umask(0o022):  # the service user reads the venv and the unit
        uid, gid = _ensure_user(plan, host, say)
        _build_venv(plan, host, say)
        _make_service_dirs(plan, host, uid, gid, say)
        config_file = _fill_config_dir(plan, host, gid, say)
        unit_path = _write_unit(plan, config_file, say)
        plan.record.update({"complete": True, "unit": str(unit_path)})
        plan.save_record()
        reloaded = _reload(plan, host)
    for note in plan.notes:
        say(f"note: {note}")
    plan.timings["total"] = round(time.monotonic() - started, 1)
    return {**plan.record, "prefix": str(plan.prefix), "reloaded": reloaded,
            "notes": plan.notes, "upgraded": plan.previous is not None,
            "seconds": plan.timings}


def _ensure_user(plan: _Plan, host: Host, say: Say) -> tuple[int, int]:
    """The system user and group (created when missing), and the record naming them, written
    before anything else so a failed install can be repeated or uninstalled."""
    previous = plan.previous or {}
    created_group = created_user = False
    if host.group(plan.group) is None:
        host.add_group(plan.group)
        created_group = True
    if host.user(plan.user) is None:
        host.add_user(plan.user, plan.group)
        created_user = True
    ids, gid = host.user(plan.user), host.group(plan.group)
    if ids is None or gid is None:
        raise RuntimeFailure(f"user {plan.user} / group {plan.group} could not be found after "
                             "creating them; check /etc/passwd and /etc/group and run again.")
    # An upgrade keeps what the first install created, so uninstall still removes it.
    created_user = created_user or bool(previous.get("created_user"))
    created_group = created_group or bool(previous.get("created_group"))
    say(f"user {plan.user} (uid {ids[0]}), group {plan.group} (gid {gid}): "
        f"{'created' if created_user else 'exists'}")
    plan.prefix.mkdir(parents=True, exist_ok=True)
    os.chmod(plan.prefix, 0o755)
    plan.record = {
        **previous, "schema": RECORD_SCHEMA, "complete": False, "source": str(plan.source),
        "user": plan.user, "group": plan.group, "created_user": created_user,
        "created_group": created_group, "state_dir": str(plan.state_dir),
        "snapshot_dir": str(plan.snapshot_dir), "port": plan.options.port,
        "unit": str(plan.options.unit_dir / UNIT_NAME), "config_dir": str(plan.config_dir),
        "created_config_dir": bool(previous.get("created_config_dir"))
        or not plan.config_dir.exists(), "allow_from": list(plan.options.allow_from),
    }
    plan.save_record()
    return ids[0], gid


def _build_venv(plan: _Plan, host: Host, say: Say) -> None:
    """The venv (re-created only for another interpreter), the lock, then the package."""
    venv = plan.prefix / "venv"
    tick = time.monotonic()
    fresh = (plan.previous or {}).get("python") != str(plan.python) or \
        not plan.venv_python.exists()
    if fresh:
        host.run([plan.python, "-m", "venv", "--clear", venv])
    plan.timings["venv"] = round(time.monotonic() - tick, 1)
    say(f"venv {venv}: {'created' if fresh else 'kept'} on {plan.python} "
        f"(Python {plan.python_version})")
    pip: list[str | Path] = [plan.venv_python, "-m", "pip", "--disable-pip-version-check",
                             "--no-input", "--quiet"]
    with tempfile.TemporaryDirectory(prefix="weltklassebot-build-") as scratch:
        runtime = Path(scratch) / "runtime-requirements.txt"
        runtime.write_text(plan.runtime_text, encoding="utf-8")
        tick = time.monotonic()
        host.run([*pip, "install", "--require-hashes", "-r", runtime])
        plan.timings["requirements"] = round(time.monotonic() - tick, 1)
        say(f"dependencies: the runtime part of {plan.source / 'requirements.lock'} installed "
            f"({len(plan.runtime_packages)} packages, {plan.timings['requirements']} s; no "
            "test, benchmark or ray extras)")
        tick = time.monotonic()
        stage = _stage_source(plan.source, Path(scratch))
        host.run([*pip, "install", "--no-deps", "--no-build-isolation", "--force-reinstall",
                  stage], cwd=Path(scratch))
    plan.timings["package"] = round(time.monotonic() - tick, 1)
    host.run([*pip, "check"], cwd=plan.prefix)  # every installed package has what it requires
    version = host.run(
        [plan.venv_python, "-c", "import weltklassebot, cli; print(weltklassebot.__version__)"],
        cwd=plan.prefix, output_to_stderr=False).strip()
    say(f"package: weltklassebot {version} from {plan.source} (non-editable, "
        f"{plan.timings['package']} s)")
    plan.record.update({"version": version, "python": str(plan.python),
                        "python_version": plan.python_version,
                        "venv_python": str(plan.venv_python)})


def _make_service_dirs(plan: _Plan, host: Host, uid: int, gid: int, say: Say) -> None:
    """State (the service's own) and snapshots (the service reads, operators promote)."""
    name = state_directory(plan.state_dir)
    if name is not None and VAR_LIB / name != plan.state_dir:
        _make_dir(host, VAR_LIB / name, uid, gid, 0o750)
    done = _make_dir(host, plan.state_dir, uid, gid, 0o750)
    say(f"state dir {plan.state_dir}: {done}, {plan.user}:{plan.group} 0750")
    done = _make_dir(host, plan.snapshot_dir, uid, gid, 0o2770)
    say(f"snapshot dir {plan.snapshot_dir}: {done}, {plan.user}:{plan.group} 2770 (members of "
        f"{plan.group} may promote)")


def _fill_config_dir(plan: _Plan, host: Host, gid: int, say: Say) -> Path | None:
    """env.example always; config.toml when given (an existing one is kept otherwise)."""
    config_dir = plan.config_dir
    config_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    host.chown(config_dir, 0, gid)
    os.chmod(config_dir, 0o750)
    env_example = config_dir / "env.example"
    _write_file(env_example, (plan.source / ENV_EXAMPLE).read_bytes(), 0o640)
    host.chown(env_example, 0, gid)
    config_file = config_dir / "config.toml"
    if plan.config_text is not None:
        _write_file(config_file, plan.config_text.encode(), 0o640)
        host.chown(config_file, 0, gid)
        plan.record["config_sha256"] = _sha256(config_file)
        say(f"config: {plan.options.config} -> {config_file}")
    return config_file if config_file.is_file() else None


def _write_unit(plan: _Plan, config_file: Path | None, say: Say) -> Path:
    values = UnitValues(
        python=plan.venv_python, prefix=plan.prefix, user=plan.user, group=plan.group,
        port=plan.options.port, state_dir=plan.state_dir, snapshot_dir=plan.snapshot_dir,
        config_dir=plan.config_dir, config_file=config_file,
        ip_allow=("localhost", *plan.options.allow_from),
        extra_writable=_config_runs_dir(config_file, plan.state_dir) if config_file else ())
    text = render_unit((plan.source / TEMPLATE).read_text(), values)
    plan.options.unit_dir.mkdir(parents=True, exist_ok=True)
    unit_path = plan.options.unit_dir / UNIT_NAME
    _write_file(unit_path, text.encode(), 0o644)
    say(f"unit: {unit_path}")
    return unit_path


def _reload(plan: _Plan, host: Host) -> bool:
    """``systemctl daemon-reload`` when systemd runs here (a note otherwise)."""
    if not plan.options.reload:
        return False
    answer = host.systemctl("daemon-reload")
    if answer is None:
        plan.notes.append("systemd is not running on this machine (not PID 1): daemon-reload "
                          "skipped; systemd reads the unit when it starts")
        return False
    if answer.returncode != 0:
        plan.notes.append(f"systemctl daemon-reload failed: {answer.stderr.strip()}; run it "
                          "by hand")
        return False
    active = host.systemctl("is-active", UNIT_NAME)
    if plan.previous is not None and active is not None and active.stdout.strip() == "active":
        plan.notes.append("the service still runs the previous version: `systemctl restart "
                          "weltklassebot` to use this one")
    return True


def _checked_config(path: Path) -> str:
    """The text of a config file the service will accept (the checks ``live`` makes)."""
    from weltklassebot.config.load import read_toml, validate_config
    from weltklassebot.config.model import BacktestConfig
    from weltklassebot.config.service import (
        OTHER_COMMANDS_SECTIONS,
        LiveSettings,
        live_sections,
    )

    raw = read_toml(path)
    validate_config(LiveSettings, live_sections(raw), f"config file {path}")
    validate_config(BacktestConfig, {k: v for k, v in raw.items()
                                     if k not in OTHER_COMMANDS_SECTIONS}, f"config file {path}")
    return path.read_text()


def _config_runs_dir(config_file: Path, state_dir: Path) -> tuple[Path, ...]:
    """A ``[service] runs_dir`` outside the state dir must be writable too."""
    from weltklassebot.config.load import read_toml

    try:
        section = read_toml(config_file).get("service", {})
    except UsageError:
        return ()
    runs = section.get("runs_dir") if isinstance(section, dict) else None
    if not isinstance(runs, str) or not runs.startswith("/"):
        return ()
    path = check_service_path(Path(runs), "[service] runs_dir", str(config_file))
    return () if _under(path, state_dir) else (path,)


def uninstall(prefix: Path, unit_dir: Path | None, *, remove_user: bool, reload: bool,
              say: Say, user: str | None = None,
              host: Host | None = None) -> dict[str, Any]:
    """Stop and remove the service installed in ``prefix``; keep its state and snapshots."""
    host = host or Host()
    if host.euid() != 0:
        raise UsageError("`service uninstall` must run as root (it removes a systemd unit and "
                         "the install prefix). Run it with sudo.")
    prefix = Path(os.path.normpath(prefix.absolute()))
    record = read_record(prefix)
    if prefix.exists() and record is None:
        raise UsageError(
            f"{prefix} holds no {RECORD}: it was not made by `service install` (or is another "
            "prefix); nothing was removed. Pass the --prefix used at install.")
    record = record or {}
    removed: list[str] = []
    kept: list[str] = []
    notes: list[str] = []
    unit_path = unit_dir / UNIT_NAME if unit_dir is not None else (
        Path(record["unit"]) if "unit" in record else find_unit())
    if unit_path is not None and unit_path.is_file():
        python = parse_unit(unit_path).python
        if python is None or not _under(python, prefix):
            kept.append(f"{unit_path} (it starts {python}, not a service in {prefix})")
            unit_path = None
    if not host.systemd_running():
        notes.append("systemd is not running here: the unit was not stopped")
    elif unit_path is not None:
        for verb in ("stop", "disable"):
            answer = host.systemctl(verb, UNIT_NAME)
            if answer is not None and answer.returncode == 0:
                say(f"systemctl {verb} {UNIT_NAME}: done")
    if unit_path is not None:
        for path in [*unit_path.parent.glob(f"*.wants/{UNIT_NAME}"), unit_path]:
            if os.path.lexists(path):
                path.unlink()
                removed.append(str(path))
        if unit_path.with_name(UNIT_NAME + ".d").is_dir():
            kept.append(f"{unit_path.with_name(UNIT_NAME + '.d')} (local overrides)")
    if reload and host.systemctl("daemon-reload") is not None:
        host.systemctl("reset-failed", UNIT_NAME)
        say("systemctl daemon-reload: done")
    if prefix.exists():
        shutil.rmtree(prefix)
        removed.append(str(prefix))
    _empty_config_dir(record, removed, kept)
    kept += [f"{record[k]} (data)" for k in ("state_dir", "snapshot_dir")
             if k in record and Path(record[k]).exists()]
    user = user or record.get("user") or DEFAULT_USER
    group = record.get("group") or user
    if remove_user:
        if host.user(user) is not None:
            host.del_user(user)
            removed.append(f"user {user}")
        # userdel drops a same-named primary group itself; a group install made goes too.
        if host.group(group) is not None and record.get("created_group", group == user):
            host.del_group(group)
            removed.append(f"group {group}")
    elif host.user(user) is not None:
        kept.append(f"user {user} (--remove-user removes it)")
    for line in ([f"removed {r}" for r in removed] + [f"kept {k}" for k in kept]
                 + [f"note: {n}" for n in notes]):
        say(line)
    return {"removed": removed, "kept": kept, "notes": notes, "prefix": str(prefix)}


def _empty_config_dir(record: dict[str, Any], removed: list[str], kept: list[str]) -> None:
    """Remove the files install wrote to the config dir (config.toml only if unchanged), and
    the directory if install created it and nothing else is left."""
    config_dir = Path(record.get("config_dir", DEFAULT_CONFIG_DIR))
    for name in ("env.example", "config.toml"):
        path = config_dir / name
        if not path.is_file():
            continue
        if name == "config.toml" and _sha256(path) != record.get("config_sha256"):
            kept.append(f"{path} (not the file install wrote)")
            continue
        path.unlink()
        removed.append(str(path))
    if record.get("created_config_dir") and config_dir.is_dir():
        left = sorted(p.name for p in config_dir.iterdir())
        if left:
            kept.append(f"{config_dir} (holds {', '.join(left)})")
        else:
            config_dir.rmdir()
            removed.append(str(config_dir))
