"""systemd's notify protocol (``sd_notify(3)``): readiness, status, watchdog, stopping.

A ``Type=notify`` unit sets ``NOTIFY_SOCKET``; the service sends ``READY=1`` once its state is
recovered and it takes events, ``WATCHDOG=1`` from its main loop at least twice per
``WatchdogSec`` (``WATCHDOG_USEC``), ``STATUS=...`` lines that ``systemctl status`` shows, and
``STOPPING=1`` when SIGTERM arrives. Outside systemd (no ``NOTIFY_SOCKET``) every call is a no-op.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time


class Notifier:
    """Sends notify messages to ``$NOTIFY_SOCKET``; keeps the watchdog fed at half its period."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address: str | None = None
        if address:
            # An abstract socket is written '@name' and addressed with a leading NUL byte.
            self._address = "\0" + address[1:] if address.startswith("@") else address
        self._sock: socket.socket | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        self.watchdog_s: float | None = None
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_s = int(usec) / 1e6
        self._next_ping = 0.0
        self.sent = 0

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, *fields: str) -> bool:
        """Send ``fields`` as one datagram (newline-separated); False when not under systemd or
        the socket is gone (a notify failure never stops the service)."""
        if self._address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(fields).encode(), self._address)
        except OSError:
            return False
        self.sent += 1
        return True

    def ready(self, status: str) -> bool:
        return self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> bool:
        return self.send(f"STATUS={status}")

    def stopping(self, status: str = "stopping") -> bool:
        return self.send("STOPPING=1", f"STATUS={status}")

    def keepalive(self, now_s: float | None = None) -> bool:
        """Ping the watchdog when half its period has passed since the last ping; cheap enough
        to call on every pass of the main loop."""
        if self.watchdog_s is None:
            return False
        now = time.monotonic() if now_s is None else now_s
        if now < self._next_ping:
            return False
        self._next_ping = now + self.watchdog_s / 2
        return self.send("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
