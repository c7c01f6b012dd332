"""NFQUEUE on the standard library's AF_NETLINK sockets: bind a queue, read held packets, answer.

The kernel filter sends the first packet of each new outside flow to one
queue (``queue num N bypass``); the packet waits in the kernel until a
verdict names its id. The queue is configured fail-open twice over: the rule's
``bypass`` accepts packets while no socket is bound (the agent stopped or was
killed), and ``NFQA_CFG_F_FAIL_OPEN`` accepts them when the queue is full
(``QUEUE_MAXLEN``) or this socket's buffer overflows (the agent overloaded).
``NFQA_CFG_F_UID_GID`` makes the kernel add the sending socket's uid and gid,
which stay known after the socket itself is gone.

No C library is needed: the messages are a handful of fixed structs (the
same approach as the NFLOG reader in ``netlink``). Verdicts for one read are
sent in one datagram.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass
from typing import Final

from agent.detectors.outreach.readers.netlink import (
    NETLINK_NETFILTER,
    NLM_F_ACK,
    NLM_F_REQUEST,
    NLMSG_ERROR,
    NetlinkError,
    attr,
    attributes,
    message,
    messages,
    request_acked,
    waiting_datagrams,
)

NFNL_SUBSYS_QUEUE: Final = 3
NFQNL_MSG_PACKET: Final = 0
NFQNL_MSG_VERDICT: Final = 1
NFQNL_MSG_CONFIG: Final = 2

NFQA_CFG_CMD: Final = 1
NFQA_CFG_PARAMS: Final = 2
NFQA_CFG_QUEUE_MAXLEN: Final = 3
NFQA_CFG_MASK: Final = 4
NFQA_CFG_FLAGS: Final = 5
NFQNL_CFG_CMD_BIND: Final = 1
NFQNL_CFG_CMD_UNBIND: Final = 2
NFQNL_COPY_PACKET: Final = 2
NFQA_CFG_F_FAIL_OPEN: Final = 0x1
NFQA_CFG_F_UID_GID: Final = 0x8

NFQA_PACKET_HDR: Final = 1
NFQA_VERDICT_HDR: Final = 2
NFQA_MARK: Final = 3
NFQA_IFINDEX_OUTDEV: Final = 6
NFQA_PAYLOAD: Final = 10
NFQA_UID: Final = 16
NFQA_GID: Final = 17

NF_DROP: Final = 0
NF_ACCEPT: Final = 1

#: Packets the kernel holds for us at most; beyond that it accepts them unseen (fail-open).
QUEUE_MAXLEN: Final = 1024

_NFGEN = struct.Struct("=BBH")
_SO_RCVBUFFORCE: Final = 33


@dataclass(frozen=True)
class HeldPacket:
    """One packet waiting in the kernel for a verdict."""

    packet_id: int
    hook: int
    payload: bytes
    outdev: int = 0
    mark: int = 0
    uid: int | None = None
    gid: int | None = None


def parse_held(body: bytes) -> HeldPacket | None:
    """One NFQNL_MSG_PACKET body, or None without the header the verdict needs."""
    attrs = attributes(body, _NFGEN.size)
    header = attrs.get(NFQA_PACKET_HDR)
    if header is None or len(header) < 7:
        return None
    packet_id = struct.unpack_from("!I", header)[0]
    out = attrs.get(NFQA_IFINDEX_OUTDEV)
    mark = attrs.get(NFQA_MARK)
    uid = attrs.get(NFQA_UID)
    gid = attrs.get(NFQA_GID)
    return HeldPacket(
        packet_id=packet_id,
        hook=header[6],
        payload=attrs.get(NFQA_PAYLOAD, b""),
        outdev=struct.unpack("!I", out)[0] if out else 0,
        mark=struct.unpack("!I", mark)[0] if mark else 0,
        uid=struct.unpack("!I", uid)[0] if uid else None,
        gid=struct.unpack("!I", gid)[0] if gid else None,
    )


class HeldQueue:
    """One bound NFQUEUE number: non-blocking reads of held packets, verdicts in one send.

    ``OSError`` from the constructor when the queue cannot be bound (no
    CAP_NET_ADMIN, or another process holds the number: EBUSY).
    """

    def __init__(self, number: int, copy_range: int = 512, rcvbuf: int = 2 << 20) -> None:
        self.number = number
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, rcvbuf)
            except OSError:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.bind((0, 0))
            self.sock.settimeout(5)
            self._config(attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, 0)))
            self._config(
                attr(NFQA_CFG_PARAMS, struct.pack("!IB", copy_range, NFQNL_COPY_PACKET))
                + attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", QUEUE_MAXLEN))
            )
            flags = NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_UID_GID
            self._config(
                attr(NFQA_CFG_FLAGS, struct.pack("!I", flags))
                + attr(NFQA_CFG_MASK, struct.pack("!I", flags))
            )
        except Exception:
            self.sock.close()
            raise
        self.sock.setblocking(False)

    def _kind(self, msg: int) -> int:
        return (NFNL_SUBSYS_QUEUE << 8) | msg

    def _header(self) -> bytes:
        return _NFGEN.pack(socket.AF_UNSPEC, 0, socket.htons(self.number))

    def _config(self, attrs: bytes) -> None:
        body = self._header() + attrs
        request_acked(self.sock, self._kind(NFQNL_MSG_CONFIG), body, f"NFQUEUE {self.number}")

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self, limit: int = 256) -> list[HeldPacket]:
        """Up to ``limit`` held packets (empty when none wait)."""
        packets: list[HeldPacket] = []
        # An overrun is passed over: the kernel accepted what did not fit (fail-open),
        # and NFLOG still saw it.
        for bodies in waiting_datagrams(self.sock, self._kind(NFQNL_MSG_PACKET)):
            packets.extend(p for p in map(parse_held, bodies) if p is not None)
            if len(packets) >= limit:
                break
        return packets

    def answer(self, verdicts: list[tuple[int, int]]) -> None:
        """Send (packet id, NF_ACCEPT or NF_DROP) for each, in one datagram."""
        if not verdicts:
            return
        kind = self._kind(NFQNL_MSG_VERDICT)
        header = self._header()
        data = b"".join(
            message(kind, NLM_F_REQUEST, header + attr(NFQA_VERDICT_HDR, struct.pack("!II", v, i)))
            for i, v in verdicts
        )
        try:
            # The kernel handles a netlink message to itself within the send call.
            self.sock.send(data)
        except BlockingIOError:
            self.sock.setblocking(True)
            try:
                self.sock.send(data)
            finally:
                self.sock.setblocking(False)

    def close(self) -> None:
        try:
            self.sock.setblocking(True)
            self._config(attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_UNBIND, 0)))
        except OSError:
            pass
        self.sock.close()


# -- the queue statement, written through nft_compat ------------------------------------

NFNL_SUBSYS_NFTABLES: Final = 10
NFNL_MSG_BATCH_BEGIN: Final = 0x10
NFNL_MSG_BATCH_END: Final = 0x11
NFT_MSG_NEWRULE: Final = 6
NLM_F_CREATE: Final = 0x400
NLM_F_APPEND: Final = 0x800
NLA_F_NESTED: Final = 0x8000
NFPROTO_INET: Final = 1
NFTA_RULE_TABLE: Final = 1
NFTA_RULE_CHAIN: Final = 2
NFTA_RULE_EXPRESSIONS: Final = 4
NFTA_LIST_ELEM: Final = 1
NFTA_EXPR_NAME: Final = 1
NFTA_EXPR_DATA: Final = 2
NFTA_TARGET_NAME: Final = 1
NFTA_TARGET_REV: Final = 2
NFTA_TARGET_INFO: Final = 3
NFQ_FLAG_BYPASS: Final = 0x01


def _nested(kind: int, payload: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, payload)


def _cstr(text: str) -> bytes:
    return text.encode() + b"\0"


def queue_rule_batch(table: str, chain: str, number: int) -> bytes:
    """A one-rule nf_tables transaction: ``queue num <number> bypass`` appended to ``chain``.

    Written as the xtables NFQUEUE target (revision 3) through nft_compat, the
    way iptables-nft writes it: kernels built without ``nft_queue`` (the nft
    text ``queue`` statement) still have the xtables target, and the rule is
    the same queue with the same bypass flag.
    """
    info = struct.pack("=HHH", number, 1, NFQ_FLAG_BYPASS) + b"\0\0"  # XT_ALIGN(6) == 8
    target = _nested(
        NFTA_LIST_ELEM,
        attr(NFTA_EXPR_NAME, _cstr("target"))
        + _nested(
            NFTA_EXPR_DATA,
            attr(NFTA_TARGET_NAME, _cstr("NFQUEUE"))
            + attr(NFTA_TARGET_REV, struct.pack("!I", 3))
            + attr(NFTA_TARGET_INFO, info),
        ),
    )
    rule = (
        _NFGEN.pack(NFPROTO_INET, 0, 0)
        + attr(NFTA_RULE_TABLE, _cstr(table))
        + attr(NFTA_RULE_CHAIN, _cstr(chain))
        + _nested(NFTA_RULE_EXPRESSIONS, target)
    )
    batch_header = _NFGEN.pack(socket.AF_UNSPEC, 0, socket.htons(NFNL_SUBSYS_NFTABLES))
    return (
        message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, batch_header, seq=1)
        + message(
            (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE,
            NLM_F_REQUEST | NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK,
            rule,
            seq=2,
        )
        + message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, batch_header, seq=3)
    )


def add_queue_rule(table: str, chain: str, number: int) -> None:
    """Append the queue rule to ``chain`` of ``inet <table>``; ``NetlinkError`` if refused."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as sock:
        sock.settimeout(5)
        sock.bind((0, 0))
        sock.send(queue_rule_batch(table, chain, number))
        while True:
            for mtype, _flags, payload in messages(sock.recv(65536)):
                if mtype == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", payload)[0]
                    if code:
                        raise NetlinkError(code, f"queue rule refused: {os.strerror(code)}")
                    return
