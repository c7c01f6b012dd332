"""Flows and DNS answers from the kernel filter, each with its owning process.

The ``inet courtguard`` table (``kernel_filter``) logs the first packet of
every new outgoing or forwarded flow and the DNS answers for the intranet
zones to one NFLOG group, and holds the first packet of every new outgoing
outside flow in one NFQUEUE until the agent answers. This reader parses both
(``packets``), asks the socket table who owns a local flow (``attribution``),
answers each held packet and counts what was lost (NFLOG sequence gaps).

Held packets are answered from a thread of their own (``start_holding``):
a verdict never waits for the event loop, which also runs the detector and
the spool. The thread has its own attributor (its own sock_diag socket) and
hands observations to the loop with ``call_soon_threadsafe``.

A held packet was logged too. While the queue is bound, a logged outgoing
packet waits ``LOGGED_WAIT_S`` for its held twin (matched by its first bytes),
which reports the flow with the process found while the socket was
certainly open (the twins differ only in the transport checksum, which the
queue completes before it copies the packet); the logged copy is reported
only when no twin came: the queue was full or the agent too slow (both pass
the packet, fail-open), or a drop rule ended the packet before the queue.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final, Literal

import structlog

from agent.detectors.outreach import judgement as j
from agent.detectors.outreach.observations import (
    DnsAnswerObservation,
    FlowObservation,
    LinkFacts,
)
from agent.detectors.outreach.policy import NetworksPolicy
from agent.detectors.outreach.readers import kernel_filter
from agent.detectors.outreach.readers.attribution import Attribution, Attributor, user_name
from agent.detectors.outreach.readers.netlink import LoggedPacket, NflogGroup
from agent.detectors.outreach.readers.nfqueue import NF_ACCEPT, NF_DROP, HeldPacket, HeldQueue
from agent.detectors.outreach.readers.packets import PacketHeader, parse_dns, parse_ip

log = structlog.get_logger("courtguard.outreach")

#: How long a logged packet waits for its held twin before it is reported on its own.
LOGGED_WAIT_S: Final = 1.0
#: Time one read of the queue may spend finding processes; later packets pass unattributed.
HOLD_BUDGET_S: Final = 0.25
#: How long closing waits for the hold thread to finish the packets it has read.
HOLD_JOIN_S: Final = 2.0
_TWIN_BYTES: Final = 64
_MAX_PENDING: Final = 8192


class FlowReader:
    """One bound NFLOG group (``OSError`` if it cannot be bound) and, if asked, one queue.

    ``put`` receives observations. A queue that cannot be bound leaves
    ``queue`` None and the reason in ``queue_error``: flows are then only logged.
    """

    def __init__(
        self, group: int, put: Callable[[Any], None], hold_queue: int | None = None
    ) -> None:
        self.nflog = NflogGroup(group)
        self._put = put
        self.attributor = Attributor()
        #: The hold thread's own: a sock_diag socket answers one request at a time.
        self.held_attributor = Attributor()
        self.queue: HeldQueue | None = None
        self.queue_error = ""
        if hold_queue is not None:
            try:
                self.queue = HeldQueue(hold_queue)
            except OSError as exc:
                self.queue_error = str(exc)
        #: first bytes -> (report after, logged packet): logged copies awaiting their twin.
        self._logged: OrderedDict[bytes, tuple[float, LoggedPacket]] = OrderedDict()
        #: first bytes -> when held: twins of logged copies that may still arrive.
        self._held: OrderedDict[bytes, float] = OrderedDict()
        #: Guards the two maps above, shared by the event loop and the hold thread.
        self._twins = threading.Lock()
        self._holding: threading.Thread | None = None
        self._stop = threading.Event()
        #: Wakes the hold thread to stop: it waits on the queue with no timeout.
        self._wake, self._waker = socket.socketpair()
        self.held_count = 0
        self.unattributed_over_budget = 0

    def fileno(self) -> int:
        return self.nflog.fileno()

    @property
    def lost(self) -> int:
        return self.nflog.lost

    def start_holding(
        self,
        policy: Callable[[], NetworksPolicy],
        link: Callable[[int], LinkFacts | None],
        put: Callable[[Any], object],
    ) -> None:
        """Answer held packets from a thread of its own, so no event-loop work delays a verdict.

        ``policy`` gives the current policy, ``put`` must be safe to call from
        that thread (``loop.call_soon_threadsafe``).
        """
        if self.queue is None or self._holding is not None:
            return

        queue = self.queue

        def hold() -> None:
            try:
                while not self._stop.is_set():
                    ready, _, _ = select.select([queue.fileno(), self._wake.fileno()], [], [])
                    if queue.fileno() in ready and not self._stop.is_set():
                        self.read_held(policy(), link, put)
            except OSError as exc:
                # Unbinding hands the queue back to the rule's bypass: flows pass, logged.
                log.error("outreach: hold queue failed; flows are only logged", error=str(exc))
                with contextlib.suppress(OSError):
                    queue.close()

        self._holding = threading.Thread(target=hold, name="outreach-hold", daemon=True)
        self._holding.start()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._waker.send(b"x")
        if self._holding is not None:
            self._holding.join(timeout=HOLD_JOIN_S)
        self._wake.close()
        self._waker.close()
        self.nflog.close()
        if self.queue is not None:
            self.queue.close()
        self.attributor.close()
        self.held_attributor.close()

    def read(self, policy: NetworksPolicy, link: Callable[[int], LinkFacts | None]) -> float | None:
        """Every waiting logged packet; the delay until a waiting copy is due, if any.

        ``link`` gives the facts of an interface index.
        """
        now = time.monotonic()
        alone: list[LoggedPacket] = []
        for packet in self.nflog.read():
            if self.queue is None or packet.prefix != kernel_filter.PREFIX_OUT:
                alone.append(packet)
                continue
            key = twin_key(packet.payload)
            with self._twins:
                if self._held.pop(key, None) is not None:
                    continue
                self._logged[key] = (now + LOGGED_WAIT_S, packet)
                while len(self._logged) > _MAX_PENDING:
                    alone.append(self._logged.popitem(last=False)[1][1])
        for packet in alone:
            self._report_logged(packet, policy, link)
        return self.flush(policy, link)

    def flush(
        self, policy: NetworksPolicy, link: Callable[[int], LinkFacts | None]
    ) -> float | None:
        """Report the logged copies whose twin did not come; the delay until the next is due."""
        now = time.monotonic()
        due_now: list[LoggedPacket] = []
        delay = None
        with self._twins:
            while self._logged:
                key, (due, packet) = next(iter(self._logged.items()))
                if due > now:
                    delay = due - now
                    break
                del self._logged[key]
                due_now.append(packet)
            while self._held and next(iter(self._held.values())) < now - LOGGED_WAIT_S:
                self._held.popitem(last=False)
        for packet in due_now:
            self._report_logged(packet, policy, link)
        return delay

    def _report_logged(
        self,
        packet: LoggedPacket,
        policy: NetworksPolicy,
        link: Callable[[int], LinkFacts | None],
    ) -> None:
        observation = observe(packet, policy, link, self.attributor)
        if observation is not None:
            self._put(observation)

    def read_held(
        self,
        policy: NetworksPolicy,
        link: Callable[[int], LinkFacts | None],
        put: Callable[[Any], object] | None = None,
    ) -> None:
        """Answer every held packet, each right after its look-up; ``put`` the observations."""
        if self.queue is None:
            return
        put = put or self._put
        start = time.monotonic()
        for packet in self.queue.read():
            self.held_count += 1
            over_budget = time.monotonic() - start > HOLD_BUDGET_S
            try:
                observation = observe_held(packet, policy, link, self.held_attributor, over_budget)
            except Exception as exc:  # a packet must never wait for a verdict that cannot come
                log.error("outreach: held packet not looked up", error=repr(exc)[:300])
                observation = None
            dropped = observation is not None and observation.verdict == "dropped"
            self.queue.answer([(packet.packet_id, NF_DROP if dropped else NF_ACCEPT)])
            if observation is None:
                continue
            if over_budget and observation.process is None:
                self.unattributed_over_budget += 1
            key = twin_key(packet.payload)
            with self._twins:
                if self._logged.pop(key, None) is None:
                    self._held[key] = time.monotonic()
                    while len(self._held) > _MAX_PENDING:
                        self._held.popitem(last=False)
            put(observation)


def twin_key(payload: bytes) -> bytes:
    """The first bytes of a packet with its TCP or UDP checksum blanked."""
    key = bytearray(payload[:_TWIN_BYTES])
    if not key:
        return b""
    if key[0] >> 4 == 4:
        offset, protocol = (key[0] & 0x0F) * 4, key[9] if len(key) > 9 else 0
    else:
        offset, protocol = 40, key[6] if len(key) > 6 else 0
    checksum = {6: offset + 16, 17: offset + 6}.get(protocol)
    if checksum is not None and checksum + 2 <= len(key):
        key[checksum : checksum + 2] = b"\0\0"
    return bytes(key)


def observe_held(
    packet: HeldPacket,
    policy: NetworksPolicy,
    link: Callable[[int], LinkFacts | None],
    attributor: Attributor,
    over_budget: bool = False,
) -> FlowObservation | None:
    """The observation of one held packet, with the verdict a program grant asks for."""
    header = parse_ip(packet.payload)
    if header is None:
        return None
    destination = j.parse_ip(header.destination)
    grant = policy.grant_for(destination) if destination is not None else None
    if over_budget and grant is None:
        attribution = Attribution(
            note="agent over its look-up time budget; packet passed unattributed",
            uid=packet.uid,
            gid=packet.gid,
        )
    else:
        attribution = attributor.attribute(
            header.protocol,
            header.source,
            header.source_port,
            header.destination,
            header.destination_port,
            uid=packet.uid,
            gid=packet.gid,
            thorough=True,
        )
    verdict: Literal["accepted", "granted", "dropped", "dry-run"] = "accepted"
    process = attribution.process
    if grant is not None:
        allowed = process is not None and any(
            program.exe == process.exe
            and (
                program.sha256 is None
                or program.sha256 == attributor.executable_sha256(process.pid)
            )
            for program in grant.programs
        )
        if allowed:
            verdict = "granted"
        else:
            verdict = "dry-run" if policy.settings.dry_run else "dropped"
            if process is not None:
                process = process.model_copy(
                    update={"sha256": attributor.executable_sha256(process.pid)}
                )
    return _flow(
        header,
        "output",
        link(packet.outdev),
        attribution,
        process=process,
        held=True,
        verdict=verdict,
        grant=grant.name if grant is not None else "",
    )


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
    if hook == "output":
        attribution = attributor.attribute(
            header.protocol,
            header.source,
            header.source_port,
            header.destination,
            header.destination_port,
            uid=packet.uid,
        )
    else:
        attribution = Attribution(note="forwarded for another device; no local process")
    return _flow(header, hook, link(packet.outdev), attribution)


def _flow(
    header: PacketHeader,
    hook: Literal["output", "forward"],
    link: LinkFacts | None,
    attribution: Attribution,
    **extra: Any,
) -> FlowObservation:
    query = ""
    if header.destination_port == 53 and header.protocol == "udp":
        dns = parse_dns(header.payload)
        query = dns.question[:512] if dns is not None else ""
    facts: dict[str, Any] = {"process": attribution.process, **extra}
    return FlowObservation(
        # parse_ip names only tcp, udp, icmp, icmpv6 or other (its PROTOCOLS), the literal
        # the observation declares; the header types it as str to stay free of the policy.
        protocol=header.protocol,  # type: ignore[arg-type]  # one of PROTOCOLS
        source=header.source,
        destination=header.destination,
        source_port=header.source_port,
        destination_port=header.destination_port,
        link=link,
        hook=hook,
        process_note=attribution.note[:512],
        uid=attribution.uid,
        gid=attribution.gid,
        user=user_name(attribution.uid)[:64] if attribution.uid is not None else "",
        cgroup=attribution.cgroup[:512],
        unit=attribution.unit[:64],
        query_name=query,
        **facts,
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
