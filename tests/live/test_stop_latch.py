"""The service's stop request (SIGTERM, SIGINT) can arrive at any moment without hanging it.

A signal handler runs between two bytecodes of the main thread, also while that thread holds a
lock. The service used to wait on a ``threading.Event`` whose ``set()`` was the handler: a
signal landing inside the event's own ``wait()`` (which holds the event's lock around its
checks) left the handler waiting for that lock forever, and the service never exited. These
tests run the handler at every line the wait executes, and with real signals from another
process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from weltklassebot.config.model import BacktestConfig
from weltklassebot.config.service import LiveSettings
from weltklassebot.runs.live import LiveService
from weltklassebot.runs.live_record import LiveRequest
from weltklassebot.service import shutdown
from weltklassebot.service.shutdown import StopLatch


def _wait_with_handler_at(line: int | None, timeout: float) -> tuple[bool, int]:
    """One ``wait(timeout)`` on a fresh latch with the handler run at its ``line``-th traced
    line (None: never), as a signal would. Returns what ``wait`` returned and the lines traced
    in the wait (every frame it entered)."""
    latch = StopLatch()
    seen = 0

    def trace(frame: FrameType, event: str, _arg: Any) -> Any:
        nonlocal seen
        if event == "line":
            seen += 1
            if seen == line:
                latch(signal.SIGTERM, frame)
        return trace

    sys.settrace(trace)
    try:
        woken = latch.wait(timeout)
    finally:
        sys.settrace(None)
        latch.close()
    return woken, seen


def test_wait_times_out_without_a_request() -> None:
    latch = StopLatch()
    try:
        started = time.monotonic()
        assert latch.wait(0.05) is False
        assert time.monotonic() - started >= 0.04
        assert latch.requested is False
        assert latch.signal is None
    finally:
        latch.close()


def test_a_request_wakes_a_wait_from_another_thread_and_every_wait_after() -> None:
    latch = StopLatch()
    try:
        timer = threading.Timer(0.05, latch, args=(signal.SIGINT, None))
        timer.start()
        started = time.monotonic()
        assert latch.wait(30) is True
        assert time.monotonic() - started < 10
        assert latch.signal == signal.SIGINT
        assert latch.wait(30) is True  # stays requested; returns at once
        timer.join()
    finally:
        latch.close()


def test_the_handler_at_any_line_of_a_wait_ends_it_and_never_hangs() -> None:
    # Count the lines one wait executes, then run the handler at each of them in turn (in a
    # worker thread, so that a hang fails the test instead of stopping the suite).
    _woken, lines = _wait_with_handler_at(None, 0.001)
    assert lines >= 1
    results: list[tuple[int, bool]] = []

    def every_line() -> None:
        for line in range(1, lines + 1):
            results.append((line, _wait_with_handler_at(line, 0.2)[0]))

    worker = threading.Thread(target=every_line, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), f"a stop request hung the wait after {len(results)} lines"
    assert results == [(line, True) for line in range(1, lines + 1)]


def test_a_request_before_the_sleep_cuts_it_short() -> None:
    started = time.monotonic()
    woken, _lines = _wait_with_handler_at(1, 30)
    assert woken
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_a_signal_before_the_service_ran_stops_it_at_once_and_restores_the_handlers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: int, code: int) -> None:
    # `python -m cli live` notes a signal that comes while it imports; the service then stops
    # before it opens anything (no state directory is created) and leaves the handlers as
    # they were.
    monkeypatch.setattr(shutdown, "signal_number", [signum])
    request = LiveRequest(
        config=BacktestConfig(), settings=LiveSettings(), config_file=None, argv=["live"],
        state_dir=tmp_path / "state", runs_dir=tmp_path / "runs", out=None, speed=None,
        exit_at_end=True, bind="127.0.0.1", port=0)
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    service = LiveService(request)
    assert service.run() == code
    assert service.stop.requested
    assert service.stop.signal == signum
    assert {sig: signal.getsignal(sig) for sig in before} == before
    assert not (tmp_path / "state").exists()


def test_a_closed_latch_ignores_a_late_signal() -> None:
    latch = StopLatch()
    latch.close()
    latch(signal.SIGTERM, None)  # no error: nothing is left to wake
    assert latch.requested is True


SIGNAL_STORM = textwrap.dedent("""
    import signal, sys, time
    from weltklassebot.service.shutdown import StopLatch
    latch = StopLatch()
    signal.signal(signal.SIGUSR1, latch)
    print("ready", flush=True)
    deadline = time.monotonic() + float(sys.argv[1])
    waits = 0
    while time.monotonic() < deadline:
        latch.wait(0.00001)
        latch.requested = False  # take the next signal as a new request
        waits += 1
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # the storm may outlast the loop
    print(waits, flush=True)
""")


def test_a_storm_of_real_signals_during_short_waits_never_hangs() -> None:
    # Signals from another process land at any bytecode of the waiting loop (with the old
    # Event, about one in thirteen landed while its lock was held, and the first such hung).
    proc = subprocess.Popen([sys.executable, "-c", SIGNAL_STORM, "3"], stdout=subprocess.PIPE,
                            text=True, env=dict(os.environ))
    done = threading.Event()
    sent = 0

    def storm() -> None:
        nonlocal sent
        while not done.is_set():
            try:
                os.kill(proc.pid, signal.SIGUSR1)
            except ProcessLookupError:
                return
            sent += 1
            time.sleep(0.0001)

    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        sender = threading.Thread(target=storm, daemon=True)
        sender.start()
        try:
            out, _err = proc.communicate(timeout=30)
        finally:
            done.set()
            sender.join()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, "the waiting process hung or died under signals"
    assert int(out.strip()) > 0
    assert sent > 1000
