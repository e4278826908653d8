"""``python -m cli service install|uninstall|status``: the live service under systemd.

``install`` builds a venv in a prefix from this checkout, creates the system user and the state
and snapshot directories, and writes the unit rendered from ``ops/systemd/weltklassebot.service``;
``uninstall`` undoes it and keeps the data; ``status`` says where the unit is, what systemd
reports and whether the metrics endpoint answers. docs/service.md has the details.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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

_PATH = click.Path(path_type=Path)


def _say(as_json: bool) -> Any:
    # Progress goes to stderr when stdout carries the JSON document.
    return lambda text: click.echo(text, err=as_json)


def _emit(document: dict[str, Any]) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=True, default=str))


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
    from weltklassebot.service.install import service_status

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
