"""What ``risk halt`` / ``risk resume`` print is what happened in that process.

Real file systems where it matters (a full tmpfs, a read-only remount): the exact message, the
exit status (DESIGN section 3: a write failure is a runtime failure, 3) and ``risk status``
afterwards agreeing with it, byte for byte nothing written. Paths a real file system cannot
produce on demand (a transition written but not its audit record, a service that does not
answer, a refused command, a permission error while running as root) go through seams in-process.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.cli import REPO, cli_env
from support.tmpfs import mounted_tmpfs
from weltklassebot.core.timeutil import ns_to_iso


def risk(*args: str | Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "cli", "risk", *(str(a) for a in args)],
        cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=60, check=False,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def status(state_dir: Path) -> dict[str, Any]:
    result = risk("status", "--state-dir", state_dir, "--json")
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def error_paragraph(stderr: str) -> str:
    """The CLI's own message (the store's JSON log lines on stderr are not it)."""
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, stderr
    return lines[0][len("error: "):]


def segments(state_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(state_dir.glob("segment-*.jsonl"))}


def newest_segment(state_dir: Path) -> str:
    return sorted(state_dir.glob("segment-*.jsonl"))[-1].name


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    with mounted_tmpfs(tmp_path / "mnt", "size=64k") as target:
        yield target


def _state(tmpfs: Path, start: str) -> Path:
    """A state directory on the tmpfs whose store says ``start`` (written by the CLI itself)."""
    state_dir = tmpfs / "state"
    state_dir.mkdir()
    assert risk("halt", "--reason", "set-up", "--state-dir", state_dir).returncode == 0
    if start == "ACTIVE":
        assert risk("resume", "--state-dir", state_dir).returncode == 0
    assert status(state_dir)["state"] == start
    return state_dir


def _fill(state_dir: Path) -> None:
    """Leave no byte for another record: ballast until ENOSPC, then the store's last page."""
    from weltklassebot.state.config import StoreConfig
    from weltklassebot.state.jsonl_store import JsonlStore, StoreWriteError

    _fill_ballast_only(state_dir.parent)
    store = JsonlStore.open(state_dir, StoreConfig(max_segment_bytes=1 << 30), dict)
    try:
        code = _first_failure(lambda n: store.append("cursor", {"n": n}, 0), StoreWriteError)
    finally:
        store.close()
    assert code == errno.ENOSPC


def _first_failure(step: Callable[[int], object], kind: type[Exception]) -> int | None:
    """Repeat ``step`` until it raises ``kind``; that exception's errno (None: it never did)."""
    for n in range(1_000_000):
        try:
            step(n)
        except kind as exc:
            return getattr(exc, "errno", None)
    return None


def _remount(target: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(target)], check=True,
                   capture_output=True)


def test_full_disk_halt_says_nothing_was_written_and_the_store_still_says_active(
        tmpfs: Path) -> None:
    state_dir = _state(tmpfs, "ACTIVE")
    _fill(state_dir)
    before = segments(state_dir)
    result = risk("halt", "--reason", "desk call", "--state-dir", state_dir)
    assert result.returncode == 3
    assert result.stdout == ""
    assert error_paragraph(result.stderr) == (
        f"risk halt: nothing was written to the state store at {state_dir}: could not append "
        f"to {newest_segment(state_dir)}: ENOSPC (No space left on device). The store still "
        "says ACTIVE: this command halted nothing. No service is running on this directory. "
        f"Free space on the volume holding {state_dir} (`df -h {state_dir}`). Then run the "
        "same `python -m cli risk halt` command again."
    )
    assert "trading stays HALTED" not in result.stderr
    assert segments(state_dir) == before
    assert status(state_dir)["state"] == "ACTIVE"


def test_full_disk_resume_says_nothing_was_written_and_the_store_still_says_halted(
        tmpfs: Path) -> None:
    state_dir = _state(tmpfs, "HALTED")
    _fill(state_dir)
    before = segments(state_dir)
    result = risk("resume", "--state-dir", state_dir)
    assert result.returncode == 3
    assert result.stdout == ""
    assert error_paragraph(result.stderr) == (
        f"risk resume: nothing was written to the state store at {state_dir}: could not "
        f"append to {newest_segment(state_dir)}: ENOSPC (No space left on device). The store "
        "still says HALTED: this command resumed nothing, and a service started on this "
        "directory starts HALTED. No service is running on this directory. Free space on the "
        f"volume holding {state_dir} (`df -h {state_dir}`). Then run the same "
        "`python -m cli risk resume` command again."
    )
    assert segments(state_dir) == before
    assert status(state_dir)["state"] == "HALTED"
    # and once there is space again, the same command works and says so
    (tmpfs / "ballast").unlink()
    again = risk("resume", "--state-dir", state_dir)
    assert again.returncode == 0, again.stderr
    assert "HALTED -> ACTIVE" in again.stdout
    assert status(state_dir)["state"] == "ACTIVE"


@pytest.mark.parametrize(("action", "start"), [("halt", "ACTIVE"), ("resume", "HALTED")])
def test_read_only_file_system_is_a_runtime_failure_that_writes_nothing(
        tmpfs: Path, action: str, start: str) -> None:
    state_dir = _state(tmpfs, start)
    before = segments(state_dir)
    _remount(tmpfs, "ro")
    try:
        args = ("halt", "--reason", "ro") if action == "halt" else ("resume",)
        result = risk(*args, "--state-dir", state_dir)
        says = ("The store still says ACTIVE: this command halted nothing." if action == "halt"
                else "The store still says HALTED: this command resumed nothing, and a service "
                     "started on this directory starts HALTED.")
        assert result.returncode == 3
        assert result.stdout == ""
        assert error_paragraph(result.stderr) == (
            f"risk {action}: nothing was written to the state store at {state_dir}: could not "
            f"open service.lock: EROFS (Read-only file system). {says} No service is running "
            f"on this directory. The file system holding {state_dir} is read-only: check "
            "`dmesg` for disk errors and remount it read-write. Then run the same "
            f"`python -m cli risk {action}` command again."
        )
        assert status(state_dir)["state"] == start
    finally:
        _remount(tmpfs, "rw")
    assert segments(state_dir) == before


def test_full_disk_hand_over_says_nothing_reached_the_service(
        tmpfs: Path, tmp_path: Path) -> None:
    state_dir = tmpfs / "state"
    service = _holding_service(state_dir, tmp_path)
    try:
        _fill_ballast_only(tmpfs)
        result = risk("halt", "--reason", "x", "--state-dir", state_dir)
        assert result.returncode == 3
        assert result.stdout == ""
        message = error_paragraph(result.stderr)
        prefix = (f"risk halt: not handed over: in {state_dir / 'commands'}, could not write ")
        assert message.startswith(prefix), message
        assert message.endswith(
            ".json: ENOSPC (No space left on device). Nothing reached the service running on "
            f"{state_dir} (pid {service.pid}), so this command changed nothing. Free space on "
            f"the volume holding {state_dir} (`df -h {state_dir}`). Then run the same "
            "`python -m cli risk halt` command again."
        ), message
        assert os.listdir(state_dir / "commands") == []      # no command, no temporary
        report = status(state_dir)
        assert report["pending_commands"] == []
        assert report["service_running"] is True
    finally:
        _stop(service)


# --- (b) the operator's wall clock ------------------------------------------------------------


def test_status_after_an_offline_halt_shows_the_operators_wall_time(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    first = risk("halt", "--reason", "venue outage", "--state-dir", state_dir)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(
        f"risk: ACTIVE -> HALTED (no service running; created the state store in {state_dir}, "
        "sequence ")
    t0 = time.time_ns()
    halted = risk("resume", "--state-dir", state_dir)
    t1 = time.time_ns()
    assert halted.returncode == 0, halted.stderr
    report = status(state_dir)
    wall = report["since_wall_ns"]
    assert isinstance(wall, int)
    assert t0 <= wall <= t1
    assert report["since_offline"] is True
    assert report["since_ns"] == 0                  # the event clock is untouched by it
    assert report["last_event_ts_ns"] is None        # and no event has been recorded
    assert report["last_operator_command"]["action"] == "resume"
    text = risk("status", "--state-dir", state_dir).stdout
    shown = ns_to_iso(wall - wall % 1_000_000)
    assert f"since:        {shown} (wall clock; operator command written with no service " \
           "running)" in text
    assert "event clock:  before the first event (none recorded yet)" in text
    assert "last event:   none recorded yet" in text
    assert f"last command: resume by {report['user']} at {shown}: HALTED -> ACTIVE" in text
    assert "1970" not in text


def test_status_of_a_directory_without_a_store_says_so(tmp_path: Path) -> None:
    text = risk("status", "--state-dir", tmp_path)
    assert text.returncode == 0
    assert (f"store:        none in {tmp_path} yet (nothing recorded; a service started there "
            "starts ACTIVE)") in text.stdout
    assert status(tmp_path)["store"] is False


# --- seams: in-process, for paths no real file system produces on demand ----------------------


def run_inprocess(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    from weltklassebot.cli.main import run

    old = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as info:
            run(["risk", *(str(a) for a in args)])
    finally:
        signal.signal(signal.SIGTERM, old)
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 0), out, err


@pytest.fixture
def quiet_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Logging is configured once per process, by whichever test logs first: capture the store's
    # log events here so that only the command's own words reach stdout and stderr.
    from structlog.testing import capture_logs

    for name in list(os.environ):
        if name.startswith("WELTKLASSE_"):
            monkeypatch.delenv(name)
    with capture_logs():
        yield


@pytest.mark.usefixtures("quiet_env")
def test_transition_written_but_audit_record_not_says_the_halt_stands(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from weltklassebot.state.jsonl_store import JsonlStore, StoreWriteError

    real_append = JsonlStore.append

    def append(self: JsonlStore, kind: str, payload: dict[str, Any], ts_ns: int, *,
               durable: bool = True) -> int:
        if kind == "operator_command":
            segment = sorted(self.directory.glob("segment-*.jsonl"))[-1]
            raise StoreWriteError("append to", segment, OSError(errno.ENOSPC, "x"), seq=None)
        return real_append(self, kind, payload, ts_ns, durable=durable)

    monkeypatch.setattr(JsonlStore, "append", append)
    code, out, err = run_inprocess(capsys, "halt", "--reason", "x", "--state-dir", tmp_path)
    assert code == 3
    seg = sorted(tmp_path.glob("segment-*.jsonl"))[-1].name
    assert out.startswith("risk: ACTIVE -> HALTED (no service running; created the state store")
    assert err == (
        f"error: risk halt: ACTIVE -> HALTED was written to the state store at {tmp_path} "
        "(sequence 2), so the store says HALTED; but the audit record of the command "
        "(operator_command: who issued it and when) could not be written: could not append to "
        f"{seg}: ENOSPC (No space left on device). The halt stands; `risk status` shows no "
        f"wall-clock time for it. Free space on the volume holding {tmp_path} "
        f"(`df -h {tmp_path}`). Nothing needs to be run again.\n"
    )
    monkeypatch.setattr(JsonlStore, "append", real_append)
    code, out, _ = run_inprocess(capsys, "status", "--state-dir", tmp_path, "--json")
    report = json.loads(out)
    assert (code, report["state"], report["since_wall_ns"]) == (0, "HALTED", None)


@pytest.mark.usefixtures("quiet_env")
def test_store_that_opens_unwritable_says_nothing_was_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from weltklassebot.state.jsonl_store import JsonlStore, StoreWriteError

    assert run_inprocess(capsys, "halt", "--reason", "x", "--state-dir", tmp_path)[0] == 0
    real_open = JsonlStore.open.__func__  # type: ignore[attr-defined]

    def open_(cls: type[JsonlStore], *args: Any, **kwargs: Any) -> JsonlStore:
        store: JsonlStore = real_open(cls, *args, **kwargs)
        store.open_error = StoreWriteError("open", tmp_path / "segment-x.jsonl",
                                           OSError(errno.EIO, "x"), seq=None)
        return store

    monkeypatch.setattr(JsonlStore, "open", classmethod(open_))
    code, out, err = run_inprocess(capsys, "resume", "--state-dir", tmp_path)
    assert (code, out) == (3, "")
    assert err == (
        f"error: risk resume: nothing was written to the state store at {tmp_path}: could not "
        "open segment-x.jsonl: EIO (Input/output error). The store still says HALTED: this "
        "command resumed nothing, and a service started on this directory starts HALTED. No "
        f"service is running on this directory. Check the disk holding {tmp_path} (`dmesg`). "
        "Then run the same `python -m cli risk resume` command again.\n"
    )


@pytest.mark.usefixtures("quiet_env")
def test_permission_denied_is_exit_2_and_names_the_owner_to_run_as(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def deny(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).endswith("service.lock") and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    code, out, err = run_inprocess(capsys, "halt", "--reason", "x", "--state-dir", tmp_path)
    assert (code, out) == (2, "")
    assert err == (
        f"error: risk halt: nothing was written to the state store at {tmp_path}: could not "
        "create service.lock: EACCES (Permission denied). There is no state store in it yet, "
        "so nothing records a halt. No service is running on this directory. This user may not "
        f"write there: run the command as the owner of {tmp_path} (`ls -ld {tmp_path}`), e.g. "
        "with `sudo -u <owner>`, or as root. Then run the same `python -m cli risk halt` "
        "command again.\n"
    )


@pytest.mark.usefixtures("quiet_env")
def test_store_locked_by_a_maintenance_command(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from weltklassebot.state.config import StoreConfig
    from weltklassebot.state.jsonl_store import JsonlStore

    assert run_inprocess(capsys, "halt", "--reason", "x", "--state-dir", tmp_path)[0] == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time\n"
         f"fd = os.open({str(tmp_path / 'store.lock')!r}, os.O_RDWR)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('ready', flush=True)\ntime.sleep(30)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        code, out, err = run_inprocess(capsys, "resume", "--state-dir", tmp_path)
        assert (code, out) == (3, "")
        assert f"error: risk resume: nothing was written. The state store at {tmp_path} is " \
               "being written by " in err
        assert ("(it holds store.lock, while no service holds service.lock: a maintenance "
                "command such as `state repair`). The store still says HALTED: this command "
                "resumed nothing, and a service started on this directory starts HALTED. Wait "
                "until it has finished, then run the same `python -m cli risk resume` command "
                "again.\n") in err
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    with JsonlStore.open(tmp_path, StoreConfig(), dict) as store:
        assert [r.kind for r in store.recovery.records][-2:] == ["risk_transition",
                                                                 "operator_command"]
        assert store.recovery.records[-2].payload["to_state"] == "HALTED"


@pytest.mark.usefixtures("quiet_env")
def test_corrupt_store_halt_says_nothing_was_written_with_exit_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_inprocess(capsys, "halt", "--reason", "x", "--state-dir", tmp_path)[0] == 0
    assert run_inprocess(capsys, "resume", "--state-dir", tmp_path)[0] == 0
    segment = sorted(tmp_path.glob("segment-*.jsonl"))[-1]
    lines = segment.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b"kill_switch", b"kill_swatch")
    segment.write_bytes(b"".join(lines))
    before = segment.read_bytes()
    code, out, err = run_inprocess(capsys, "halt", "--reason", "y", "--state-dir", tmp_path)
    assert (code, out) == (1, "")
    assert err.startswith("error: risk halt: nothing was written. state store ")
    assert segment.read_bytes() == before


# --- hand-over: what the CLI says about a running service -------------------------------------


@pytest.fixture
def held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet_env: None) -> Path:
    """A state directory whose service lock is 'held' by pid 4242 (seam, no process)."""
    from weltklassebot.service import operator

    def acquire(directory: Path, **_: Any) -> Any:
        raise operator.ServiceLockHeld(Path(directory), 4242)

    monkeypatch.setattr(operator, "acquire_service_lock", acquire)
    return tmp_path


def test_time_out_while_the_command_still_waits(
        held: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from weltklassebot.service import operator

    monkeypatch.setattr(operator, "service_holder", lambda _d: 4242)
    code, out, err = run_inprocess(capsys, "halt", "--reason", "x", "--state-dir", held,
                                   "--wait", "0.1")
    (path,) = (held / "commands").glob("*.json")
    assert code == 3
    assert out == (f"risk halt: handed over to the service running on {held} (pid 4242) as "
                   f"{path}. Nothing has changed yet: the service applies it before its next "
                   "event. Waiting up to 0.1 s for its answer.\n")
    assert err == (
        f"error: risk halt: the service running on {held} (pid 4242) did not answer command "
        f"{path.stem} within 0.1 s. It has not read the command yet (it reads commands before "
        "each event; without events, e.g. while the market is closed, it waits): the command "
        f"still waits in {path} and nothing has changed yet. `python -m cli risk status "
        f"--state-dir {held}` shows whether it took effect.\n"
    )


def test_time_out_after_the_service_went_away(
        held: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from weltklassebot.service import operator

    monkeypatch.setattr(operator, "service_holder", lambda _d: None)
    code, _, err = run_inprocess(capsys, "resume", "--state-dir", held, "--wait", "0.1")
    (path,) = (held / "commands").glob("*.json")
    assert code == 3
    assert (f"within 0.1 s. The service is no longer running; the command still waits in "
            f"{path} and a service started on this directory applies it at its first event. "
            ) in err


def test_time_out_after_the_service_took_the_command(
        held: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from weltklassebot.service import operator

    monkeypatch.setattr(operator, "service_holder", lambda _d: 4242)
    monkeypatch.setattr(operator, "wait_for_ack", _taking_ack(held, None))
    code, _, err = run_inprocess(capsys, "halt", "--reason", "x", "--state-dir", held,
                                 "--wait", "5")
    assert code == 3
    assert "It has taken the command from the queue but not answered yet; " in err
    assert "nothing has changed yet" not in err


def _taking_ack(directory: Path, answer: dict[str, Any] | None) -> Any:
    def wait(_d: Path, command_id: str, _t: float) -> dict[str, Any] | None:
        (directory / "commands" / f"{command_id}.json").unlink()
        return answer
    return wait


def test_refused_command_reports_the_services_state(
        held: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from weltklassebot.service import operator

    answer = {"ok": False, "error": "state store cannot write: ENOSPC.", "state": "HALTED"}
    monkeypatch.setattr(operator, "wait_for_ack", _taking_ack(held, answer))
    code, _, err = run_inprocess(capsys, "resume", "--state-dir", held, "--wait", "5")
    assert code == 3
    assert err.endswith(": state store cannot write: ENOSPC. It reports risk state HALTED.\n")
    answer = {"ok": False, "error": "invalid command file: x"}
    monkeypatch.setattr(operator, "wait_for_ack", _taking_ack(held, answer))
    code, _, err = run_inprocess(capsys, "resume", "--state-dir", held, "--wait", "5")
    assert code == 3
    assert err.endswith(f": invalid command file: x. This command changed nothing; `python -m "
                        f"cli risk status --state-dir {held}` shows the state.\n")


def test_applied_command_reports_the_services_wall_time(
        held: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from weltklassebot.service import operator

    answer = {"ok": True, "message": "ACTIVE -> HALTED", "cursor": 17,
              "applied_wall_ns": 1_790_000_000_123_456_789}
    monkeypatch.setattr(operator, "wait_for_ack", _taking_ack(held, answer))
    code, out, _ = run_inprocess(capsys, "halt", "--reason", "x", "--state-dir", held,
                                 "--wait", "5")
    assert code == 0
    assert out.endswith("The service applied it at 2026-09-21T14:13:20.123Z: ACTIVE -> HALTED "
                        "(event cursor 17).\n")


# --- a real holding service for the tmpfs hand-over test --------------------------------------

HOLDING_SERVICE = """
import sys, time
from pathlib import Path
from weltklassebot.service.operator import acquire_service_lock
directory = Path(sys.argv[1])
lock = acquire_service_lock(directory)
print("ready", flush=True)
deadline = time.monotonic() + 60
while time.monotonic() < deadline and not (directory / "stop").exists():
    time.sleep(0.02)
"""


def _holding_service(state_dir: Path, tmp_path: Path) -> subprocess.Popen[str]:
    script = tmp_path / "holding_service.py"
    script.write_text(HOLDING_SERVICE)
    proc = subprocess.Popen([sys.executable, str(script), str(state_dir)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _fill_ballast_only(tmpfs: Path) -> None:
    fd = os.open(tmpfs / "ballast", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        code = _first_failure(lambda _n: os.write(fd, b"\0" * 4096), OSError)
    finally:
        os.close(fd)
    assert code == errno.ENOSPC


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()
