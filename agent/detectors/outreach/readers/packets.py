"""Parse the first bytes of an IP packet (as NFLOG hands them over) and DNS messages.

Only what the detector needs: protocol, addresses, ports, a DNS question name,
and the A/AAAA answers of a DNS response. Truncated or malformed input gives
``None`` or empty results, never an exception.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Final

PROTOCOLS: Final = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}
_V6_EXTENSIONS: Final = frozenset({0, 43, 60, 51})  # hop-by-hop, routing, dest opts, AH


@dataclass(frozen=True)
class PacketHeader:
    protocol: str
    source: str
    destination: str
    source_port: int | None = None
    destination_port: int | None = None
    payload: bytes = b""


def parse_ip(packet: bytes) -> PacketHeader | None:
    """The transport facts of one IPv4 or IPv6 packet, or None when it is not one."""
    if not packet:
        return None
    version = packet[0] >> 4
    if version == 4 and len(packet) >= 20:
        ihl = (packet[0] & 0x0F) * 4
        proto = packet[9]
        src, dst = packet[12:16], packet[16:20]
        fragment_offset = struct.unpack_from("!H", packet, 6)[0] & 0x1FFF
        rest = packet[ihl:] if fragment_offset == 0 else b""
        source, destination = str(ipaddress.IPv4Address(src)), str(ipaddress.IPv4Address(dst))
    elif version == 6 and len(packet) >= 40:
        proto = packet[6]
        source = str(ipaddress.IPv6Address(packet[8:24]))
        destination = str(ipaddress.IPv6Address(packet[24:40]))
        offset = 40
        while proto in _V6_EXTENSIONS and offset + 2 <= len(packet):
            proto, length = packet[offset], packet[offset + 1]
            offset += (length + 2) * 4 if proto == 51 else (length + 1) * 8
        if proto == 44:  # fragment header: ports only in the first fragment
            proto = packet[offset] if offset < len(packet) else 59
            offset += 8
        rest = packet[offset:]
    else:
        return None
    name = PROTOCOLS.get(proto, "other")
    if name in {"tcp", "udp"} and len(rest) >= 4:
        sport, dport = struct.unpack_from("!HH", rest)
        header_len = ((rest[12] >> 4) * 4) if name == "tcp" and len(rest) >= 13 else 8
        return PacketHeader(name, source, destination, sport, dport, bytes(rest[header_len:]))
    return PacketHeader(name, source, destination)


def _read_name(message: bytes, offset: int, depth: int = 0) -> tuple[str, int]:
    labels: list[str] = []
    while offset < len(message):
        length = message[offset]
        if length == 0:
            return ".".join(labels), offset + 1
        if length & 0xC0 == 0xC0:
            if depth > 8 or offset + 1 >= len(message):
                raise ValueError("bad compression pointer")
            pointer = struct.unpack_from("!H", message, offset)[0] & 0x3FFF
            name, _ = _read_name(message, pointer, depth + 1)
            labels.append(name)
            return ".".join(labels), offset + 2
        offset += 1
        labels.append(message[offset : offset + length].decode("ascii", errors="replace"))
        offset += length
    raise ValueError("name runs past the message")


@dataclass(frozen=True)
class DnsMessage:
    ident: int
    response: bool
    question: str
    qtype: int
    answers: list[tuple[str, int, bytes]] = field(default_factory=list)

    def addresses(self) -> list[str]:
        out = []
        for _name, rtype, data in self.answers:
            if rtype == 1 and len(data) == 4:
                out.append(str(ipaddress.IPv4Address(data)))
            elif rtype == 28 and len(data) == 16:
                out.append(str(ipaddress.IPv6Address(data)))
        return out

    def txt(self) -> list[bytes]:
        out = []
        for _name, rtype, data in self.answers:
            offset = 0
            while rtype == 16 and offset < len(data):
                length = data[offset]
                out.append(data[offset + 1 : offset + 1 + length])
                offset += 1 + length
        return out


def parse_dns(message: bytes, max_answers: int = 64) -> DnsMessage | None:
    """A DNS message's first question and its answers, or None if it does not parse."""
    try:
        if len(message) < 12:
            return None
        ident, flags, qdcount, ancount = struct.unpack_from("!HHHH", message)
        offset = 12
        question, qtype = "", 0
        if qdcount:
            question, offset = _read_name(message, offset)
            qtype = struct.unpack_from("!H", message, offset)[0]
            offset += 4
            for _ in range(qdcount - 1):
                _, offset = _read_name(message, offset)
                offset += 4
        answers = []
        for _ in range(min(ancount, max_answers)):
            name, offset = _read_name(message, offset)
            rtype, _cls, _ttl, length = struct.unpack_from("!HHIH", message, offset)
            offset += 10
            answers.append((name, rtype, message[offset : offset + length]))
            offset += length
        return DnsMessage(ident, bool(flags & 0x8000), question, qtype, answers)
    except (ValueError, struct.error, IndexError):
        return None


def build_dns_query(ident: int, name: str, qtype: int = 16) -> bytes:
    """A one-question DNS query (TXT by default) with recursion desired."""
    question = b"".join(bytes([len(p)]) + p.encode("ascii") for p in name.split(".") if p) + b"\0"
    return (
        struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question + struct.pack("!HH", qtype, 1)
    )


def build_txt_answer(query: bytes, text: bytes) -> bytes | None:
    """Answer a query with one TXT record for its question; None if the query does not parse."""
    parsed = parse_dns(query)
    if parsed is None or parsed.response or not parsed.question:
        return None
    question_end = 12 + len(build_dns_query(0, parsed.question, parsed.qtype)) - 12
    header = struct.pack("!HHHHHH", parsed.ident, 0x8180, 1, 1, 0, 0)
    txt = bytes([len(text)]) + text
    answer = struct.pack("!HHHIH", 0xC00C, 16, 1, 0, len(txt)) + txt
    return header + query[12:question_end] + answer
