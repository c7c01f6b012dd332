"""``courtguard-collector probe-responder``: the Internet-side end of the outreach probe.

A court runs it on a host that only the Internet can reach. It answers the
agents' TCP and DNS probes with an HMAC of their nonce (the protocol is in
``agent.detectors.outreach.readers.probes``) and writes one JSON line per probe that
reached it (time, method, peer address, the host and interface the probe
named), so the court knows which workstations got out even if their own
events never arrive.

Bounds: a TCP peer gets 5 s and 512 bytes to send its line; at most 256
connections are served at once; anything that is not a probe is ignored.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from agent.detectors.outreach.policy import NetworksPolicy
from agent.detectors.outreach.readers import probes
from agent.detectors.outreach.readers.packets import build_txt_answer, parse_dns
from agent.errors import PolicyError
from agent.policy.loader import parse_document
from collector.messages import _

MAX_LINE = 512
READ_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 256


class ProbeLog:
    """One JSON line per probe that reached us, flushed at once."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.count = 0

    def hit(self, method: str, peer: str, host: str, interface: str) -> None:
        self.count += 1
        record = {
            "time": datetime.now(UTC).isoformat(),
            "method": method,
            "peer": peer,
            "host": host,
            "interface": interface,
        }
        self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.stream.flush()


class Responder:
    def __init__(self, key: str, log: ProbeLog) -> None:
        self.key = key
        self.log = log
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def handle_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            async with self._slots, asyncio.timeout(READ_TIMEOUT_S):
                line = await reader.readline()
                words = line[:MAX_LINE].decode(errors="replace").split()
                if len(words) == 4 and words[0] == probes.MAGIC and len(words[1]) == 32:
                    answer = probes.signature(self.key, "tcp", words[1])
                    writer.write(f"{probes.MAGIC} {answer}\n".encode())
                    await writer.drain()
                    self.log.hit("tcp", str(peer[0]) if peer else "", words[2], words[3])
        except (TimeoutError, OSError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def answer_dns(self, data: bytes, peer: Any) -> bytes | None:
        query = parse_dns(data)
        if query is None or query.response:
            return None
        parts = probes.parse_dns_name(query.question)
        if parts is None:
            return None
        nonce, host, interface = parts
        text = ("cg1=" + probes.signature(self.key, "dns", nonce)).encode()
        self.log.hit("dns", str(peer[0]), host, interface)
        return build_txt_answer(data, text)


class _DnsProtocol(asyncio.DatagramProtocol):
    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # a datagram transport: create_datagram_endpoint made it

    def datagram_received(self, data: bytes, addr: Any) -> None:
        reply = self.responder.answer_dns(data[:4096], addr)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


def key_from_policy(path: Path) -> tuple[str, int, int]:
    """The probe key and ports from a networks policy file."""
    try:
        document = parse_document(path, path.read_bytes())
    except OSError as exc:
        raise PolicyError(_("{path}: cannot be read: {reason}").format(
            path=path, reason=exc.strerror)) from exc
    if not isinstance(document, NetworksPolicy) or document.settings.probe is None:
        raise PolicyError(f"{path}: not a networks policy with a settings.probe section")
    settings = document.settings.probe
    return settings.key, settings.tcp_port, settings.dns_port


async def serve(
    key: str, host: str, tcp_port: int, dns_port: int, log: ProbeLog, ready: TextIO | None = None
) -> None:
    responder = Responder(key, log)
    loop = asyncio.get_running_loop()
    server = await asyncio.start_server(responder.handle_tcp, host, tcp_port, limit=MAX_LINE)
    transport, _protocol = await loop.create_datagram_endpoint(
        lambda: _DnsProtocol(responder), local_addr=(host, dns_port)
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        print(f"probe responder listening on {host} tcp/{tcp_port} udp/{dns_port}", file=ready,
              flush=True)
    try:
        await stop.wait()
    finally:
        server.close()
        transport.close()
        await server.wait_closed()


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "probe-responder",
        help=_("answer outreach probes on an Internet-side host and log who reached it"),
    )
    parser.add_argument("--policy", type=Path, required=True,
                        help=_("the networks.yaml the agents use "
                               "(its settings.probe key and ports)"))
    parser.add_argument("--listen", default="0.0.0.0",  # noqa: S104 (it must face the Internet)
                        help=_("address to listen on (default 0.0.0.0)"))
    parser.add_argument("--tcp-port", type=int, help=_("TCP port (default: the policy's)"))
    parser.add_argument("--dns-port", type=int, help=_("UDP DNS port (default: the policy's)"))
    parser.add_argument("--log", type=Path, help=_("append JSON lines here (default: stdout)"))
    parser.set_defaults(func=run, standalone=True)


def run(args: argparse.Namespace) -> int:
    key, tcp_port, dns_port = key_from_policy(args.policy)
    stream: TextIO = args.log.open("a", encoding="utf-8") if args.log else sys.stdout
    try:
        asyncio.run(
            serve(key, args.listen, args.tcp_port or tcp_port, args.dns_port or dns_port,
                  ProbeLog(stream), ready=sys.stderr)
        )
    finally:
        if args.log:
            stream.close()
    return 0
