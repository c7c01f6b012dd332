"""Logged packets become flows: the captured NFLOG packets, owners from a /proc built here."""

from __future__ import annotations

from pathlib import Path

from agent.detectors.outreach.observations import DnsAnswerObservation, FlowObservation, LinkFacts
from agent.detectors.outreach.policy import NetworksPolicy
from agent.detectors.outreach.readers import kernel_filter, netlink
from agent.detectors.outreach.readers.attribution import Attributor
from agent.detectors.outreach.readers.flows import observe
from agent.detectors.outreach.readers.netlink import LoggedPacket, parse_logged
from agent.detectors.outreach.readers.packets import build_dns_query, build_txt_answer
from tests.agent.detectors.outreach.readers.captured import datagrams, little_endian_only

pytestmark = little_endian_only

CGCAP0 = LinkFacts(name="cgcap0", index=3, link_kind="veth")


def logged() -> list[LoggedPacket]:
    return [
        parse_logged(body)
        for data in datagrams("nflog-packets.bin")
        for kind, _flags, body in netlink.messages(data)
        if kind == (netlink.NFNL_SUBSYS_ULOG << 8) | netlink.NFULNL_MSG_PACKET
    ]


def link(index: int) -> LinkFacts | None:
    return CGCAP0 if index == 3 else None


def test_outgoing_dns_query_and_tcp_syn(policy: NetworksPolicy, tmp_path: Path) -> None:
    """The capturing process has exited: the flows say so instead of naming an owner."""
    (tmp_path / "net").mkdir()
    query, syn = (observe(p, policy, link, Attributor(tmp_path)) for p in logged())
    assert isinstance(query, FlowObservation) and isinstance(syn, FlowObservation)
    assert (query.protocol, query.source, query.destination) == ("udp", "198.18.0.5", "203.0.113.9")
    assert (query.source_port, query.destination_port) == (40053, 53)
    assert query.query_name == "example.org"
    assert (syn.protocol, syn.source_port, syn.destination_port, syn.query_name) == (
        "tcp",
        40443,
        443,
        "",
    )
    for flow in (query, syn):
        assert (flow.hook, flow.link, flow.uid, flow.process) == ("output", CGCAP0, 0, None)
        assert flow.process_note == "socket already closed when the flow was seen"


def test_forwarded_packets_have_no_local_process(policy: NetworksPolicy, tmp_path: Path) -> None:
    packet = logged()[1]
    forwarded = LoggedPacket(kernel_filter.PREFIX_FWD, packet.hook, packet.family, packet.payload)
    flow = observe(forwarded, policy, link, Attributor(tmp_path))
    assert isinstance(flow, FlowObservation)
    assert (flow.hook, flow.link, flow.process) == ("forward", None, None)
    assert flow.process_note == "forwarded for another device; no local process"


def test_dns_answers_are_kept_only_for_intranet_zones(
    policy: NetworksPolicy, tmp_path: Path
) -> None:
    packet = logged()[0]
    header = packet.payload[:28]  # the captured IPv4 and UDP headers carry the answer

    def answer(name: str) -> LoggedPacket:
        payload = build_txt_answer(build_dns_query(0x1234, name, 1), b"x")
        assert payload is not None
        return LoggedPacket(kernel_filter.PREFIX_DNS_ANSWER, 0, 2, header + payload)

    kept = observe(answer("www.court.local"), policy, link, Attributor(tmp_path))
    assert isinstance(kept, DnsAnswerObservation)
    assert (kept.resolver, kept.name) == ("198.18.0.5", "www.court.local")
    assert observe(answer("www.example.org"), policy, link, Attributor(tmp_path)) is None


def test_what_is_not_an_ip_packet_is_skipped(policy: NetworksPolicy, tmp_path: Path) -> None:
    empty = LoggedPacket(kernel_filter.PREFIX_OUT, 3, 2, b"")
    assert observe(empty, policy, link, Attributor(tmp_path)) is None

