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
- The operator's wall-clock time is read here (the edge) and recorded in the ``operator_command``
  record only; ``status`` shows it beside the event clock.
- Every message says what happened in this process: what was written (or that nothing was), what
  the store says afterwards, and the fix. The service's own wording is never reused here.
"""

from __future__ import annotations

import contextlib
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
from weltklassebot.errors import RuntimeFailure, UnusableInput, VerdictFailed, WeltklasseError

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
    from weltklassebot.service.operator import pending_commands, service_holder

    directory = resolve_state_dir(state_dir, config_file)
    _require_dir(directory)
    recovered, has_store = _read_risk(directory)
    holder = service_holder(directory)
    report = {
        "state_dir": str(directory),
        "store": has_store,
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


def _read_risk(directory: Path) -> tuple[Any, bool]:
    """The risk view of the store in ``directory`` and whether there is a store at all."""
    from weltklassebot.state.recovery import recover

    result = recover(directory, kinds=None)
    return _risk_of(directory, result,
                    f". Run `python -m cli state verify {directory}` and see "
                    "docs/state-store.md, Repair."), bool(result.segments)


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


class CommandFailed(WeltklasseError):
    """An operator command that failed; the message says what did and did not happen."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _operate(action: Literal["halt", "resume"], directory: Path, *, reason: str,
             keep_peak: bool, wait_s: float, as_json: bool) -> None:
    import time

    from weltklassebot.service.operator import (
        OperatorCommand,
        ServiceLockHeld,
        StateDirUnwritable,
        acquire_service_lock,
    )

    _require_dir(directory)
    # The operator's wall clock is read here, at the edge, and only recorded for the audit trail
    # and `risk status`; the risk core sees nothing but the run's event clock.
    command_ = OperatorCommand.new(
        action, issued_ns=time.time_ns(), reason=reason, keep_peak=keep_peak,
        user=_operator_user(),
    )
    try:
        lock = acquire_service_lock(directory, create=False)
    except ServiceLockHeld as held:
        _hand_over(directory, command_, held.holder, wait_s=wait_s, as_json=as_json)
        return
    except StateDirUnwritable as exc:
        raise _nothing_written(
            action, directory, _io_cause(exc.operation, exc.path, exc.errno), exc.errno,
            says=_stored_says(action, directory), service=_service_note(directory),
        ) from None
    with lock:
        report = _write_offline(directory, command_, wall_ns=time.time_ns())
    _print_offline(action, directory, report, keep_peak=keep_peak, as_json=as_json)
    if report["error"] is not None:
        raise CommandFailed(report["error"], 3)


def _print_offline(action: str, directory: Path, report: dict[str, Any], *, keep_peak: bool,
                   as_json: bool) -> None:
    if as_json:
        print_json(report)
        return
    where = ("created the state store in" if report["created_store"]
             else "written to the state store at")
    if report["changed"]:
        click.echo(f"risk: {report['from_state']} -> {report['state']} (no service running; "
                   f"{where} {directory}, sequence {report['transition_seq']}).")
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
    elif report["seq"] is not None:
        click.echo(f"risk: {report['message']} (no service running; recorded as an operator "
                   f"command in {directory}, sequence {report['seq']}).")
    pending = report["pending_commands"]
    if pending:
        click.echo(f"Note: {len(pending)} command(s) handed to an earlier service still wait in "
                   f"{directory / 'commands'} ({', '.join(pending)}); a service started on this "
                   "directory applies them at its first event, after this one.")


def _write_offline(directory: Path, command_: Any, *, wall_ns: int) -> dict[str, Any]:
    """No service: append the transition and an audit record to the store ourselves.

    Raises :class:`CommandFailed` (or a store error with its own exit status, prefixed) when
    nothing was written. When the transition was written but its audit record was not, returns
    the report with ``error`` set: the state did change, and the caller must say so.
    """
    from weltklassebot.risk.recovery import (
        OFFLINE_SOURCE,
        OPERATOR_COMMAND_KIND,
        RISK_TRANSITION_KIND,
        operator_transition,
    )
    from weltklassebot.service.operator import outcome_message, pending_commands
    from weltklassebot.state.codec import KNOWN_KINDS
    from weltklassebot.state.errors import StoreLocked, StoreWriteError
    from weltklassebot.state.jsonl_store import JsonlStore, StoreConfig
    from weltklassebot.state.recovery import recover

    action = command_.action
    _store_logs_to_stderr()
    try:
        survey = recover(directory, kinds=None)
    except WeltklasseError as exc:
        raise CommandFailed(f"risk {action}: nothing was written. {exc.message}",
                            exc.exit_code) from None
    survey_risk = _risk_of(directory, survey, f"; nothing was written. Run `python -m cli state "
                                              f"verify {directory}`.")
    if survey.segments and survey.segments[-1].records == 0 and survey.record_count > 0:
        raise CommandFailed(
            f"risk {action}: nothing was written. The newest segment of the state store at "
            f"{directory} holds no complete record (a rotation was cut short), and only a "
            f"service can write its next checkpoint. {_says(action, survey_risk.state.value)} "
            "Start the service (it repairs this at start-up) and run the command again, which "
            f"then hands it to the service; `python -m cli state verify {directory}` shows "
            "the segment.", 3)

    def checkpoint() -> dict[str, Any]:
        # Only reached for a store with no segment yet: nothing to summarise.
        return {"origin": OFFLINE_SOURCE, "risk": None}

    config = StoreConfig(
        max_segment_bytes=2**62, max_segment_age_ns=None,
        kinds=KNOWN_KINDS | frozenset(survey.kind_counts),
    )
    try:
        store = JsonlStore.open(directory, config, checkpoint)
    except StoreLocked as exc:
        holder = getattr(exc, "holder", None) or "another process"
        raise CommandFailed(
            f"risk {action}: nothing was written. The state store at {directory} is being "
            f"written by {holder} (it holds store.lock, while no service holds service.lock: "
            f"a maintenance command such as `state repair`). "
            f"{_says(action, survey_risk.state.value)} Wait until it has finished, then run "
            f"the same `python -m cli risk {action}` command again.", exc.exit_code) from None
    except WeltklasseError as exc:
        raise CommandFailed(f"risk {action}: nothing was written. {exc.message}",
                            exc.exit_code) from None
    has_store = bool(survey.segments)
    transition_seq: int | None = None
    try:
        recovered = _risk_of(directory, store.recovery,
                             f"; nothing was written. Run `python -m cli state verify "
                             f"{directory}`.")
        before = recovered.state
        if store.open_error is not None:
            failure = store.open_error
            raise _nothing_written(
                action, directory, _io_cause(failure.operation, failure.path, failure.errno),
                failure.errno, says=_says(action, before.value if has_store else None),
                service=_NO_SERVICE)
        ts_ns = recovered.last_ts_ns or 0
        transition = operator_transition(
            recovered, action, ts_ns=ts_ns, reason=command_.reason,
            keep_peak=command_.keep_peak, user=command_.user, source=OFFLINE_SOURCE,
        )
        after = before if transition is None else transition.to_state
        message = outcome_message(action, before, after, changed=transition is not None)
        try:
            if transition is not None:
                transition_seq = store.append(RISK_TRANSITION_KIND, transition.to_payload(),
                                              ts_ns, durable=True)
            audit = {
                "ok": True,
                "command": command_.to_payload(),
                "changed": transition is not None,
                "from_state": before.value,
                "state": after.value,
                "ts_ns": ts_ns,
                "cursor": None,
                "applied_wall_ns": wall_ns,
                "message": message,
                "applied_by": OFFLINE_SOURCE,
            }
            seq: int | None = store.append(OPERATOR_COMMAND_KIND, audit, ts_ns, durable=True)
            error = None
        except StoreWriteError as exc:
            cause = _io_cause(exc.operation, exc.path, exc.errno)
            if transition_seq is None:
                raise _nothing_written(
                    action, directory, cause, exc.errno,
                    says=_says(action, before.value if has_store else None), service=_NO_SERVICE,
                ) from None
            # The transition is durable and in effect for the store; only the audit record of
            # who issued it and when is missing. Say exactly that.
            seq = None
            error = (
                f"risk {action}: {message} was written to the state store at {directory} "
                f"(sequence {transition_seq}), so the store says {after.value}; but the audit "
                f"record of the command (operator_command: who issued it and when) could not be "
                f"written: {cause}. The {action} stands; `risk status` shows no wall-clock time "
                f"for it. {_write_fix(exc.errno, directory)} Nothing needs to be run again."
            )
            audit = {"ok": False, "command": command_.to_payload(), "changed": True,
                     "from_state": before.value, "state": after.value, "ts_ns": ts_ns,
                     "cursor": None, "applied_wall_ns": wall_ns, "message": message,
                     "applied_by": OFFLINE_SOURCE}
    finally:
        with contextlib.suppress(StoreWriteError):  # everything was written durably, or failed
            store.close()
    return {
        "state_dir": str(directory),
        "mode": "offline",
        **audit,
        "seq": seq,
        "transition_seq": transition_seq,
        "transition": None if transition is None else transition.to_payload(),
        "created_store": not has_store,
        "pending_commands": pending_commands(directory),
        "error": error,
    }


_NO_SERVICE = "No service is running on this directory."


def _io_cause(operation: str, path: Path, code: int | None) -> str:
    from weltklassebot.service.operator import errno_name

    detail = os.strerror(code) if code else "unknown error"
    return f"could not {operation} {path.name}: {errno_name(code)} ({detail})"


def _write_fix(code: int | None, directory: Path) -> str:
    from weltklassebot.service.operator import write_fix

    return write_fix(code, directory)


def _says(action: str, state: str | None) -> str:
    """What the store says after a command that wrote nothing, and what that means for it."""
    if state is None:
        return "There is no state store in it yet, so nothing records a halt."
    if action == "halt":
        if state == "HALTED":
            return "The store still says HALTED (as before this command)."
        return f"The store still says {state}: this command halted nothing."
    if state == "HALTED":
        return ("The store still says HALTED: this command resumed nothing, and a service "
                "started on this directory starts HALTED.")
    return f"The store still says {state} (nothing to resume)."


def _nothing_written(action: str, directory: Path, cause: str, code: int | None, *,
                     says: str, service: str) -> CommandFailed:
    from weltklassebot.service.operator import is_permission_error

    return CommandFailed(
        f"risk {action}: nothing was written to the state store at {directory}: {cause}. "
        f"{says} {service} {_write_fix(code, directory)} Then run the same "
        f"`python -m cli risk {action}` command again.",
        2 if is_permission_error(code) else 3,
    )


def _stored_says(action: str, directory: Path) -> str:
    """:func:`_says` for the store as it is on disk now (read only), or why it cannot be read."""
    from weltklassebot.state.recovery import recover

    try:
        result = recover(directory, kinds=None)
        state = _risk_of(directory, result, "").state.value if result.segments else None
    except WeltklasseError as exc:
        return (f"What the store says could not be read ({exc.message.rstrip('.')}); "
                f"`python -m cli risk status --state-dir {directory}` shows it.")
    return _says(action, state)


def _service_note(directory: Path) -> str:
    from weltklassebot.service.operator import service_holder

    holder = service_holder(directory)
    if holder is None:
        return _NO_SERVICE
    return (f"A service (pid {holder}) is running on it; it holds its own state, which "
            "`python -m cli risk status` shows." if holder else
            "A service is running on this directory; `python -m cli risk status` shows its state.")


def _store_logs_to_stderr() -> None:
    """Keep stdout for the command's result: the store's warnings go to stderr, info is dropped."""
    os.environ.setdefault("WELTKLASSE_LOG_LEVEL", "WARNING")


def _hand_over(directory: Path, command_: Any, holder: int | None, *, wait_s: float,
               as_json: bool) -> None:
    from weltklassebot.service.operator import (
        StateDirUnwritable,
        is_permission_error,
        is_queued,
        service_holder,
        wait_for_ack,
        write_command,
    )

    action = command_.action
    who = f"the service running on {directory}" + (f" (pid {holder})" if holder else "")
    try:
        path = write_command(directory, command_)
    except StateDirUnwritable as exc:
        cause = _io_cause(exc.operation, exc.path, exc.errno)
        if exc.written:
            raise CommandFailed(
                f"risk {action}: handed over to {who} as {exc.path}, but {cause}: the service "
                "reads the command before its next event, yet the file may not survive a crash "
                f"of this machine. Check with `python -m cli risk status --state-dir {directory}` "
                "that it took effect.", 3) from None
        raise CommandFailed(
            f"risk {action}: not handed over: in {directory / 'commands'}, {cause}. Nothing "
            f"reached {who}, so this command changed nothing. "
            f"{_write_fix(exc.errno, directory)} Then run the same `python -m cli risk "
            f"{action}` command again.",
            2 if is_permission_error(exc.errno) else 3) from None
    report: dict[str, Any] = {
        "state_dir": str(directory),
        "mode": "handed_over",
        "service_pid": holder,
        "command": command_.to_payload(),
        "command_file": str(path),
        "ack": None,
    }
    if not as_json:
        then = (f" Waiting up to {wait_s:g} s for its answer." if wait_s > 0 else
                f" `python -m cli risk status --state-dir {directory}` lists it as pending until "
                "then (--wait SECONDS waits for the answer).")
        click.echo(f"risk {action}: handed over to {who} as {path}. Nothing has changed yet: "
                   f"the service applies it before its next event.{then}")
    if wait_s <= 0:
        if as_json:
            print_json(report)
        return
    answer = wait_for_ack(directory, command_.command_id, wait_s)
    report["ack"] = answer
    if as_json:
        print_json(report)
    if answer is None:
        if service_holder(directory) is None:
            where = (f"The service is no longer running; the command still waits in {path} and "
                     "a service started on this directory applies it at its first event. "
                     if is_queued(directory, command_.command_id) else
                     "The service is no longer running and took the command from the queue "
                     "without answering; ")
        elif is_queued(directory, command_.command_id):
            where = (f"It has not read the command yet (it reads commands before each event; "
                     f"without events, e.g. while the market is closed, it waits): the command "
                     f"still waits in {path} and nothing has changed yet. ")
        else:
            where = "It has taken the command from the queue but not answered yet; "
        raise RuntimeFailure(
            f"risk {action}: {who} did not answer command {command_.command_id} within "
            f"{wait_s:g} s. {where}`python -m cli risk status --state-dir {directory}` shows "
            "whether it took effect."
        )
    if not answer.get("ok"):
        state = answer.get("state")
        after = (f"It reports risk state {state}." if isinstance(state, str) else
                 f"This command changed nothing; `python -m cli risk status --state-dir "
                 f"{directory}` shows the state.")
        raise RuntimeFailure(
            f"risk {action}: {who} did not apply command {command_.command_id}: "
            f"{str(answer.get('error', 'no reason given')).rstrip('.')}. {after}"
        )
    if not as_json:
        wall = answer.get("applied_wall_ns")
        when = f" at {_wall_iso(wall)}" if isinstance(wall, int) and wall > 0 else ""
        click.echo(f"The service applied it{when}: {answer.get('message', answer.get('state'))} "
                   f"(event cursor {answer.get('cursor')}).")


def _wall_iso(ns: int) -> str:
    """An operator's wall-clock time: milliseconds are plenty for a person."""
    from weltklassebot.core.timeutil import ns_to_iso

    return ns_to_iso(ns - ns % 1_000_000)


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

    events = report["last_event_ts_ns"] is not None
    click.echo(f"risk state:   {report['state']}")
    if not report["store"]:
        click.echo(f"store:        none in {report['state_dir']} yet (nothing recorded; a service "
                   "started there starts ACTIVE)")
    if report["reason"] is not None:
        # Two clocks: the operator's wall clock (recorded with an operator command) and the
        # run's event clock (what the engine and replay use). Show each for what it is.
        cursor = "" if report["cursor"] is None else f", cursor {report['cursor']}"
        event = (f"{when(report['since_ns'])}{cursor}" if events
                 else "before the first event (none recorded yet)")
        if report["since_wall_ns"] is not None:
            how = ("written with no service running" if report["since_offline"]
                   else "applied by the service")
            click.echo(f"since:        {_wall_iso(report['since_wall_ns'])} (wall clock; operator "
                       f"command {how})")
            click.echo(f"event clock:  {event}")
        else:
            click.echo(f"since:        {event} (event clock)")
        who = report["source"] + (f" ({report['user']})" if report.get("user") else "")
        click.echo(f"reason:       {report['reason']} - {report['detail']}  by {who}")
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
    click.echo("last event:   " + (when(report["last_event_ts_ns"]) if events
                                   else "none recorded yet"))
    last = report["last_operator_command"]
    if last is not None:
        user = f" by {last['user']}" if last["user"] else ""
        at = f" at {_wall_iso(last['wall_ns'])}" if last["wall_ns"] is not None else ""
        click.echo(f"last command: {last['action']}{user}{at}: {last['message']}")
    running = report["service_running"]
    if running:
        pid = report["service_pid"]
        click.echo(f"service:      running (pid {pid})" if pid else "service:      running")
    else:
        click.echo("service:      not running (halt/resume write the store directly)")
    if report["pending_commands"]:
        click.echo("pending:      " + ", ".join(report["pending_commands"])
                   + (" (applied at the service's next event)" if running else
                      " (no service running: applied at the first event after one starts)"))
