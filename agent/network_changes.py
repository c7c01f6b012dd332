"""A process-wide "the network path may have changed" signal, raised by rtnetlink or by anyone.

A connection to the collector is tied to the route that was in force when it
was made: its source address, and the interface its packets leave by. When a
route or a policy-routing rule changes (a modem's route taking over and
going away again), a pooled connection or a connect attempt still pending may
be stranded: a SYN sent with the modem's source address never gets an answer,
even after the intranet route is back. Whoever holds such connections
subscribes here and starts afresh when told.

1. ``start`` opens an rtnetlink socket subscribed to IPv4/IPv6 route and rule
   changes and hands it to the event loop (``add_reader``: no thread, no
   polling; idle it costs nothing);
2. each change outside the ``local`` table (addresses of the host itself)
   arms one notification ``settle_s`` later, so a burst of changes (a rule and
   its table's routes) is told once;
3. ``changed`` raises the same notification from code that learns of a change
   another way (a source that watches links, a test).

Where rtnetlink is unavailable (not Linux, a sandbox without netlink) ``start``
says so and returns False; the subscribers then rely on their timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import struct
from collections.abc import Callable
from typing import Final

import structlog

log = structlog.get_logger("courtguard.network_changes")

NETLINK_ROUTE: Final = 0
SOL_NETLINK: Final = 270
NETLINK_ADD_MEMBERSHIP: Final = 1
RTMGRP_IPV4_ROUTE: Final = 0x40
RTMGRP_IPV4_RULE: Final = 0x80
RTMGRP_IPV6_ROUTE: Final = 0x400
RTNLGRP_IPV6_RULE: Final = 19
ROUTE_MESSAGES: Final = frozenset({24, 25})  # RTM_NEWROUTE, RTM_DELROUTE
RULE_MESSAGES: Final = frozenset({32, 33})  # RTM_NEWRULE, RTM_DELRULE
RT_TABLE_LOCAL: Final = 255
_NLMSGHDR: Final = struct.Struct("=IHHII")


def relevant(data: bytes) -> bool:
    """Whether a batch of rtnetlink messages changes a route or rule outside the local table."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            break
        body = offset + _NLMSGHDR.size
        if kind in RULE_MESSAGES:
            return True
        # struct rtmsg: family, dst_len, src_len, tos, table, ...
        if kind in ROUTE_MESSAGES and body + 5 <= len(data) and data[body + 4] != RT_TABLE_LOCAL:
            return True
        offset += (length + 3) & ~3
    return False


class NetworkChanges:
    """Tell subscribers, once per burst, that routes or routing rules changed."""

    def __init__(self, settle_s: float = 0.2) -> None:
        self.settle_s = settle_s
        self._subscribers: list[Callable[[], None]] = []
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: asyncio.TimerHandle | None = None
        self.notified = 0

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (on the event loop) after each change; returns the unsubscribe."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def start(self) -> bool:
        """Listen to rtnetlink on the running loop; False (and why, logged) where it cannot."""
        self._loop = asyncio.get_running_loop()
        try:
            sock = socket.socket(
                socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, NETLINK_ROUTE
            )
        except (AttributeError, OSError) as exc:
            log.info("no rtnetlink: route changes are noticed by connect timeouts only",
                     error=str(exc))
            return False
        try:
            sock.bind((0, RTMGRP_IPV4_ROUTE | RTMGRP_IPV4_RULE | RTMGRP_IPV6_ROUTE))
            with contextlib.suppress(OSError):  # a kernel without IPv6 has no such group
                sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, RTNLGRP_IPV6_RULE)
            self._loop.add_reader(sock.fileno(), self._readable)
        except OSError as exc:
            sock.close()
            log.info("no rtnetlink: route changes are noticed by connect timeouts only",
                     error=str(exc))
            return False
        self._sock = sock
        return True

    def changed(self) -> None:
        """Announce a change (after ``settle_s``, merged with any other in that time)."""
        loop = self._loop or asyncio.get_running_loop()
        if self._pending is None:
            self._pending = loop.call_later(self.settle_s, self._notify)

    def _readable(self) -> None:
        assert self._sock is not None  # noqa: S101 (the reader is removed before the close)
        seen = False
        while True:
            try:
                data = self._sock.recv(65536)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                seen = True  # messages were lost: assume the worst
                continue
            seen = seen or relevant(data)
        if seen:
            self.changed()

    def _notify(self) -> None:
        self._pending = None
        self.notified += 1
        log.info("network routes changed; connections to the collector start afresh")
        for callback in list(self._subscribers):
            try:
                callback()
            except Exception:
                log.exception("a network change subscriber failed")

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if self._sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
