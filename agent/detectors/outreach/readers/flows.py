"""Flows and DNS answers from the kernel filter's NFLOG group, each with its owning process.

The ``inet courtguard`` table (``kernel_filter``) logs the first packet of
every new outgoing or forwarded flow and the DNS answers for the intranet
zones to one NFLOG group; this reader parses them (``packets``), asks the
socket table who owns a local flow (``attribution``) and counts what was
lost (NFLOG sequence gaps).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from agent.detectors.outreach import judgement as j
from agent.detectors.outreach.observations import (
    DnsAnswerObservation,
    FlowObservation,
    LinkFacts,
)
from agent.detectors.outreach.policy import NetworksPolicy
from agent.detectors.outreach.readers import kernel_filter
from agent.detectors.outreach.readers.attribution import Attributor
from agent.detectors.outreach.readers.netlink import LoggedPacket, NflogGroup
from agent.detectors.outreach.readers.packets import parse_dns, parse_ip


class FlowReader:
    """One bound NFLOG group (``OSError`` if it cannot be bound); ``put`` receives observations."""

    def __init__(self, group: int, put: Callable[[Any], None]) -> None:
        self.nflog = NflogGroup(group)
        self._put = put
        self.attributor = Attributor()

    def fileno(self) -> int:
        return self.nflog.fileno()

    @property
    def lost(self) -> int:
        return self.nflog.lost

    def close(self) -> None:
        self.nflog.close()

    def read(self, policy: NetworksPolicy, link: Callable[[int], LinkFacts | None]) -> None:
        """Every waiting packet; ``link`` gives the facts of an interface index."""
        for packet in self.nflog.read():
            observation = observe(packet, policy, link, self.attributor)
            if observation is not None:
                self._put(observation)


def observe(
    packet: LoggedPacket,
    policy: NetworksPolicy,
    link: Callable[[int], LinkFacts | None],
    attributor: Attributor,
) -> FlowObservation | DnsAnswerObservation | None:
    """The observation one logged packet makes (None for what is not IP or not asked for)."""
    header = parse_ip(packet.payload)
    if header is None:
        return None
    if packet.prefix == kernel_filter.PREFIX_DNS_ANSWER:
        return _dns_answer(header.source, header.payload, policy)
    hook: Literal["output", "forward"] = (
        "forward" if packet.prefix == kernel_filter.PREFIX_FWD else "output"
    )
    process, note = None, ""
    if hook == "output":
        process, note = attributor.owner(
            header.protocol, header.source_port, ipv6=":" in header.source
        )
    else:
        note = "forwarded for another device; no local process"
    query = ""
    if header.destination_port == 53 and header.protocol == "udp":
        dns = parse_dns(header.payload)
        query = dns.question[:512] if dns is not None else ""
    return FlowObservation(
        # parse_ip names only tcp, udp, icmp, icmpv6 or other (its PROTOCOLS), the literal
        # the observation declares; the header types it as str to stay free of the policy.
        protocol=header.protocol,  # type: ignore[arg-type]  # one of PROTOCOLS
        source=header.source,
        destination=header.destination,
        source_port=header.source_port,
        destination_port=header.destination_port,
        link=link(packet.outdev),
        hook=hook,
        process=process,
        process_note=note[:512],
        uid=packet.uid,
        query_name=query,
    )


def _dns_answer(
    resolver: str, payload: bytes, policy: NetworksPolicy
) -> DnsAnswerObservation | None:
    """An answer for a name in the intranet zones; answers for other names are not kept."""
    message = parse_dns(payload)
    if message is None or not message.response or not j.in_zones(message.question, policy):
        return None
    return DnsAnswerObservation(
        resolver=resolver, name=message.question[:512], addresses=message.addresses()[:64]
    )
