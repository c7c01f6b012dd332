"""Exec and uid changes from the kernel's process connector (netlink ``NETLINK_CONNECTOR``).

The kernel multicasts one message per process event to listeners of
``CN_IDX_PROC``; a socket filter (classic BPF, run in the kernel) keeps only
``PROC_EVENT_EXEC`` and ``PROC_EVENT_UID``, so forks, exits and thread events
never wake the reader. Listening needs CAP_NET_ADMIN in the initial user,
pid and network namespaces; elsewhere ``ProcConnector()`` raises OSError and
the processes reader falls back to its scan.
"""

from __future__ import annotations

import ctypes
import errno
import socket
import struct
from dataclasses import dataclass
from typing import Final, Literal

from agent.detectors.outreach.readers.netlink import NLMSG_DONE, messages

NETLINK_CONNECTOR: Final = 11
CN_IDX_PROC: Final = 1
CN_VAL_PROC: Final = 1
PROC_CN_MCAST_LISTEN: Final = 1
PROC_CN_MCAST_IGNORE: Final = 2
PROC_EVENT_EXEC: Final = 0x2
PROC_EVENT_UID: Final = 0x4
SO_ATTACH_FILTER: Final = 26

#: struct cn_msg: cb_id (idx, val), seq, ack, len, flags.
CN_MSG: Final = struct.Struct("=IIIIHH")
#: struct proc_event head: what, cpu, timestamp_ns.
EVENT_HEAD: Final = struct.Struct("=IIQ")
NLMSG_HDRLEN: Final = 16
WHAT_OFFSET: Final = NLMSG_HDRLEN + CN_MSG.size
DATA_OFFSET: Final = CN_MSG.size + EVENT_HEAD.size  # within the netlink payload


@dataclass(frozen=True)
class ProcEvent:
    """``exec``: ``pid`` ran a new program; ``uid``: ``pid`` changed its ids to ``uid`` (real)."""

    what: Literal["exec", "uid"]
    pid: int
    uid: int | None = None


def _filter_program() -> bytes:
    """Classic BPF keeping datagrams whose proc_event ``what`` is EXEC or UID."""

    def as_loaded(value: int) -> int:  # BPF loads words big-endian; the kernel writes host order
        return int.from_bytes(struct.pack("=I", value), "big")

    load_word, jump_if_equal, accept = 0x20, 0x15, 0x06
    program = [
        (load_word, 0, 0, WHAT_OFFSET),
        (jump_if_equal, 2, 0, as_loaded(PROC_EVENT_EXEC)),
        (jump_if_equal, 1, 0, as_loaded(PROC_EVENT_UID)),
        (accept, 0, 0, 0),
        (accept, 0, 0, 0xFFFFFFFF),
    ]
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)


def _control(operation: int) -> bytes:
    op = struct.pack("=I", operation)
    body = CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(op), 0) + op
    return struct.pack("=IHHII", NLMSG_HDRLEN + len(body), NLMSG_DONE, 0, 0, 0) + body


class ProcConnector:
    """A non-blocking listener for exec and uid events; ``read`` returns what waits.

    ``overruns`` counts the times the kernel dropped events because the
    socket's buffer was full: the caller then rescans.
    """

    def __init__(self, rcvbuf: int = 1 << 20) -> None:
        self.overruns = 0
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        try:
            program = _filter_program()
            self._program = ctypes.create_string_buffer(program, len(program))
            fprog = struct.pack(
                "HL", len(program) // 8, ctypes.addressof(self._program)
            )
            sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.bind((0, CN_IDX_PROC))
            sock.send(_control(PROC_CN_MCAST_LISTEN))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self, limit: int = 4096) -> list[ProcEvent]:
        """Events waiting now (at most ``limit`` datagrams); an overrun is counted."""
        found: list[ProcEvent] = []
        for _ in range(limit):
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.overruns += 1
                    continue
                raise
            for _mtype, _flags, body in messages(data):
                event = parse_event(body)
                if event is not None:
                    found.append(event)
        return found

    def close(self) -> None:
        try:
            self.sock.setblocking(True)
            self.sock.send(_control(PROC_CN_MCAST_IGNORE))
        except OSError:
            pass
        self.sock.close()


def parse_event(body: bytes) -> ProcEvent | None:
    """One netlink payload (cn_msg + proc_event) as an event; None for other kinds."""
    if len(body) < DATA_OFFSET + 8:
        return None
    idx, val, *_rest = CN_MSG.unpack_from(body)
    if (idx, val) != (CN_IDX_PROC, CN_VAL_PROC):
        return None
    what = EVENT_HEAD.unpack_from(body, CN_MSG.size)[0]
    pid, tgid = struct.unpack_from("=II", body, DATA_OFFSET)
    if pid != tgid:
        return None  # a thread of a process already seen through its leader
    if what == PROC_EVENT_EXEC:
        return ProcEvent("exec", tgid)
    if what == PROC_EVENT_UID and len(body) >= DATA_OFFSET + 16:
        ruid = struct.unpack_from("=I", body, DATA_OFFSET + 8)[0]
        return ProcEvent("uid", tgid, ruid)
    return None

