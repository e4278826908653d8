"""The service's HTTP endpoint: ``/metrics``, ``/healthz`` and ``/readyz``.

One ``ThreadingHTTPServer`` on a thread of its own; each request is answered on a daemon thread
from what the loop last wrote into ``LiveStatus``, so a slow scraper never slows the loop and a
stuck loop never stops ``/healthz`` from saying so.

- ``/metrics``: the registry of ``service/metrics.py`` in Prometheus' text format.
- ``/healthz`` (liveness): 200 while the main loop went round within the stall limit, or once the
  run has ended (the service then idles, serving metrics); else 503 with the reason.
- ``/readyz`` (readiness): 200 once state is recovered and the loop takes events, until SIGTERM.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import TCPServer
from typing import Any, cast

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from weltklassebot.config.service import METRICS_PORT_ENV
from weltklassebot.errors import RuntimeFailure
from weltklassebot.service.status import LiveStatus

DEFAULT_STALL_LIMIT_S = 30.0
"""``/healthz`` fails once the main loop has not gone round for this long (a paced loop wakes at
least every second, so 30 s means stuck, not slow)."""

_REQUEST_TIMEOUT_S = 10.0
"""A client that stops sending mid-request is dropped after this long."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, family: socket.AddressFamily, address: tuple[Any, ...],
                 owner: MetricsServer) -> None:
        self.address_family = family
        self.owner = owner
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would resolve the host's FQDN (a DNS query) for a name we never
        # use; bind only.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _Handler(BaseHTTPRequestHandler):
    timeout = _REQUEST_TIMEOUT_S
    server_version = "weltklassebot"
    sys_version = ""

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _answer(self, *, head: bool) -> None:
        owner = cast(_Server, self.server).owner
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            try:
                body = generate_latest(owner.registry)
            except Exception as exc:  # a collector bug must not take the endpoint down
                self._send(500, "text/plain; charset=utf-8",
                           f"collecting metrics failed: {exc!r}\n".encode(), head)
                return
            self._send(200, CONTENT_TYPE_LATEST, body, head)
        elif path == "/healthz":
            code, doc = owner.health()
            self._send_json(code, doc, head)
        elif path == "/readyz":
            code, doc = owner.readiness()
            self._send_json(code, doc, head)
        else:
            self._send_json(404, {"status": "not found", "path": path,
                                  "endpoints": ["/metrics", "/healthz", "/readyz"]}, head)

    def _send_json(self, code: int, doc: dict[str, Any], head: bool) -> None:
        self._send(code, "application/json", (json.dumps(doc) + "\n").encode(), head)

    def _send(self, code: int, content_type: str, body: bytes, head: bool) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a scrape every few seconds would drown the service's own log."""


class MetricsServer:
    """Serves ``/metrics``, ``/healthz`` and ``/readyz`` for one ``LiveStatus``."""

    def __init__(self, status: LiveStatus, registry: CollectorRegistry, bind: str, port: int,
                 stall_limit_s: float = DEFAULT_STALL_LIMIT_S) -> None:
        self.status = status
        self.registry = registry
        # '[::1]' is how people write an IPv6 address beside a port; the socket wants '::1'.
        self.bind = bind[1:-1] if bind.startswith("[") and bind.endswith("]") else bind
        self._port = port
        self.stall_limit_s = stall_limit_s
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._started_wall_s = 0.0

    @property
    def port(self) -> int:
        """The bound port once started (the real one when 0 was asked for)."""
        return self._server.server_port if self._server is not None else self._port

    @property
    def url(self) -> str:
        host = f"[{self.bind}]" if ":" in self.bind else self.bind
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Bind and serve on a daemon thread; a bind failure raises ``RuntimeFailure``."""
        if self._server is not None:
            return
        self._server = self._bind()
        self._started_wall_s = time.time()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
            name="metrics-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket (answers in flight finish on their own threads)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> MetricsServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the answers ---------------------------------------------------------------------------

    def health(self) -> tuple[int, dict[str, Any]]:
        s = self.status
        now = time.time()
        # Before the loop's first round (recovering state) the age counts from the start.
        since = s.last_loop_wall_s or s.started_wall_s or self._started_wall_s
        loop_age = max(0.0, now - since)
        doc: dict[str, Any] = {
            "status": "ok",
            "last_loop_age_s": round(loop_age, 3),
            "last_event_age_s": (round(max(0.0, now - s.last_event_wall_s), 3)
                                 if s.last_event_wall_s else None),
            "events_processed": s.events_processed,
            "run_ended": s.run_ended,
        }
        if s.run_ended or loop_age <= self.stall_limit_s:
            return 200, doc
        doc["status"] = "stalled"
        if s.last_loop_wall_s:
            doc["reason"] = (f"the main loop last went round {loop_age:.1f} s ago "
                             f"(limit {self.stall_limit_s:g} s)")
        else:
            doc["reason"] = (f"the main loop has not started its first round {loop_age:.1f} s "
                             f"after start (limit {self.stall_limit_s:g} s)")
        return 503, doc

    def readiness(self) -> tuple[int, dict[str, Any]]:
        s = self.status
        if s.stopping:
            return 503, {"status": "not ready", "reason": "stopping: SIGTERM received"}
        if not s.ready:
            return 503, {"status": "not ready",
                         "reason": "starting: recovering state, not yet taking events"}
        return 200, {"status": "ready", "run_id": s.run_id, "run_ended": s.run_ended}

    # -- binding -------------------------------------------------------------------------------

    def _bind(self) -> _Server:
        where = f"{self.bind}:{self._port}" if ":" not in self.bind else \
            f"[{self.bind}]:{self._port}"
        try:
            infos = socket.getaddrinfo(self.bind or None, self._port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            raise RuntimeFailure(
                f"cannot serve metrics on {where}: {self.bind!r} is not an address or host name "
                f"this machine can resolve ({exc.strerror}). Set `[service] bind` in the config "
                f"to an address of this host, e.g. 127.0.0.1 (loopback, the default), ::1, "
                f"0.0.0.0 or :: (every interface).") from None
        last: OSError | None = None
        for family, _type, _proto, _name, address in infos:
            try:
                return _Server(family, address, self)
            except OSError as exc:
                last = exc
        assert last is not None  # getaddrinfo returns at least one address or raises
        raise RuntimeFailure(self._bind_message(where, last)) from None

    def _bind_message(self, where: str, exc: OSError) -> str:
        fix = (f"set {METRICS_PORT_ENV}=N or `[service] metrics_port = N` in the config "
               f"(0 picks a free port, written to the state directory's service.json)")
        if exc.errno == errno.EADDRINUSE:
            holder = port_holder(self._port)
            held = f" (held by {holder})" if holder else ""
            return (f"cannot serve metrics on {where}: the port is already in use{held}. "
                    f"Stop the process holding it, or {fix}.")
        if exc.errno == errno.EACCES:
            return (f"cannot serve metrics on {where}: permission denied (ports below 1024 need "
                    f"privileges). Use a port of 1024 or above: {fix}.")
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            return (f"cannot serve metrics on {where}: {self.bind!r} is not an address of this "
                    f"host ({exc.strerror}). Set `[service] bind` in the config to an address of "
                    f"one of its interfaces, e.g. 127.0.0.1 (the default) or 0.0.0.0.")
        return (f"cannot serve metrics on {where}: {exc.strerror or exc}. Check `[service] bind` "
                f"and the port, or {fix}.")


def port_holder(port: int) -> str | None:
    """Which process listens on a TCP ``port``, when Linux' ``/proc`` lets us see it."""
    try:
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(OSError), open(table) as fh:
                next(fh, None)
                for line in fh:
                    fields = line.split()
                    # local_address is HEX_IP:HEX_PORT; state 0A is LISTEN.
                    if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                        inodes.add(fields[9])
        if not inodes:
            return None
        targets = {f"socket:[{inode}]" for inode in inodes}
        for pid_dir in Path("/proc").iterdir():
            if not pid_dir.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                for fd in (pid_dir / "fd").iterdir():
                    if os.readlink(fd) in targets:
                        cmd = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").strip()
                        text = cmd.decode(errors="replace")[:120]
                        return f"pid {pid_dir.name}: {text}" if text else f"pid {pid_dir.name}"
        return "another process"
    except (OSError, ValueError, IndexError):
        return None
