"""Just enough netlink for the outreach source, on the standard library's AF_NETLINK sockets.

rtnetlink: subscribe to link, address, route and netconf changes; dump links
and addresses; ask the kernel which route an address would take
(``RTM_GETROUTE``, what ``ip route get`` does); set a link down or up.
nfnetlink_log: bind an NFLOG group and parse the packets the kernel filter
sends it. Messages are parsed with ``struct``; nothing here blocks unless the
socket was made blocking on purpose (the request/answer helpers).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

NETLINK_ROUTE: Final = 0
NETLINK_NETFILTER: Final = 12
SOL_NETLINK: Final = 270
NETLINK_NO_ENOBUFS: Final = 5

NLMSG_ERROR: Final = 2
NLMSG_DONE: Final = 3
NLM_F_REQUEST: Final = 0x1
NLM_F_MULTI: Final = 0x2
NLM_F_ACK: Final = 0x4
NLM_F_DUMP: Final = 0x300

RTM_NEWLINK: Final = 16
RTM_DELLINK: Final = 17
RTM_GETLINK: Final = 18
RTM_NEWADDR: Final = 20
RTM_DELADDR: Final = 21
RTM_GETADDR: Final = 22
RTM_NEWROUTE: Final = 24
RTM_DELROUTE: Final = 25
RTM_GETROUTE: Final = 26
RTM_NEWRULE: Final = 32
RTM_DELRULE: Final = 33
RTM_NEWNETCONF: Final = 80
RTM_DELNETCONF: Final = 81

RTMGRP_LINK: Final = 0x1
RTMGRP_IPV4_IFADDR: Final = 0x10
RTMGRP_IPV4_ROUTE: Final = 0x40
RTMGRP_IPV4_RULE: Final = 0x80
RTMGRP_IPV6_IFADDR: Final = 0x100
RTMGRP_IPV6_ROUTE: Final = 0x400
RTNLGRP_IPV4_NETCONF: Final = 24
RTNLGRP_IPV6_NETCONF: Final = 25
RTNLGRP_IPV6_RULE: Final = 19

IFF_UP: Final = 0x1
IFF_LOWER_UP: Final = 0x10000
IFLA_ADDRESS: Final = 1
IFLA_IFNAME: Final = 3
IFLA_LINKINFO: Final = 18
IFLA_INFO_KIND: Final = 1
IFLA_CARRIER: Final = 33
IFA_ADDRESS: Final = 1
IFA_LOCAL: Final = 2
RTA_DST: Final = 1
RTA_OIF: Final = 4
RTA_GATEWAY: Final = 5
RTA_PREFSRC: Final = 7
RTA_VIA: Final = 18

NFNL_SUBSYS_ULOG: Final = 4
NFULNL_MSG_PACKET: Final = 0
NFULNL_MSG_CONFIG: Final = 1
NFULA_CFG_CMD: Final = 1
NFULA_CFG_MODE: Final = 2
NFULA_CFG_TIMEOUT: Final = 3
NFULA_CFG_QTHRESH: Final = 4
NFULA_CFG_FLAGS: Final = 6
NFULNL_CFG_CMD_BIND: Final = 1
NFULNL_CFG_CMD_UNBIND: Final = 2
NFULNL_COPY_PACKET: Final = 2
NFULNL_CFG_F_SEQ: Final = 0x1
NFULA_PACKET_HDR: Final = 1
NFULA_IFINDEX_OUTDEV: Final = 5
NFULA_PAYLOAD: Final = 9
NFULA_PREFIX: Final = 10
NFULA_UID: Final = 11
NFULA_SEQ: Final = 12
NFULA_IFINDEX_INDEV: Final = 4

_HDR = struct.Struct("=LHHLL")
_ATTR = struct.Struct("=HH")
_IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_NFGEN = struct.Struct("=BBH")


class NetlinkError(OSError):
    """The kernel answered a request with an error (errno in ``errno``)."""


def _align(length: int) -> int:
    return (length + 3) & ~3


def attributes(data: bytes | memoryview, offset: int = 0) -> dict[int, bytes]:
    """Parse a run of rtattr/nlattr into {type: payload}; the nested flag bit is masked off."""
    result: dict[int, bytes] = {}
    end = len(data)
    while offset + 4 <= end:
        length, kind = _ATTR.unpack_from(data, offset)
        if length < 4 or offset + length > end:
            break
        result[kind & 0x3FFF] = bytes(data[offset + 4 : offset + length])
        offset += _align(length)
    return result


def attr(kind: int, payload: bytes) -> bytes:
    raw = _ATTR.pack(4 + len(payload), kind) + payload
    return raw + b"\0" * (_align(len(raw)) - len(raw))


def message(kind: int, flags: int, body: bytes, seq: int = 0) -> bytes:
    return _HDR.pack(_HDR.size + len(body), kind, flags, seq, 0) + body


def request_acked(sock: socket.socket, kind: int, body: bytes, what: str) -> None:
    """Send one netfilter configuration request and wait for its acknowledgement.

    A refusal raises ``NetlinkError`` naming ``what`` (the NFLOG group or queue).
    """
    sock.send(message(kind, NLM_F_REQUEST | NLM_F_ACK, body))
    while True:
        data = sock.recv(65536)
        for mtype, _flags, payload in messages(data):
            if mtype == NLMSG_ERROR:
                code = -struct.unpack_from("=i", payload)[0]
                if code:
                    raise NetlinkError(code, f"{what}: {os.strerror(code)}")
                return


def waiting_datagrams(sock: socket.socket, kind: int) -> Iterator[list[bytes]]:
    """The bodies of ``kind`` messages, one list per datagram waiting on a non-blocking socket.

    Stops when nothing waits. An overrun (ENOBUFS) is passed over: the kernel
    dropped what did not fit, and the caller learns of it its own way.
    """
    while True:
        try:
            data = sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.ENOBUFS:
                continue
            raise
        yield [body for mtype, _flags, body in messages(data) if mtype == kind]


def messages(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """Split one datagram into (type, flags, body) triples."""
    offset = 0
    while offset + _HDR.size <= len(data):
        length, kind, flags, _seq, _pid = _HDR.unpack_from(data, offset)
        if length < _HDR.size or offset + length > len(data):
            break
        yield kind, flags, data[offset + _HDR.size : offset + length]
        offset += _align(length)


def _cstring(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def _ip(family: int, raw: bytes) -> str:
    if family == socket.AF_INET and len(raw) >= 4:
        return str(ipaddress.IPv4Address(raw[:4]))
    if family == socket.AF_INET6 and len(raw) >= 16:
        return str(ipaddress.IPv6Address(raw[:16]))
    return ""


# -- rtnetlink records ---------------------------------------------------------


@dataclass(frozen=True)
class LinkMessage:
    index: int
    name: str
    iftype: int
    flags: int
    mac: str
    kind: str
    carrier: bool
    removed: bool

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)


@dataclass(frozen=True)
class AddressMessage:
    index: int
    family: int
    address: str
    prefixlen: int
    removed: bool


@dataclass(frozen=True)
class RouteAnswer:
    reachable: bool
    oif: int = 0
    gateway: str = ""
    source: str = ""


@dataclass(frozen=True)
class OtherMessage:
    """A route, rule or netconf change: only its arrival matters."""

    kind: int


def parse_link(kind: int, body: bytes) -> LinkMessage:
    _family, iftype, index, flags, _change = _IFINFO.unpack_from(body)
    attrs = attributes(body, _IFINFO.size)
    mac = ":".join(f"{b:02x}" for b in attrs.get(IFLA_ADDRESS, b""))
    link_kind = ""
    if IFLA_LINKINFO in attrs:
        info = attributes(attrs[IFLA_LINKINFO])
        link_kind = _cstring(info.get(IFLA_INFO_KIND, b""))
    carrier_raw = attrs.get(IFLA_CARRIER)
    carrier = bool(carrier_raw[0]) if carrier_raw else bool(flags & IFF_LOWER_UP)
    return LinkMessage(
        index=index,
        name=_cstring(attrs.get(IFLA_IFNAME, b"")),
        iftype=iftype,
        flags=flags,
        mac=mac,
        kind=link_kind,
        carrier=carrier,
        removed=kind == RTM_DELLINK,
    )


def parse_address(kind: int, body: bytes) -> AddressMessage:
    family, prefixlen, _flags, _scope, index = _IFADDR.unpack_from(body)
    attrs = attributes(body, _IFADDR.size)
    raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS, b"")
    return AddressMessage(index, family, _ip(family, raw), prefixlen, kind == RTM_DELADDR)


def parse_rtnl(kind: int, body: bytes) -> LinkMessage | AddressMessage | OtherMessage:
    if kind in (RTM_NEWLINK, RTM_DELLINK):
        return parse_link(kind, body)
    if kind in (RTM_NEWADDR, RTM_DELADDR):
        return parse_address(kind, body)
    return OtherMessage(kind)


def route_answer(answers: list[tuple[int, bytes]]) -> RouteAnswer:
    """The path in an RTM_GETROUTE reply: its first route, if it is one packets can take."""
    for kind, payload in answers:
        if kind != RTM_NEWROUTE:
            continue
        rfamily, *_rest = _RTMSG.unpack_from(payload)
        rtype = _rest[6]
        if rtype not in (
            1,
            2,
        ):  # RTN_UNICAST, RTN_LOCAL; blackhole/unreachable/prohibit are not a path
            return RouteAnswer(reachable=False)
        attrs = attributes(payload, _RTMSG.size)
        oif = struct.unpack("=i", attrs[RTA_OIF])[0] if RTA_OIF in attrs else 0
        gateway = _ip(rfamily, attrs.get(RTA_GATEWAY, b""))
        if not gateway and RTA_VIA in attrs:
            via = attrs[RTA_VIA]
            gateway = _ip(struct.unpack_from("=H", via)[0], via[2:])
        return RouteAnswer(True, oif, gateway, _ip(rfamily, attrs.get(RTA_PREFSRC, b"")))
    return RouteAnswer(reachable=False)


class RtnlSubscription:
    """A non-blocking rtnetlink socket bound to the link, address, route, rule and netconf groups.

    ``read`` raises ``OSError(ENOBUFS)`` when the kernel dropped messages: the
    caller must dump everything again to resynchronise.
    """

    GROUPS: Final = (
        RTMGRP_LINK
        | RTMGRP_IPV4_IFADDR
        | RTMGRP_IPV6_IFADDR
        | RTMGRP_IPV4_ROUTE
        | RTMGRP_IPV6_ROUTE
        | RTMGRP_IPV4_RULE
        | (1 << (RTNLGRP_IPV6_RULE - 1))
        | (1 << (RTNLGRP_IPV4_NETCONF - 1))
        | (1 << (RTNLGRP_IPV6_NETCONF - 1))
    )

    def __init__(self, rcvbuf: int = 1 << 20) -> None:
        self.sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, NETLINK_ROUTE
        )
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind((0, self.GROUPS))

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> list[LinkMessage | AddressMessage | OtherMessage]:
        """Every message waiting on the socket (empty when none)."""
        out: list[LinkMessage | AddressMessage | OtherMessage] = []
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                return out
            for kind, _flags, body in messages(data):
                out.append(parse_rtnl(kind, body))

    def close(self) -> None:
        self.sock.close()


class RulesetSubscription:
    """Non-blocking nfnetlink socket on the nftables group: any ruleset change wakes it.

    Only the arrival matters (the caller re-reads what it cares about), so
    ``drain`` just empties the socket; an overrun is as good as a message.
    """

    NFNLGRP_NFTABLES: Final = 7

    def __init__(self) -> None:
        self.sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, NETLINK_NETFILTER
        )
        try:
            self.sock.bind((0, 1 << (self.NFNLGRP_NFTABLES - 1)))
        except OSError:
            self.sock.close()
            raise

    def fileno(self) -> int:
        return self.sock.fileno()

    def drain(self) -> None:
        while True:
            try:
                if not self.sock.recv(1 << 16):
                    return
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise

    def close(self) -> None:
        self.sock.close()


class RtnlClient:
    """Blocking request/answer on its own socket: dumps, route queries, link state."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.sock.settimeout(5)
        self.sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self.sock.close()

    def _request(self, kind: int, flags: int, body: bytes) -> list[tuple[int, bytes]]:
        self._seq += 1
        seq = self._seq
        self.sock.send(message(kind, flags | NLM_F_REQUEST, body, seq))
        answers: list[tuple[int, bytes]] = []
        while True:
            data = self.sock.recv(1 << 18)
            offset = 0
            while offset + _HDR.size <= len(data):
                length, mtype, mflags, mseq, _pid = _HDR.unpack_from(data, offset)
                if length < _HDR.size:
                    break
                payload = data[offset + _HDR.size : offset + length]
                offset += _align(length)
                if mseq != seq:
                    continue
                if mtype == NLMSG_DONE:
                    return answers
                if mtype == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", payload)[0]
                    if code:
                        raise NetlinkError(code, os.strerror(code))
                    return answers
                answers.append((mtype, payload))
                if not mflags & NLM_F_MULTI and not flags & NLM_F_DUMP:
                    return answers

    def links(self) -> list[LinkMessage]:
        body = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        return [parse_link(k, b) for k, b in self._request(RTM_GETLINK, NLM_F_DUMP, body)]

    def addresses(self) -> list[AddressMessage]:
        body = _IFADDR.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        return [parse_address(k, b) for k, b in self._request(RTM_GETADDR, NLM_F_DUMP, body)]

    def route_to(self, address: str) -> RouteAnswer:
        """Which interface, gateway and source the kernel would use for ``address``."""
        ip = ipaddress.ip_address(address)
        family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
        body = _RTMSG.pack(family, ip.max_prefixlen, 0, 0, 0, 0, 0, 0, 0) + attr(RTA_DST, ip.packed)
        try:
            answers = self._request(RTM_GETROUTE, 0, body)
        except NetlinkError as exc:
            if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EINVAL, errno.EACCES):
                return RouteAnswer(reachable=False)
            raise
        return route_answer(answers)

    def set_link_up(self, index: int, up: bool) -> None:
        body = _IFINFO.pack(socket.AF_UNSPEC, 0, index, IFF_UP if up else 0, IFF_UP)
        self._request(RTM_NEWLINK, NLM_F_ACK, body)


# -- nfnetlink_log ---------------------------------------------------------------


@dataclass(frozen=True)
class LoggedPacket:
    prefix: str
    hook: int
    family: int
    payload: bytes
    outdev: int = 0
    indev: int = 0
    uid: int | None = None
    seq: int | None = None


def parse_logged(body: bytes) -> LoggedPacket:
    """One NFULNL_MSG_PACKET body: prefix, hook, devices, uid, sequence number, the packet."""
    family = body[0]
    attrs = attributes(body, _NFGEN.size)
    header = attrs.get(NFULA_PACKET_HDR, b"\0\0\0\0")
    uid = attrs.get(NFULA_UID)
    seq = attrs.get(NFULA_SEQ)
    out = attrs.get(NFULA_IFINDEX_OUTDEV)
    ind = attrs.get(NFULA_IFINDEX_INDEV)
    return LoggedPacket(
        prefix=_cstring(attrs.get(NFULA_PREFIX, b"")),
        hook=header[2],
        family=family,
        payload=attrs.get(NFULA_PAYLOAD, b""),
        outdev=struct.unpack("!I", out)[0] if out else 0,
        indev=struct.unpack("!I", ind)[0] if ind else 0,
        uid=struct.unpack("!I", uid)[0] if uid else None,
        seq=struct.unpack("!I", seq)[0] if seq else None,
    )


@dataclass
class NflogGroup:
    """One bound NFLOG group: non-blocking reads of logged packets, gaps counted as lost."""

    group: int
    copy_range: int = 512
    rcvbuf: int = 4 << 20
    sock: socket.socket = field(init=False)
    lost: int = 0
    _next_seq: int | None = None

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, 33, self.rcvbuf)  # SO_RCVBUFFORCE
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        self.sock.bind((0, 0))
        self.sock.settimeout(5)
        try:
            self._config(attr(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_BIND])))
            mode = struct.pack("!IBx", self.copy_range, NFULNL_COPY_PACKET)
            self._config(attr(NFULA_CFG_MODE, mode))
            # Deliver every packet at once: the default batches up to 100 packets or 1 s.
            self._config(attr(NFULA_CFG_QTHRESH, struct.pack("!I", 1)))
            self._config(attr(NFULA_CFG_TIMEOUT, struct.pack("!I", 1)))
            self._config(attr(NFULA_CFG_FLAGS, struct.pack("!H", NFULNL_CFG_F_SEQ)))
        except Exception:
            self.sock.close()
            raise
        self.sock.setblocking(False)

    def _config(self, attrs: bytes) -> None:
        body = _NFGEN.pack(socket.AF_UNSPEC, 0, socket.htons(self.group)) + attrs
        kind = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG
        request_acked(self.sock, kind, body, f"NFLOG group {self.group}")

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self, limit: int = 256) -> list[LoggedPacket]:
        """Up to ``limit`` waiting packets; an overrun raises nothing and is counted as lost."""
        packets: list[LoggedPacket] = []
        # An overrun is passed over: sequence numbers reveal how many were lost.
        for bodies in waiting_datagrams(self.sock, (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET):
            for body in bodies:
                packet = parse_logged(body)
                if packet.seq is not None:
                    if self._next_seq is not None and packet.seq > self._next_seq:
                        self.lost += packet.seq - self._next_seq
                    self._next_seq = packet.seq + 1
                packets.append(packet)
            if len(packets) >= limit:
                break
        return packets

    def close(self) -> None:
        try:
            self.sock.setblocking(True)
            self._config(attr(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_UNBIND])))
        except OSError:
            pass
        self.sock.close()
