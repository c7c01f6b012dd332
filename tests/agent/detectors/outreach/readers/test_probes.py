"""The probe protocol: signatures verify only with the right key and nonce."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from agent.detectors.outreach.observations import LinkFacts
from agent.detectors.outreach.policy import NetworksPolicy
from agent.detectors.outreach.readers import probes
from collector.probe_responder import ProbeLog, Responder
from tests.agent.detectors.outreach.conftest import shipped_data
from tests.e2e.netns import require_root

KEY = "unit-probe-key-0123456789abcdef"


def test_signature_checks_key_method_and_nonce() -> None:
    answer = probes.signature("k" * 20, "tcp", "ab" * 16)
    assert probes.verify("k" * 20, "tcp", "ab" * 16, answer)
    assert not probes.verify("x" * 20, "tcp", "ab" * 16, answer)
    assert not probes.verify("k" * 20, "dns", "ab" * 16, answer)
    assert not probes.verify("k" * 20, "tcp", "cd" * 16, answer)


def test_dns_name_round_trip_with_unsafe_labels() -> None:
    name = probes.dns_name("ab" * 16, "WS_01.court", "usb 0")
    assert probes.parse_dns_name(name) == ("ab" * 16, "ws-01-court", "usb-0")
    assert probes.parse_dns_name("www.example.com") is None


class _HeldDns(asyncio.DatagramProtocol):
    """The responder's DNS side, answering only once ``release`` is set."""

    def __init__(self, responder: Responder, release: asyncio.Event) -> None:
        self.responder = responder
        self.release = release
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        asyncio.get_running_loop().create_task(self._answer(data, addr))

    async def _answer(self, data: bytes, addr: Any) -> None:
        await self.release.wait()
        reply = self.responder.answer_dns(data, addr)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


def _policy(tcp_port: int, dns_port: int) -> NetworksPolicy:
    data = shipped_data()
    data["lists"]["probe_targets"] = ["127.0.0.1"]
    data["settings"]["probe"].update(
        key=KEY, tcp_port=tcp_port, dns_port=dns_port, methods=["tcp", "dns"], timeout_s=30
    )
    return NetworksPolicy.model_validate(data)


async def _first_then_rest() -> tuple[list[str], list[str]]:
    release = asyncio.Event()
    responder = Responder(KEY, ProbeLog(io.StringIO()))
    tcp = await asyncio.start_server(responder.handle_tcp, "127.0.0.1", 0)
    tcp_port = tcp.sockets[0].getsockname()[1]
    dns, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: _HeldDns(responder, release), local_addr=("127.0.0.1", 0)
    )
    dns_port = dns.get_extra_info("sockname")[1]
    try:
        rounds = probes.probe_links([LinkFacts(name="lo")], _policy(tcp_port, dns_port), "ws", None)
        first = await anext(rounds)
        # The DNS answer is still held back: the TCP hit came without waiting for it.
        before_release = [f"{first.method} {first.outcome}"]
        release.set()
        rest = [f"{found.method} {found.outcome}" async for found in rounds]
    finally:
        tcp.close()
        dns.close()
    return before_release, rest


def test_each_probe_is_reported_as_it_completes() -> None:
    """A verified TCP probe is yielded while the same round's DNS probe still waits."""
    require_root()  # SO_BINDTODEVICE
    before_release, rest = asyncio.run(_first_then_rest())
    assert before_release == ["tcp verified"]
    assert rest == ["dns verified"]
