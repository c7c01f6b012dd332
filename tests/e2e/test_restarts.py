"""Stopping a real collector process while a real agent holds a keep-alive connection to it."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.e2e.harness import (
    Agent,
    Collector,
    agent_headers,
    batch_body,
    synthetic_events,
    wait_until,
)

pytestmark = pytest.mark.e2e

#: A stop held by an idle connection ends when the first of two clocks runs out: uvicorn's
#: graceful timeout (set far out here) or the TLS close wait for the peer's close_notify
#: (asyncio's and uvloop's ssl_shutdown_timeout, 30 s). The wait stays below both, so a
#: collector that waited on the connection instead of closing it cannot pass.
GRACEFUL_SHUTDOWN_S = 120
STOP_WAIT_S = 25


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    instance = Collector(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'collector.db'}")
    instance.extra_env["COURTGUARD_COLLECTOR_GRACEFUL_SHUTDOWN_S"] = str(GRACEFUL_SHUTDOWN_S)
    instance.init()
    instance.start()
    yield instance
    instance.stop(signal.SIGKILL)


def established_to(pid: int, port: int) -> int:
    """How many TCP connections process ``pid`` has established to ``port``."""
    return sum(
        1
        for conn in psutil.Process(pid).net_connections(kind="tcp")
        if conn.status == psutil.CONN_ESTABLISHED and conn.raddr and conn.raddr.port == port
    )


def test_sigterm_with_an_agent_connected_does_not_wait_for_the_graceful_timeout(
    tmp_path: Path, collector: Collector
) -> None:
    """An agent's idle keep-alive connection is closed at once; the collector exits at once."""
    agent = Agent(home=tmp_path / "ws", collector=collector)
    agent.home.mkdir()
    agent.enroll()
    agent.start()
    try:
        collector.wait_online(agent.agent_id)
        assert agent.process is not None and collector.process is not None
        wait_until(lambda: established_to(agent.process.pid, collector.port), 20,
                   "the agent's keep-alive connection to the collector")
        started = time.monotonic()
        collector.process.send_signal(signal.SIGTERM)
        try:
            code = collector.process.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the collector was still stopping after {STOP_WAIT_S} s "
                        f"with an agent connected:\n{collector.log()[-3000:]}")
        elapsed = time.monotonic() - started
        print(f"collector stopped {elapsed:.2f} s after SIGTERM with an agent connected")
        assert code in (0, -signal.SIGTERM), collector.log()[-3000:]
        assert "timeout graceful shutdown exceeded" not in collector.log()
        assert "Application shutdown complete" in collector.log()
    finally:
        agent.stop()


def test_a_request_in_flight_at_sigterm_is_still_answered(
    tmp_path: Path, collector: Collector
) -> None:
    """A batch whose body is still arriving when SIGTERM comes is stored and acknowledged."""
    agent = Agent(home=tmp_path / "ws", collector=collector)
    agent.home.mkdir()
    agent.enroll()
    credentials = json.loads((agent.data_dir / "credentials.json").read_text())
    events = synthetic_events(credentials["agent_id"], 1, 3)
    body = batch_body(credentials["agent_id"], events)
    head = ["POST /api/v1/events HTTP/1.1", f"Host: 127.0.0.1:{collector.port}",
            f"Content-Length: {len(body)}", "Expect: 100-continue"]
    head += [f"{name}: {value}" for name, value in agent_headers(credentials).items()]
    context = collector.ssl_context()
    assert isinstance(context, ssl.SSLContext) and collector.process is not None
    with socket.create_connection(("127.0.0.1", collector.port), timeout=STOP_WAIT_S) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        # uvicorn says "100 Continue" once the app reads the body: the request is in flight.
        assert conn.recv(1024).startswith(b"HTTP/1.1 100")
        collector.process.send_signal(signal.SIGTERM)
        wait_until(lambda: "Shutting down" in collector.log(), STOP_WAIT_S,
                   "the collector to begin its shutdown")
        conn.sendall(body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = conn.recv(65536)
            assert chunk, f"connection closed without an answer: {answer!r}"
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert b"connection: close" in answer.lower()
    collector.process.wait(timeout=STOP_WAIT_S)
    stored = collector.query("SELECT COUNT(*) FROM events WHERE agent_id = :a",
                             a=credentials["agent_id"])[0][0]
    assert stored == len(events)
