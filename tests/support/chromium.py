"""Headless Chromium through the DevTools protocol: open a page, collect every console error,
uncaught exception, failed and outside request, evaluate scripts, take a full-page screenshot.

Drives the system's Chromium (``/usr/bin/chromium``, Debian's package) directly over a
websocket (``websocket-client``), so nothing is downloaded. Used by the report tests and by
``benchmarks/bench_report.py``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websocket

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


def find_chromium() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageLog:
    """What a page did that a test cares about."""

    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        outside = [u for u in self.requests if not u.startswith(("file:", "data:", "about:"))]
        return ([f"console error: {m}" for m in self.console_errors]
                + [f"uncaught exception: {m}" for m in self.exceptions]
                + [f"failed request: {m}" for m in self.failed_requests]
                + [f"request outside the file: {u}" for u in outside])


class Browser:
    """One headless Chromium with one page (a DevTools session over the browser socket)."""

    def __init__(self, executable: str, width: int = 1400, height: int = 900) -> None:
        self.profile = tempfile.mkdtemp(prefix="wkb-chromium-")
        self.width, self.height = width, height
        args = [executable, "--headless=new", "--no-sandbox", "--disable-gpu",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--hide-scrollbars", "--mute-audio",
                "--remote-debugging-port=0", f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}", "about:blank"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        text=True)
        self.socket: websocket.WebSocket | None = None
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        try:
            self.socket = websocket.create_connection(self._endpoint(), timeout=30,
                                                      suppress_origin=True)
            target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            self.session = self.call("Target.attachToTarget",
                                     {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.call(f"{domain}.enable", session=True)
            self.call("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": height, "deviceScaleFactor": 1,
                       "mobile": False}, session=True)
        except BaseException:
            self.close()
            raise

    def _endpoint(self, timeout: float = 30.0) -> str:
        assert self.process.stderr is not None
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line:
                if self.process.poll() is not None:
                    break
                continue
            seen.append(line.rstrip())
            match = _LISTENING.search(line)
            if match:
                return match.group(1)
        raise RuntimeError("chromium did not start its DevTools endpoint: " + " | ".join(seen))

    def call(self, method: str, params: dict[str, Any] | None = None, *, session: bool = False,
             timeout: float = 60.0) -> dict[str, Any]:
        assert self.socket is not None
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        self.socket.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = json.loads(self.socket.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            if "method" in reply:
                self.events.append(reply)
        raise TimeoutError(f"{method}: no reply in {timeout} s")

    def _pump(self, seconds: float) -> None:
        """Read events for ``seconds``."""
        assert self.socket is not None
        deadline = time.monotonic() + seconds
        self.socket.settimeout(0.05)
        try:
            while time.monotonic() < deadline:
                try:
                    reply = json.loads(self.socket.recv())
                except websocket.WebSocketTimeoutException:
                    continue
                if "method" in reply:
                    self.events.append(reply)
        finally:
            self.socket.settimeout(30)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, session=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluate failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, path: Path, ready: str = "window.__reportReady === true",
             timeout: float = 60.0) -> float:
        """Navigate to ``path`` (a file URL) and wait until ``ready`` holds; return the time
        from navigation to ready, in seconds."""
        self.events.clear()
        started = time.monotonic()
        self.call("Page.navigate", {"url": path.resolve().as_uri()}, session=True)
        deadline = started + timeout
        while time.monotonic() < deadline:
            self._pump(0.1)
            if self.evaluate(f"Boolean({ready})"):
                elapsed = time.monotonic() - started
                self._pump(0.3)  # late console messages and requests
                return elapsed
        raise TimeoutError(f"{path} was not ready within {timeout} s: {self.log().problems()}")

    def log(self) -> PageLog:
        log = PageLog()
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                log.console_errors.append(" ".join(str(a.get("value", a.get("description")))
                                                   for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                log.exceptions.append(str(details.get("exception", {}).get("description")
                                          or details.get("text")))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                log.console_errors.append(f"{entry.get('text')} ({entry.get('url', '')})")
            elif method == "Network.requestWillBeSent":
                log.requests.append(params.get("request", {}).get("url", ""))
            elif method == "Network.loadingFailed":
                log.failed_requests.append(f"{params.get('errorText')} "
                                           f"({params.get('type', '')})")
        return log

    def screenshot(self, path: Path) -> Path:
        """A PNG of the whole page, at the page's full height."""
        metrics = self.call("Page.getLayoutMetrics", session=True)
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        height = int(min(max(size["height"], self.height), 16000))
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": height, "deviceScaleFactor": 1,
                   "mobile": False}, session=True)
        self._pump(0.5)  # let the responsive charts settle at the new size
        shot = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport":
                                                    True}, session=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1,
                   "mobile": False}, session=True)
        return path

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.socket is not None:
                self.socket.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)


@contextlib.contextmanager
def browser(executable: str) -> Iterator[Browser]:
    instance = Browser(executable)
    try:
        yield instance
    finally:
        instance.close()


# Every chart div must hold a plotly SVG with drawn data: a line with a path, markers, or the
# heatmap's image; the count of data points comes from the traces plotly drew.
CHART_CHECK = """
(() => Array.from(document.querySelectorAll('.chart')).map(div => {
  const svg = div.querySelector('svg.main-svg');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  const lines = Array.from(div.querySelectorAll('.scatterlayer path.js-line'))
    .filter(p => (p.getAttribute('d') || '').length > 10).length;
  const markers = div.querySelectorAll('.scatterlayer path.point').length;
  const heat = div.querySelectorAll('.heatmaplayer image').length;
  const points = (div.data || []).reduce((n, t) =>
    n + ((t.x && t.x.length) || 0) + ((t.z && t.z.length) || 0), 0);
  return {id: div.id, width: box.width, height: box.height, lines, markers, heat, points,
          traces: (div.data || []).length};
}))()
"""


def environment_has_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def open_browser() -> Iterator[Browser]:
    """A headless Chromium for one test module (yield it from a module fixture), closed after.
    Missing Chromium fails the test when CI=true and skips it elsewhere, with the reason."""
    executable = find_chromium()
    if executable is None:
        message = ("headless Chromium is not installed (Debian: apt-get install chromium; "
                   ".ci/run installs it)")
        if environment_has_ci():
            pytest.fail(f"CI=true but {message}")
        pytest.skip(message)
    browser = Browser(executable)
    try:
        yield browser
    finally:
        browser.close()
