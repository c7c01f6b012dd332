"""rtnetlink and nfnetlink_log messages, parsed from bytes captured from a real kernel."""

from __future__ import annotations

import socket

from agent.detectors.outreach.readers import netlink
from agent.detectors.outreach.readers.netlink import (
    AddressMessage,
    LinkMessage,
    OtherMessage,
    parse_logged,
    parse_rtnl,
    route_answer,
)
from tests.agent.detectors.outreach.readers.captured import datagrams, little_endian_only

pytestmark = little_endian_only


def rtnl_events() -> list[LinkMessage | AddressMessage | OtherMessage]:
    return [
        parse_rtnl(kind, body)
        for data in datagrams("rtnl-events.bin")
        for kind, _flags, body in netlink.messages(data)
    ]


def test_link_messages_follow_the_veth_from_creation_to_carrier() -> None:
    """cgcap0 is created down without carrier, set up, then gains carrier when its peer is up."""
    states = [
        (m.up, m.carrier, m.kind, m.mac, m.iftype)
        for m in rtnl_events()
        if isinstance(m, LinkMessage) and m.name == "cgcap0"
    ]
    assert states[0] == (False, False, "veth", "02:00:00:00:cc:05", 1)
    assert states[-1][:2] == (True, True)
    assert all(not m.removed for m in rtnl_events() if isinstance(m, LinkMessage))


def test_address_messages_carry_both_families_and_the_link_index() -> None:
    events = rtnl_events()
    index = next(m.index for m in events if isinstance(m, LinkMessage) and m.name == "cgcap0")
    addresses = {
        (m.family, m.address, m.prefixlen)
        for m in events
        if isinstance(m, AddressMessage) and m.index == index
    }
    assert addresses == {
        (socket.AF_INET, "198.18.0.5", 24),
        (socket.AF_INET6, "2001:db8:cc::5", 64),
    }
    loopback = {m.address for m in events if isinstance(m, AddressMessage) and m.index == 1}
    assert loopback == {"127.0.0.1", "::1"}


def test_routes_and_netconf_are_other_messages() -> None:
    kinds = {m.kind for m in rtnl_events() if isinstance(m, OtherMessage)}
    assert kinds == {netlink.RTM_NEWROUTE, netlink.RTM_NEWNETCONF}


def test_route_reply_names_the_interface_and_source() -> None:
    (data,) = datagrams("rtnl-route-reply.bin")
    answers = [(kind, body) for kind, _flags, body in netlink.messages(data)]
    assert route_answer(answers) == netlink.RouteAnswer(
        reachable=True, oif=3, gateway="", source="198.18.0.5"
    )


def test_a_route_reply_that_is_not_a_path_is_unreachable() -> None:
    """The same reply with its type changed to RTN_UNREACHABLE (7) is no way out."""
    (data,) = datagrams("rtnl-route-reply.bin")
    answers = [(kind, bytearray(body)) for kind, _flags, body in netlink.messages(data)]
    answers[0][1][7] = 7  # rtmsg.rtm_type
    assert route_answer([(k, bytes(b)) for k, b in answers]) == netlink.RouteAnswer(False)
    assert route_answer([]) == netlink.RouteAnswer(False)


def test_nflog_packets_carry_prefix_device_uid_sequence_and_the_ip_packet() -> None:
    packets = [
        parse_logged(body)
        for data in datagrams("nflog-packets.bin")
        for kind, _flags, body in netlink.messages(data)
        if kind == (netlink.NFNL_SUBSYS_ULOG << 8) | netlink.NFULNL_MSG_PACKET
    ]
    assert [(p.prefix, p.family, p.outdev, p.uid, p.seq) for p in packets] == [
        ("cg-out", socket.AF_INET, 3, 0, 0),
        ("cg-out", socket.AF_INET, 3, 0, 1),
    ]
    assert [p.payload[9] for p in packets] == [17, 6]  # UDP, TCP
    assert packets[0].payload[16:20] == socket.inet_aton("203.0.113.9")


def test_truncated_datagrams_never_raise() -> None:
    """Any prefix of a real datagram parses to fewer messages, never an exception."""
    for name in ("rtnl-events.bin", "rtnl-route-reply.bin", "nflog-packets.bin"):
        for data in datagrams(name):
            for end in range(len(data)):
                for _kind, _flags, body in netlink.messages(data[:end]):
                    netlink.attributes(body, 16)


def test_attributes_round_trip_and_mask_the_nested_flag() -> None:
    raw = netlink.attr(3, b"eth0\0") + netlink.attr(0x8000 | 18, netlink.attr(1, b"veth\0"))
    parsed = netlink.attributes(raw)
    assert parsed[3] == b"eth0\0"
    assert netlink.attributes(parsed[18]) == {1: b"veth\0"}
