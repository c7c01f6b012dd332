"""The outreach probe (外联探测): its wire protocol, shared with the responder, and the client.

A probe proves the host is outside the boundary only if the reply comes from
the court's own Internet-side responder, so a captive portal or transparent
proxy that answers anything cannot fake it:

* TCP: the agent sends ``CGPROBE1 <nonce> <host> <interface>\\n``; the
  responder answers ``CGPROBE1 <hmac>\\n``;
* DNS: the agent asks TXT ``<nonce>.<host>.<interface>.cgprobe``; the answer
  is one TXT string ``cg1=<hmac>``;

where ``hmac`` is HMAC-SHA256 over ``courtguard-probe-v1|<method>|<nonce>``
with the key from the policy. Each probe binds to one interface
(SO_BINDTODEVICE) and carries a socket mark so the kernel filter does not
report the agent's own probes as flows.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeVar

import structlog

from agent.detectors.outreach.observations import LinkFacts, ProbeObservation
from agent.detectors.outreach.policy import NetworksPolicy
from agent.detectors.outreach.readers.packets import DnsMessage, build_dns_query, parse_dns

log = structlog.get_logger("courtguard.outreach")

MAGIC: Final = "CGPROBE1"
DNS_SUFFIX: Final = "cgprobe"
SO_MARK: Final = 36
SO_BINDTODEVICE: Final = 25
_LABEL: Final = re.compile(r"[^a-z0-9-]")

Outcome = Literal["verified", "forged", "no-reply", "error"]
_T = TypeVar("_T")


def signature(key: str, method: str, nonce: str) -> str:
    message = f"courtguard-probe-v1|{method}|{nonce}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def verify(key: str, method: str, nonce: str, answer: str) -> bool:
    return hmac.compare_digest(signature(key, method, nonce), answer.strip().lower())


def label(text: str) -> str:
    """A DNS-safe label (hostnames and interface names can hold anything)."""
    return (_LABEL.sub("-", text.lower()) or "x")[:63]


def dns_name(nonce: str, host: str, interface: str) -> str:
    return f"{nonce}.{label(host)}.{label(interface)}.{DNS_SUFFIX}"


def parse_dns_name(name: str) -> tuple[str, str, str] | None:
    """(nonce, host, interface) from a probe query name, or None when it is not one."""
    parts = name.lower().rstrip(".").split(".")
    if len(parts) != 4 or parts[3] != DNS_SUFFIX or not re.fullmatch(r"[0-9a-f]{32}", parts[0]):
        return None
    return parts[0], parts[1], parts[2]


def _socket(kind: int, interface: str, family: int, mark: int | None) -> socket.socket:
    sock = socket.socket(family, kind)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, interface.encode())
        if mark is not None:
            # Without CAP_NET_ADMIN there is no mark and the filter reports the probe as a flow.
            with contextlib.suppress(PermissionError):
                sock.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
    except Exception:
        sock.close()
        raise
    return sock


@dataclass(frozen=True)
class ProbeTarget:
    """Where one probe goes and what it needs to prove the answer."""

    interface: str
    target: str
    port: int
    key: str
    host: str
    timeout_s: float
    mark: int | None = None


async def _exchange(
    probe: ProbeTarget, kind: int, talk: Callable[[socket.socket], Awaitable[_T]]
) -> tuple[_T | None, Outcome, str, float | None]:
    """Open a socket bound to the interface, run ``talk`` under the timeout, close it."""
    family = socket.AF_INET6 if ":" in probe.target else socket.AF_INET
    started = time.perf_counter()
    try:
        sock = _socket(kind, probe.interface, family, probe.mark)
    except OSError as exc:
        return None, "error", f"cannot bind to {probe.interface}: {exc.strerror or exc}", None
    try:
        async with asyncio.timeout(probe.timeout_s):
            result = await talk(sock)
    except TimeoutError:
        return None, "no-reply", "timed out", None
    except OSError as exc:
        return None, "no-reply", exc.strerror or str(exc), None
    finally:
        sock.close()
    return result, "verified", "", round((time.perf_counter() - started) * 1000, 1)


async def probe_tcp(probe: ProbeTarget) -> tuple[Outcome, str, float | None]:
    """One TCP probe: (outcome, detail, round trip in ms)."""
    loop = asyncio.get_running_loop()
    nonce = os.urandom(16).hex()
    line = f"{MAGIC} {nonce} {label(probe.host)} {label(probe.interface)}\n".encode()

    async def talk(sock: socket.socket) -> bytes:
        await loop.sock_connect(sock, (probe.target, probe.port))
        await loop.sock_sendall(sock, line)
        reply = b""
        while b"\n" not in reply and len(reply) < 512:
            chunk = await loop.sock_recv(sock, 512)
            if not chunk:
                break
            reply += chunk
        return reply

    reply, outcome, detail, rtt = await _exchange(probe, socket.SOCK_STREAM, talk)
    if reply is None:
        return outcome, detail, rtt
    words = reply.decode(errors="replace").split()
    if len(words) == 2 and words[0] == MAGIC and verify(probe.key, "tcp", nonce, words[1]):
        return "verified", "", rtt
    return "forged", f"reply without a valid signature: {reply[:60]!r}", rtt


async def probe_dns(probe: ProbeTarget) -> tuple[Outcome, str, float | None]:
    """One DNS (UDP) probe: (outcome, detail, round trip in ms)."""
    loop = asyncio.get_running_loop()
    nonce = os.urandom(16).hex()
    ident = int.from_bytes(os.urandom(2), "big")
    query = build_dns_query(ident, dns_name(nonce, probe.host, probe.interface))

    async def talk(sock: socket.socket) -> DnsMessage:
        await loop.sock_sendto(sock, query, (probe.target, probe.port))
        while True:
            data, _peer = await loop.sock_recvfrom(sock, 2048)
            answer = parse_dns(data)
            if answer is not None and answer.ident == ident and answer.response:
                return answer

    answer, outcome, detail, rtt = await _exchange(probe, socket.SOCK_DGRAM, talk)
    if answer is None:
        return outcome, detail, rtt
    for text in answer.txt():
        value = text.decode(errors="replace")
        if value.startswith("cg1=") and verify(probe.key, "dns", nonce, value[4:]):
            return "verified", "", rtt
    return "forged", "DNS answer without a valid signature", rtt


async def probe_links(
    links: Sequence[LinkFacts], policy: NetworksPolicy, host: str, mark: int | None
) -> AsyncIterator[ProbeObservation]:
    """Probe every target by every method through each link, yielding each answer as it comes.

    Every probe runs at once and each one's observation is yielded when that
    probe completes, so a verified hit through one interface is reported
    without waiting for the others to time out. Only answers become
    observations: a reply that does not verify is logged and yielded as
    ``forged``; no reply or an error is normal for a link that does not
    reach the Internet.
    """
    settings = policy.settings.probe
    if settings is None or not policy.probe_targets:
        return
    jobs = []
    for link in links:
        for target in policy.probe_targets:
            for method in settings.methods:
                run = probe_tcp if method == "tcp" else probe_dns
                port = settings.tcp_port if method == "tcp" else settings.dns_port
                request = ProbeTarget(
                    link.name, str(target), port, settings.key, host, settings.timeout_s, mark
                )
                jobs.append(_observed(link, str(target), port, method, run(request)))
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        for next_done in asyncio.as_completed(tasks):
            found = await next_done
            if found is not None:
                yield found
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _observed(
    link: LinkFacts,
    target: str,
    port: int,
    method: Literal["tcp", "dns"],
    probe: Awaitable[tuple[Outcome, str, float | None]],
) -> ProbeObservation | None:
    """One probe's observation: None for no reply, an error or a crash (logged)."""
    try:
        outcome, detail, rtt = await probe
    except Exception as exc:  # one broken probe must not hide the others' answers
        log.warning("outreach: probe crashed", interface=link.name, error=str(exc))
        return None
    if outcome == "forged":
        log.warning(
            "outreach: probe answered without a valid signature",
            interface=link.name,
            target=target,
            method=method,
            detail=detail,
        )
    if outcome not in {"verified", "forged"}:
        return None
    return ProbeObservation(
        link=link,
        target=target,
        port=port,
        method=method,
        outcome=outcome,
        detail=detail[:512],
        rtt_ms=rtt,
    )
