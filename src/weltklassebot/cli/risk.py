"""``risk status|halt|resume``: the operator's view of and hand on the risk state (docs/risk.md).

The state directory is ``--state-dir``, else ``WELTKLASSE_STATE_DIR``, else ``[state] dir`` in the
TOML file given by ``--config`` / ``WELTKLASSE_CONFIG``, else ``/var/lib/weltklassebot/state``.

- ``status`` only reads (no lock): last checkpoint's ``risk`` section + later ``risk_transition``
  records, plus whether a service holds the directory and which commands wait for it.
- ``halt`` / ``resume`` with no service running take the service lock themselves and append the
  ``risk_transition`` (and an ``operator_command`` audit record) to the store, stamped with the
  time of the store's latest record (the run's event clock). With a service running they hand the
  command over through ``DIR/commands/``; the service applies it at its next event and records it
  with that event's cursor. ``--wait SECONDS`` waits for the service's answer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import click

from weltklassebot.cli.options import (
    config_option,
    json_option,
    print_json,
    resolve_state_dir,
)
from weltklassebot.errors import RuntimeFailure, UnusableInput, VerdictFailed

_STATE_DIR_OPTION = click.option(
    "--state-dir", "state_dir", type=click.Path(path_type=Path), default=None,
    help="State directory of the run (default: $WELTKLASSE_STATE_DIR, else [state] dir in the "
         "config, else /var/lib/weltklassebot/state).",
)
_WAIT_OPTION = click.option(
    "--wait", "wait_s", type=click.FloatRange(min=0), default=0.0, show_default=True,
    metavar="SECONDS",
    help="With a running service: wait this long for it to apply the command (0: do not wait).",
)


@click.group(name="risk", help="Show or change the risk state (ACTIVE, COOL, HALTED) of a run.")
def command() -> None:
    """Group of the risk operator commands."""


@command.command("status")
@_STATE_DIR_OPTION
@config_option
@json_option
def status(state_dir: Path | None, config_file: Path | None, as_json: bool) -> None:
    """Show the risk state recorded in the state directory (reads only; safe while running)."""
    from weltklassebot.risk.operator import pending_commands, service_holder

    directory = resolve_state_dir(state_dir, config_file)
    _require_dir(directory)
    recovered = _read_risk(directory)
    holder = service_holder(directory)
    report = {
        "state_dir": str(directory),
        **recovered.summary(),
        "service_pid": holder,
        "service_running": holder is not None,
        "pending_commands": pending_commands(directory),
    }
    if as_json:
        print_json(report)
        return
    _print_status(report)


@command.command("halt")
@click.option("--reason", required=True, help="Why trading is halted (recorded with the halt).")
@_STATE_DIR_OPTION
@_WAIT_OPTION
@config_option
@json_option
def halt(reason: str, state_dir: Path | None, wait_s: float, config_file: Path | None,
         as_json: bool) -> None:
    """Kill switch: move risk to HALTED (only position-reducing orders pass)."""
    if not reason.strip():
        raise click.BadParameter("give a non-empty reason", param_hint="--reason")
    _operate("halt", resolve_state_dir(state_dir, config_file), reason=reason.strip(),
             keep_peak=False, wait_s=wait_s, as_json=as_json)


@command.command("resume")
@click.option("--keep-peak", is_flag=True,
              help="Keep the peak equity (default: reset it to current equity).")
@click.option("--reason", default="", help="Note recorded with the resume.")
@_STATE_DIR_OPTION
@_WAIT_OPTION
@config_option
@json_option
def resume(keep_peak: bool, reason: str, state_dir: Path | None, wait_s: float,
           config_file: Path | None, as_json: bool) -> None:
    """Leave HALTED for ACTIVE; the drawdown peak resets to current equity unless --keep-peak."""
    _operate("resume", resolve_state_dir(state_dir, config_file), reason=reason.strip(),
             keep_peak=keep_peak, wait_s=wait_s, as_json=as_json)


# --- helpers ---------------------------------------------------------------------------------


def _require_dir(directory: Path) -> None:
    if not directory.is_dir():
        raise UnusableInput(
            f"state directory {directory} does not exist. Pass the service's --state-dir (or set "
            "WELTKLASSE_STATE_DIR); the service creates the directory on its first start."
        )


def _read_risk(directory: Path) -> Any:
    from weltklassebot.state.recovery import recover

    return _risk_of(directory, recover(directory, kinds=None),
                    f". Run `python -m cli state verify {directory}` and see "
                    "docs/state-store.md, Repair.")


def _risk_of(directory: Path, result: Any, advice: str) -> Any:
    """The risk view of a store's recovery; malformed risk records are a corrupt store."""
    from weltklassebot.risk.recovery import recover_risk

    try:
        return recover_risk(
            result.checkpoint, result.records, checkpoint_ts_ns=result.checkpoint_ts_ns
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise VerdictFailed(
            f"state store {directory}: the risk records cannot be read ({exc}){advice}"
        ) from None


def _operator_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return str(os.getuid())


def _operate(action: Literal["halt", "resume"], directory: Path, *, reason: str,
             keep_peak: bool, wait_s: float, as_json: bool) -> None:
    import time

    from weltklassebot.risk.operator import OperatorCommand, ServiceLockHeld, acquire_service_lock

    _require_dir(directory)
    command_ = OperatorCommand.new(
        action, issued_ns=time.time_ns(), reason=reason, keep_peak=keep_peak,
        user=_operator_user(),
    )
    try:
        lock = acquire_service_lock(directory, create=False)
    except ServiceLockHeld as held:
        _hand_over(directory, command_, held.holder, wait_s=wait_s, as_json=as_json)
        return
    with lock:
        report = _write_offline(directory, command_)
    if as_json:
        print_json(report)
        return
    if report["changed"]:
        click.echo(f"risk: {report['from_state']} -> {report['state']} "
                   f"(no service running; written to the state store at {directory}, "
                   f"sequence {report['seq']}).")
        if action == "halt":
            click.echo("A service started on this directory starts HALTED; only "
                       "position-reducing orders pass until `python -m cli risk resume`.")
        else:
            peak = report["transition"]["peak_equity"]
            if peak is None:
                click.echo("Peak equity for the drawdown cap: not known yet (no equity "
                           "recorded); it starts at the next equity the service records.")
            else:
                click.echo(f"Peak equity for the drawdown cap: {_money(peak, report)}"
                           + (" (kept)." if keep_peak
                              else " (reset to the last recorded equity)."))
    else:
        click.echo(f"risk: {report['message']} (recorded as an operator command, "
                   f"sequence {report['seq']}).")


def _write_offline(directory: Path, command_: Any) -> dict[str, Any]:
    """No service: append the transition and an audit record to the store ourselves."""
    from weltklassebot.risk.recovery import (
        OPERATOR_COMMAND_KIND,
        RISK_TRANSITION_KIND,
        operator_transition,
    )
    from weltklassebot.state.codec import KNOWN_KINDS
    from weltklassebot.state.jsonl_store import JsonlStore, StoreConfig
    from weltklassebot.state.recovery import recover

    _store_logs_to_stderr()
    survey = recover(directory, kinds=None)
    if survey.segments and survey.segments[-1].records == 0 and survey.record_count > 0:
        raise RuntimeFailure(
            f"state store {directory}: the newest segment holds no complete record (a rotation "
            "was cut short), so the command cannot be written without the service's state. "
            "Start the service (it repairs this at start-up) and hand the command to it, or run "
            f"`python -m cli state verify {directory}`."
        )

    def checkpoint() -> dict[str, Any]:
        # Only reached for a store with no segment yet: nothing to summarise.
        return {"origin": "operator-cli", "risk": None}

    config = StoreConfig(
        max_segment_bytes=2**62, max_segment_age_ns=None,
        kinds=KNOWN_KINDS | frozenset(survey.kind_counts),
    )
    store = JsonlStore.open(directory, config, checkpoint)
    try:
        if store.open_error is not None:
            raise store.open_error
        recovered = _risk_of(directory, store.recovery,
                             f"; nothing was written. Run `python -m cli state verify "
                             f"{directory}`.")
        ts_ns = recovered.last_ts_ns or 0
        transition = operator_transition(
            recovered, command_.action, ts_ns=ts_ns, reason=command_.reason,
            keep_peak=command_.keep_peak, user=command_.user,
        )
        before = recovered.state
        after = before if transition is None else transition.to_state
        if transition is not None:
            store.append(RISK_TRANSITION_KIND, transition.to_payload(), ts_ns, durable=True)
        if transition is not None:
            message = f"{before.value} -> {after.value}"
        elif command_.action == "halt":
            message = "already HALTED; nothing changed"
        else:
            message = f"not HALTED (state {before.value}); nothing to resume"
        audit = {
            "ok": True,
            "command": command_.to_payload(),
            "changed": transition is not None,
            "from_state": before.value,
            "state": after.value,
            "ts_ns": ts_ns,
            "cursor": None,
            "message": message,
            "applied_by": "operator-cli",
        }
        seq = store.append(OPERATOR_COMMAND_KIND, audit, ts_ns, durable=True)
    finally:
        store.close()
    return {
        "state_dir": str(directory),
        "mode": "offline",
        **audit,
        "seq": seq,
        "transition": None if transition is None else transition.to_payload(),
    }


def _store_logs_to_stderr() -> None:
    """Keep stdout for the command's result: the store's warnings go to stderr, info is dropped."""
    import os

    os.environ.setdefault("WELTKLASSE_LOG_LEVEL", "WARNING")


def _hand_over(directory: Path, command_: Any, holder: int | None, *, wait_s: float,
               as_json: bool) -> None:
    from weltklassebot.risk.operator import wait_for_ack, write_command

    try:
        path = write_command(directory, command_)
    except OSError as exc:
        raise RuntimeFailure(
            f"could not hand the command to the service running on {directory}: cannot write "
            f"{directory / 'commands'} ({exc.strerror or exc}). Run this as the service user."
        ) from None
    who = f"pid {holder}" if holder else "a running service"
    report: dict[str, Any] = {
        "state_dir": str(directory),
        "mode": "handed_over",
        "service_pid": holder,
        "command": command_.to_payload(),
        "command_file": str(path),
        "ack": None,
    }
    if not as_json:
        click.echo(f"risk {command_.action}: handed over to the service ({who}) as command "
                   f"{command_.command_id}; it takes effect at the service's next event.")
    if wait_s <= 0:
        if as_json:
            print_json(report)
        return
    answer = wait_for_ack(directory, command_.command_id, wait_s)
    report["ack"] = answer
    if as_json:
        print_json(report)
    if answer is None:
        raise RuntimeFailure(
            f"the service on {directory} did not answer command {command_.command_id} within "
            f"{wait_s:g} s. The command stays queued and takes effect at the next event; check "
            f"with `python -m cli risk status --state-dir {directory}`."
        )
    if not answer.get("ok"):
        raise RuntimeFailure(
            f"the service on {directory} could not apply command {command_.command_id}: "
            f"{answer.get('error', 'no reason given')}. The risk state is unchanged."
        )
    if not as_json:
        click.echo(f"service answered: {answer.get('message', answer.get('state'))} "
                   f"(event cursor {answer.get('cursor')}).")


def _money(value: int | None, report: dict[str, Any]) -> str:
    """Money units as a decimal amount when the run's money scale is known."""
    from weltklassebot.core.decimal import format_scaled

    scale = report.get("money_scale")
    if value is None:
        return "unknown"
    return format_scaled(value, scale) if isinstance(scale, int) else f"{value} money units"


def _print_status(report: dict[str, Any]) -> None:
    from weltklassebot.core.timeutil import ns_to_iso

    def money(value: int | None) -> str:
        return _money(value, report)

    def when(ts: int | None) -> str:
        return "-" if ts is None else ns_to_iso(ts)

    click.echo(f"risk state:   {report['state']}")
    if report["reason"] is not None:
        who = report["source"] + (f" ({report['user']})" if report.get("user") else "")
        click.echo(f"since:        {when(report['since_ns'])}  reason: {report['reason']}"
                   f" - {report['detail']}  by {who}"
                   + (f"  cursor {report['cursor']}" if report["cursor"] is not None else ""))
    else:
        click.echo("since:        start (no risk transition recorded)")
    if report["cool_until_ns"] is not None:
        click.echo(f"cool until:   {when(report['cool_until_ns'])} (event clock)")
    dd = report["drawdown_ratio"]
    cap = report["drawdown_cap_ratio"]
    click.echo(f"equity:       {money(report['equity'])}  peak {money(report['peak_equity'])}")
    click.echo("drawdown:     " + ("unknown" if dd is None else f"{dd * 100:.4g} %")
               + "  cap " + ("off" if cap is None else f"{cap * 100:.4g} %"))
    denials = report["denials_at_checkpoint"]
    if denials:
        click.echo("denials:      " + ", ".join(f"{k}={v}" for k, v in denials.items())
                   + " (at last checkpoint)")
    click.echo(f"last event:   {when(report['last_event_ts_ns'])}")
    if report["service_running"]:
        pid = report["service_pid"]
        click.echo(f"service:      running (pid {pid})" if pid else "service:      running")
    else:
        click.echo("service:      not running (halt/resume write the store directly)")
    if report["pending_commands"]:
        click.echo("pending:      " + ", ".join(report["pending_commands"])
                   + " (applied at the service's next event)")
