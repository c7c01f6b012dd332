"""The agent's HTTP client against a real HTTP server that drops a reused connection unanswered."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from agent.collector_http import collector_http_client
from agent.events import Finding, Severity, TestEvidence
from agent.network_changes import NetworkChanges
from agent.settings import AgentSettings
from agent.shipper import Shipper
from agent.spool import Spool
from agent.testing import FakeCollector, eventually, write_credentials


@dataclass
class DroppingServer:
    """HTTP/1.1 on 127.0.0.1 in front of a ``FakeCollector``, with keep-alive.

    The first time a request arrives as the ``drop_at``-th on one connection,
    the server reads it whole and closes the connection without an answer:
    what a server's keep-alive timeout does when it fires just as the client
    reuses the connection, made deterministic.
    """

    collector: FakeCollector
    drop_at: int = 2
    #: Read the first request of the first connection and never answer it (a stranded path).
    hang_first: bool = False
    #: (connection number, request number on it) of every request read, dropped ones too.
    seen: list[tuple[int, int]] = field(default_factory=list)
    dropped: bool = False
    connections: int = 0
    url: str = ""

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        connection, number = self.connections, 0
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                request_line, *lines = head.decode("latin-1").split("\r\n")
                method, target, _ = request_line.split(" ", 2)
                headers = [tuple(line.split(": ", 1)) for line in lines if line]
                length = int(dict((k.lower(), v) for k, v in headers).get("content-length", 0))
                body = await reader.readexactly(length)
                number += 1
                self.seen.append((connection, number))
                if self.hang_first and connection == 1:
                    await asyncio.Event().wait()
                if number == self.drop_at and not self.dropped:
                    self.dropped = True
                    return
                request = httpx.Request(method, self.url + target, headers=headers, content=body)
                response = self.collector.handle(request)
                content = response.read()
                writer.write(
                    f"HTTP/1.1 {response.status_code} OK\r\n"
                    f"Content-Type: {response.headers.get('content-type', 'text/plain')}\r\n"
                    f"Content-Length: {len(content)}\r\n\r\n".encode() + content
                )
                await writer.drain()
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def serving(collector: FakeCollector, **options: Any) -> AsyncIterator[DroppingServer]:
    dropping = DroppingServer(collector, **options)
    listener = await asyncio.start_server(dropping.serve, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    dropping.url = f"http://127.0.0.1:{port}"
    async with listener:
        yield dropping


def finding(index: int) -> Finding:
    evidence = TestEvidence(note="", index=index, padding="")
    return Finding(kind="agent.test", severity=Severity.LOW, summary="测试",
                   evidence=evidence.model_dump(mode="json"))


def test_a_batch_on_a_connection_closed_unanswered_is_sent_again_at_once(
    settings: AgentSettings, collector: FakeCollector
) -> None:
    """A batch survives a server closing the reused connection: sent again at once, no backoff."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def scenario(spool: Spool) -> DroppingServer:
        async with serving(collector) as server:
            credentials = write_credentials(settings.data_dir, collector, url=server.url)
            shipper = Shipper(spool, credentials, settings, sleep=sleep)
            async with shipper.make_client() as client:
                spool.append([finding(1)], None)
                await shipper.ship_once(client)
                spool.append([finding(2)], None)
                await shipper.ship_once(client)
        return server

    with Spool(settings.spool_path, agent_id=collector.agent_id, host="ws",
               max_bytes=1 << 26) as spool:
        server = asyncio.run(scenario(spool))
        assert spool.depth() == 0
    assert server.seen == [(1, 1), (1, 2), (2, 1)]
    assert sorted(e.evidence["index"] for e in collector.accepted.values()) == [1, 2]
    assert slept == []


def test_a_post_not_marked_idempotent_is_not_sent_again(
    settings: AgentSettings, collector: FakeCollector
) -> None:
    """Only idempotent requests are repeated: an unmarked POST fails as the server left it."""

    async def scenario() -> DroppingServer:
        async with serving(collector) as server, \
                collector_http_client(server.url, False, settings) as client:
            await client.post("/api/v1/events", content=b"{}")
            with pytest.raises(httpx.RemoteProtocolError):
                await client.post("/api/v1/events", content=b"{}")
        return server

    server = asyncio.run(scenario())
    assert server.seen == [(1, 1), (1, 2)]


def test_a_get_on_a_connection_closed_unanswered_is_sent_again(
    settings: AgentSettings, collector: FakeCollector
) -> None:
    """A GET (the policy poll) is idempotent by method and is repeated on a new connection."""

    async def scenario() -> tuple[DroppingServer, httpx.Response]:
        async with serving(collector) as server, \
                collector_http_client(server.url, False, settings) as client:
            await client.get("/api/v1/policy")
            return server, await client.get("/api/v1/policy")

    server, response = asyncio.run(scenario())
    assert response.status_code == 401  # the fake collector's answer without credentials
    assert server.seen == [(1, 1), (1, 2), (2, 1)]


def test_a_network_change_restarts_a_request_stranded_in_flight(
    settings: AgentSettings, collector: FakeCollector
) -> None:
    """After a network change, a request that got no answer is sent again on a new connection."""
    network = NetworkChanges(settle_s=0)

    async def scenario() -> tuple[DroppingServer, httpx.Response]:
        async with serving(collector, hang_first=True) as server, \
                collector_http_client(server.url, False, settings, network=network) as client:
            polling = asyncio.ensure_future(client.get("/api/v1/policy"))
            await eventually(lambda: server.seen)
            network.changed()
            return server, await polling

    server, response = asyncio.run(scenario())
    assert response.status_code == 401  # the fake collector's answer without credentials
    assert server.seen == [(1, 1), (2, 1)]
    assert network.notified == 1
