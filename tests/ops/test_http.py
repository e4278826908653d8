"""``MetricsServer`` over real HTTP on a free port: the three endpoints, stalls, bind failures."""

from __future__ import annotations

import errno
import json
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from weltklassebot.errors import RuntimeFailure
from weltklassebot.service.http import MetricsServer
from weltklassebot.service.metrics import build_registry
from weltklassebot.service.status import LiveStatus


def get(url: str, method: str = "GET") -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


def get_json(url: str) -> tuple[int, dict[str, Any]]:
    code, ctype, body = get(url)
    assert ctype == "application/json"
    doc: dict[str, Any] = json.loads(body)
    return code, doc


@pytest.fixture
def status() -> LiveStatus:
    now = time.time()
    return LiveStatus(run_id="r1", started_wall_s=now, ready=True, last_loop_wall_s=now,
                      last_event_wall_s=now - 2, events_processed=10, risk_state="COOL")


@pytest.fixture
def server(status: LiveStatus) -> Iterator[MetricsServer]:
    srv = MetricsServer(status, build_registry(status), "127.0.0.1", 0, stall_limit_s=5)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_metrics_endpoint(server: MetricsServer) -> None:
    assert server.port > 0
    code, ctype, body = get(f"{server.url}/metrics")
    assert code == 200
    assert ctype == CONTENT_TYPE_LATEST
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert "stage_latency_seconds" in families
    risk = {s.labels["state"]: s.value for s in families["risk_state"].samples}
    assert risk == {"ACTIVE": 0, "COOL": 1, "HALTED": 0}
    # HEAD: the headers without a body
    code, _, body = get(f"{server.url}/metrics", method="HEAD")
    assert code == 200
    assert body == b""


def test_healthz_ok_then_stalled_then_run_ended(server: MetricsServer,
                                                status: LiveStatus) -> None:
    code, doc = get_json(f"{server.url}/healthz")
    assert code == 200
    assert doc["status"] == "ok"
    assert doc["events_processed"] == 10
    assert doc["run_ended"] is False
    assert 0 <= doc["last_loop_age_s"] < 5
    assert 1.5 < doc["last_event_age_s"] < 10

    status.last_loop_wall_s = time.time() - 6  # the loop has not gone round for 6 s (limit 5)
    code, doc = get_json(f"{server.url}/healthz")
    assert code == 503
    assert doc["status"] == "stalled"
    assert "last went round 6." in doc["reason"]
    assert "limit 5 s" in doc["reason"]

    status.last_loop_wall_s = time.time()  # it went round again
    assert get_json(f"{server.url}/healthz")[0] == 200

    # After the end of the run the loop idles: healthy however long ago it went round.
    status.last_loop_wall_s = time.time() - 3600
    status.run_ended = True
    code, doc = get_json(f"{server.url}/healthz")
    assert code == 200
    assert doc["run_ended"] is True


def test_healthz_before_the_first_round(status: LiveStatus) -> None:
    """Recovering state: healthy within the limit from start, then 503 saying so."""
    status.last_loop_wall_s = 0.0
    status.last_event_wall_s = 0.0
    status.started_wall_s = time.time()
    with MetricsServer(status, build_registry(status), "127.0.0.1", 0, stall_limit_s=5) as srv:
        code, doc = get_json(f"{srv.url}/healthz")
        assert code == 200
        assert doc["last_event_age_s"] is None
        status.started_wall_s = time.time() - 10
        code, doc = get_json(f"{srv.url}/healthz")
        assert code == 503
        assert "first round" in doc["reason"]


def test_readyz(server: MetricsServer, status: LiveStatus) -> None:
    code, doc = get_json(f"{server.url}/readyz")
    assert code == 200
    assert doc["status"] == "ready"
    status.ready = False
    code, doc = get_json(f"{server.url}/readyz")
    assert code == 503
    assert "recovering state" in doc["reason"]
    status.ready = True
    status.stopping = True
    code, doc = get_json(f"{server.url}/readyz")
    assert code == 503
    assert "stopping" in doc["reason"]


def test_unknown_path_404(server: MetricsServer) -> None:
    for path in ("/", "/metricsx", "/metrics/x", "/favicon.ico"):
        code, doc = get_json(f"{server.url}{path}")
        assert code == 404, path
        assert doc["endpoints"] == ["/metrics", "/healthz", "/readyz"]
    # a query string does not change the endpoint
    assert get(f"{server.url}/healthz?verbose=1")[0] == 200


def test_no_request_logging(server: MetricsServer, capfd: pytest.CaptureFixture[str]) -> None:
    get(f"{server.url}/metrics")
    get(f"{server.url}/nothing")
    out, err = capfd.readouterr()
    assert out == ""
    assert err == ""


def test_stop_frees_the_port(status: LiveStatus) -> None:
    srv = MetricsServer(status, build_registry(status), "127.0.0.1", 0)
    srv.start()
    port = srv.port
    srv.stop()
    srv.stop()  # idempotent
    with pytest.raises(urllib.error.URLError, match="refused"):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
    again = MetricsServer(status, build_registry(status), "127.0.0.1", port)
    again.start()  # the port is free for the next process (SO_REUSEADDR past TIME_WAIT)
    again.stop()


def test_port_in_use(server: MetricsServer, status: LiveStatus) -> None:
    other = MetricsServer(status, build_registry(status), "127.0.0.1", server.port)
    with pytest.raises(RuntimeFailure) as caught:
        other.start()
    err = caught.value
    assert err.exit_code == 3
    text = err.message
    assert f"127.0.0.1:{server.port}" in text
    assert "already in use" in text
    assert "WELTKLASSE_METRICS_PORT" in text
    assert "metrics_port" in text
    assert "\n" not in text
    # this very process holds it, and /proc says so
    assert f"pid {os.getpid()}" in text


def test_bad_bind_address(status: LiveStatus) -> None:
    with pytest.raises(RuntimeFailure) as caught:
        MetricsServer(status, build_registry(status), "no-such-host.invalid", 0).start()
    assert "no-such-host.invalid" in caught.value.message
    assert "[service] bind" in caught.value.message
    # 192.0.2.1 (TEST-NET-1) is an address but not this host's
    with pytest.raises(RuntimeFailure) as caught:
        MetricsServer(status, build_registry(status), "192.0.2.1", 0).start()
    assert "192.0.2.1:0" in caught.value.message
    assert "not an address of this host" in caught.value.message


def test_privileged_port(status: LiveStatus) -> None:
    srv = MetricsServer(status, build_registry(status), "127.0.0.1", 80)
    if os.geteuid() != 0:
        with pytest.raises(RuntimeFailure) as caught:
            srv.start()
        text = caught.value.message
    else:  # root may bind port 80: check the message for the error an unprivileged user gets
        text = srv._bind_message("127.0.0.1:80", PermissionError(errno.EACCES, "denied"))
    assert "127.0.0.1:80" in text
    assert "permission denied" in text
    assert "WELTKLASSE_METRICS_PORT" in text


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
@pytest.mark.parametrize("bind", ["::1", "[::1]"])
def test_ipv6_bind(status: LiveStatus, bind: str) -> None:
    with MetricsServer(status, build_registry(status), bind, 0) as srv:
        assert srv.url.startswith("http://[::1]:")
        code, _, body = get(f"{srv.url}/metrics")
        assert code == 200
        assert b"risk_state" in body
