"""Packet and DNS parsing: good input parsed, bad input refused without exceptions."""

from __future__ import annotations

import ipaddress
import struct

from hypothesis import given
from hypothesis import strategies as st

from agent.detectors.outreach.readers.packets import (
    build_dns_query,
    build_txt_answer,
    parse_dns,
    parse_ip,
)


def ipv4_udp(src: str, dst: str, sport: int, dport: int, payload: bytes = b"") -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        28 + len(payload),
        0,
        0,
        64,
        17,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    return header + struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def ipv6_tcp(src: str, dst: str, sport: int, dport: int) -> bytes:
    header = struct.pack(
        "!IHBB16s16s",
        6 << 28,
        20,
        6,
        64,
        ipaddress.IPv6Address(src).packed,
        ipaddress.IPv6Address(dst).packed,
    )
    return header + struct.pack("!HHIIBBHHH", sport, dport, 0, 0, 5 << 4, 2, 0, 0, 0)


def test_ipv4_udp_with_dns_question() -> None:
    packet = ipv4_udp("10.0.0.2", "203.0.113.53", 5353, 53, build_dns_query(7, "example.com", 1))
    header = parse_ip(packet)
    assert header is not None
    assert (header.protocol, header.destination, header.destination_port) == (
        "udp",
        "203.0.113.53",
        53,
    )
    dns = parse_dns(header.payload)
    assert dns is not None and dns.question == "example.com" and not dns.response


def test_ipv6_tcp() -> None:
    header = parse_ip(ipv6_tcp("2001:db8::1", "2001:db8::2", 40000, 443))
    assert header is not None
    assert (header.protocol, header.source_port, header.destination_port) == ("tcp", 40000, 443)


def test_txt_answer_round_trip() -> None:
    query = build_dns_query(99, "abc.host.eth0.cgprobe")
    answer = parse_dns(build_txt_answer(query, b"cg1=00ff") or b"")
    assert answer is not None and answer.response and answer.ident == 99
    assert answer.txt() == [b"cg1=00ff"]


@given(st.binary(max_size=200))
def test_garbage_never_raises(data: bytes) -> None:
    parse_ip(data)
    parse_dns(data)
    build_txt_answer(data, b"x")
