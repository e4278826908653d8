"""``python -m cli service install|uninstall|status``: the live service under systemd.

``install`` builds a venv in a prefix from this checkout, creates the system user and the state
and snapshot directories, and writes the unit rendered from ``ops/systemd/weltklassebot.service``;
``uninstall`` undoes it and keeps the data; ``status`` says where the unit is, what systemd
reports and whether the metrics endpoint answers. docs/service.md has the details.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from weltklassebot.service.install import (
    DEFAULT_CONFIG_DIR,
    DEFAULT_PORT,
    DEFAULT_PREFIX,
    DEFAULT_SNAPSHOT_DIR,
    DEFAULT_STATE_DIR,
    DEFAULT_UNIT_DIR,
    DEFAULT_USER,
)

if TYPE_CHECKING:
    from weltklassebot.service.install import Host

_PATH = click.Path(path_type=Path)


def _say(as_json: bool) -> Any:
    # Progress goes to stderr when stdout carries the JSON document.
    return lambda text: click.echo(text, err=as_json)


def _emit(document: dict[str, Any]) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=True, default=str))


def fetch(url: str, timeout_s: float = 2.0) -> tuple[int | None, str]:
    """GET ``url``: (HTTP status, body) or (None, the error)."""
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout_s) as response:
            return int(response.status), response.read(65536).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(4096).decode(errors="replace")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, str(reason)


def service_status(unit_dir: Path | None, host: Host | None = None) -> dict[str, Any]:
    """Where the unit is, whether systemd runs it, what its state dir and endpoint say."""
    from weltklassebot.service.install import (
        UNIT_NAME,
        Host,
        find_unit,
        parse_unit,
    )
    from weltklassebot.service.operator import service_holder

    host = host or Host()
    unit_path = find_unit(unit_dir)
    result: dict[str, Any] = {"unit": str(unit_path) if unit_path else None,
                              "installed": unit_path is not None}
    env: dict[str, str] = {}
    if unit_path is not None:
        unit = parse_unit(unit_path)
        env = unit.effective_environment()
        result["python"] = str(unit.python) if unit.python else None
        result["user"] = unit.user
    answer = host.systemctl("show", UNIT_NAME, "-p", "ActiveState", "-p", "SubState",
                            "-p", "MainPID", "-p", "StatusText", "-p", "NRestarts")
    if answer is None:
        result["systemd"] = "not running on this machine"
        result["active"] = None
    else:
        props = dict(line.split("=", 1) for line in answer.stdout.splitlines() if "=" in line)
        result["systemd"] = "running"
        result["active"] = props.get("ActiveState")
        result["sub_state"] = props.get("SubState")
        result["main_pid"] = int(props.get("MainPID") or 0)
        result["status_text"] = props.get("StatusText") or None
        result["restarts"] = int(props.get("NRestarts") or 0)
    state_dir = Path(env.get("WELTKLASSE_STATE_DIR") or os.environ.get(
        "WELTKLASSE_STATE_DIR") or DEFAULT_STATE_DIR)
    result["state_dir"] = str(state_dir)
    service: dict[str, Any] | None = None
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads((state_dir / "service.json").read_text())
        service = loaded if isinstance(loaded, dict) else None
    result["service_json"] = service
    try:
        result["lock_holder"] = service_holder(state_dir)
    except OSError as exc:
        result["lock_holder"] = f"unreadable: {exc.strerror}"
    port = (service or {}).get("port") or env.get("WELTKLASSE_METRICS_PORT") or DEFAULT_PORT
    bind = (service or {}).get("bind") or "127.0.0.1"
    host_part = "127.0.0.1" if bind in ("0.0.0.0", "") else "[::1]" if bind == "::" else (
        f"[{bind}]" if ":" in bind else bind)
    url = f"http://{host_part}:{port}/readyz"
    code, body = fetch(url)
    result["readyz"] = {"url": url, "status": code, "body": body.strip()[:200]}
    result["healthy"] = bool(code == 200 and result["active"] in ("active", None))
    return result


@click.group(name="service", help="Install, remove and inspect the systemd service.")
def command() -> None:
    pass


@command.command(name="install")
@click.option("--user", default=DEFAULT_USER, show_default=True,
              help="System user the service runs as (created if missing).")
@click.option("--group", default=None, help="Its group (default: same as --user); members may "
                                            "promote snapshots.")
@click.option("--prefix", type=_PATH, default=DEFAULT_PREFIX, show_default=True,
              help="Where the service's venv goes (readable by the service user).")
@click.option("--state-dir", type=_PATH, default=DEFAULT_STATE_DIR, show_default=True)
@click.option("--snapshot-dir", type=_PATH, default=DEFAULT_SNAPSHOT_DIR, show_default=True)
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True,
              help="Metrics port (WELTKLASSE_METRICS_PORT in the unit).")
@click.option("--unit-dir", type=_PATH, default=DEFAULT_UNIT_DIR, show_default=True)
@click.option("--config-dir", type=_PATH, default=DEFAULT_CONFIG_DIR, show_default=True,
              help="Holds env (EnvironmentFile), env.example and config.toml.")
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="TOML config copied to CONFIG_DIR/config.toml "
                                 "(an existing one is kept otherwise).")
@click.option("--python", "python", type=_PATH, default=None,
              help="Interpreter for the venv (default: this one, else the system's python3).")
@click.option("--source", type=_PATH, default=None,
              help="Checkout to install from (default: the one this command runs from).")
@click.option("--allow-from", multiple=True, metavar="CIDR",
              help="Also accept metrics scrapes from this address/prefix (IPAddressAllow; "
                   "default localhost only).")
@click.option("--no-reload", is_flag=True, help="Do not run `systemctl daemon-reload`.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def install(user: str, group: str | None, prefix: Path, state_dir: Path, snapshot_dir: Path,
            port: int, unit_dir: Path, config_dir: Path, config: Path | None,
            python: Path | None, source: Path | None, allow_from: tuple[str, ...],
            no_reload: bool, as_json: bool) -> None:
    """Install or upgrade the service (root; safe to repeat)."""
    from weltklassebot.service.install import InstallOptions
    from weltklassebot.service.install import install as do_install

    options = InstallOptions(
        user=user, group=group, prefix=prefix, state_dir=state_dir, snapshot_dir=snapshot_dir,
        port=port, unit_dir=unit_dir, config_dir=config_dir, config=config, python=python,
        source=source, allow_from=allow_from, reload=not no_reload)
    result = do_install(options, _say(as_json))
    if as_json:
        _emit(result)
        return
    click.echo(f"installed weltklassebot {result['version']} in {result['seconds']['total']} s. "
               "Next: `python -m cli snapshot promote FILE --dir "
               f"{result['snapshot_dir']}`, `python -m cli doctor`, "
               "`systemctl start weltklassebot`.")


@command.command(name="uninstall")
@click.option("--prefix", type=_PATH, default=DEFAULT_PREFIX, show_default=True)
@click.option("--unit-dir", type=_PATH, default=None,
              help="Where the unit is (default: as recorded at install).")
@click.option("--remove-user", is_flag=True, help="Also delete the system user (and its group).")
@click.option("--user", default=None, help="The user --remove-user deletes (default: the "
                                           "installed one, else weltklassebot).")
@click.option("--no-reload", is_flag=True, help="Do not run `systemctl daemon-reload`.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def uninstall(prefix: Path, unit_dir: Path | None, remove_user: bool, user: str | None,
              no_reload: bool, as_json: bool) -> None:
    """Stop and remove the service; keep the state and snapshot directories."""
    from weltklassebot.service.install import uninstall as do_uninstall

    result = do_uninstall(prefix, unit_dir, remove_user=remove_user, reload=not no_reload,
                          user=user, say=_say(as_json))
    if as_json:
        _emit(result)
    elif not result["removed"]:
        click.echo("nothing to remove: the service is not installed there")


@command.command(name="status")
@click.option("--unit-dir", type=_PATH, default=None,
              help="Where the unit is (default: systemd's unit search path).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def status(unit_dir: Path | None, as_json: bool) -> None:
    """Unit, systemd state, state directory and metrics endpoint.

    Exit 0 when the service is running and ready, 1 otherwise.
    """
    result = service_status(unit_dir)
    if as_json:
        _emit(result)
    else:
        click.echo(f"unit:       {result['unit'] or 'not installed'}")
        if result.get("python"):
            click.echo(f"python:     {result['python']}")
        if result["active"] is None:
            click.echo(f"systemd:    {result['systemd']}")
        else:
            click.echo(f"active:     {result['active']} ({result.get('sub_state')}), main pid "
                       f"{result.get('main_pid') or '-'}, restarts {result.get('restarts', 0)}")
            if result.get("status_text"):
                click.echo(f"status:     {result['status_text']}")
        click.echo(f"state dir:  {result['state_dir']}")
        service = result["service_json"]
        if service:
            click.echo("service:    " + ", ".join(f"{k}={service[k]}" for k in
                                                  ("pid", "run_id", "bind", "port")
                                                  if k in service))
        holder = result["lock_holder"]
        click.echo("lock:       " + ("free" if holder is None else f"held by pid {holder}"
                                      if isinstance(holder, int) else str(holder)))
        ready = result["readyz"]
        click.echo(f"readyz:     {ready['url']} -> "
                   + (f"HTTP {ready['status']}" if ready["status"] else ready["body"]))
    if not result["healthy"]:
        raise SystemExit(1)
