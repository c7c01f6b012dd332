"""The probe responder answers real probes over loopback, logs them, and ignores anything else."""

from __future__ import annotations

import asyncio
import io
import json
import socket
from pathlib import Path

import pytest

from agent.detectors.outreach.readers import probes
from agent.errors import PolicyError
from collector.probe_responder import ProbeLog, key_from_policy, serve
from tests.e2e.harness import POLICIES, free_port

KEY = "responder-test-key-0123456789"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _probe_both(key: str) -> tuple[list[str], list[dict[str, str]]]:
    stream = io.StringIO()
    tcp_port, dns_port = free_port(), free_udp_port()
    server = asyncio.create_task(serve(KEY, "127.0.0.1", tcp_port, dns_port, ProbeLog(stream)))
    await asyncio.sleep(0.2)
    try:
        outcomes = []
        for run, port in ((probes.probe_tcp, tcp_port), (probes.probe_dns, dns_port)):
            target = probes.ProbeTarget("lo", "127.0.0.1", port, key, "ws-01", 2.0)
            outcome, _detail, _rtt = await run(target)
            outcomes.append(outcome)
        # Not a probe: a stray HTTP request gets no answer and no log line.
        reader, writer = await asyncio.open_connection("127.0.0.1", tcp_port)
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        assert await reader.read() == b""
        writer.close()
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
    return outcomes, [json.loads(line) for line in stream.getvalue().splitlines()]


def test_probes_with_the_key_are_verified_and_logged() -> None:
    outcomes, hits = asyncio.run(_probe_both(KEY))
    assert outcomes == ["verified", "verified"]
    assert [(h["method"], h["host"], h["interface"]) for h in hits] == [
        ("tcp", "ws-01", "lo"),
        ("dns", "ws-01", "lo"),
    ]


def test_an_agent_with_another_key_sees_a_forged_reply() -> None:
    outcomes, _hits = asyncio.run(_probe_both("another-key-0123456789abc"))
    assert outcomes == ["forged", "forged"]


def test_key_and_ports_come_from_the_policy() -> None:
    key, tcp_port, dns_port = key_from_policy(POLICIES / "networks.yaml")
    assert len(key) >= 16 and (tcp_port, dns_port) == (4790, 53)


def test_a_policy_of_another_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not a networks policy"):
        key_from_policy(POLICIES / "agent.yaml")
    missing = tmp_path / "none.yaml"
    with pytest.raises(PolicyError, match="cannot be read"):
        key_from_policy(missing)
