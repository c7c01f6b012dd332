"""Typed evidence of every ``outreach.*`` event kind (``DetectorSpec.evidence_models``).

Every kind shares the base: the interface and its class, when it was first
and last seen in the aggregation window, and how many times. Flow-shaped
kinds add the addresses, ports, protocol and the owning process.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Final, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from agent.events import Evidence

Text = Annotated[str, StringConstraints(max_length=512)]
Name = Annotated[str, StringConstraints(max_length=64)]


class ProcessEvidence(Evidence):
    pid: int
    name: Name = ""
    exe: Text = ""
    cmdline: Text = ""
    user: Name = ""
    #: cgroup v2 path and the systemd unit (service or session scope) it belongs to.
    cgroup: Text = ""
    unit: Name = ""
    #: SHA-256 of the executable, read when a program grant pins one.
    sha256: Name = ""


class OutreachEvidence(Evidence):
    FINGERPRINT_FIELDS: ClassVar[tuple[str, ...]] = ("interface",)

    interface: Name | None = None
    interface_class: Name | None = None
    interface_mac: Name | None = None
    interface_usb_id: Name | None = None
    first_seen: AwareDatetime
    last_seen: AwareDatetime
    count: int = Field(ge=1)
    #: True on the event that reports repeats after the first one was sent.
    repeat: bool = False


class FlowEvidence(OutreachEvidence):
    protocol: Name
    local_address: Name
    local_port: int | None = None
    remote_address: Name
    remote_port: int | None = None
    hook: Name = "output"
    process: ProcessEvidence | None = None
    process_note: Text = ""
    uid: int | None = None
    query_name: Text = ""
    #: What the kernel knew of the socket when no process was found: gid, cgroup, unit.
    gid: int | None = None
    user: Name = ""
    cgroup: Text = ""
    unit: Name = ""
    #: The first packet waited in the kernel queue until the agent had looked it up.
    held: bool = False
    #: dropped: a program grant reserves the destination for other programs.
    verdict: Name = "accepted"
    grant: Name = ""


class InterfaceEvidence(OutreachEvidence):
    """An unapproved interface (or Wi-Fi association) seen up; or, with ``ended``, gone again.

    The event with ``ended`` closes the episode its first event opened: same
    rule and interface, so the same alert at the collector. ``first_seen``
    is when the episode began, ``ended_at`` when the link went, and
    ``sightings`` how often it was seen up in between.
    """

    driver: Name = ""
    devtype: Name = ""
    bus: Name = ""
    up: bool = False
    carrier: bool = False
    ended: Literal["removed", "down", "carrier-lost"] | None = None
    ended_at: AwareDatetime | None = None
    duration_s: float | None = Field(default=None, ge=0)
    sightings: int | None = Field(default=None, ge=1)


class AddressEvidence(OutreachEvidence):
    address: Name
    prefixlen: int


class RouteEvidence(OutreachEvidence):
    canary: Name
    gateway: Name = ""
    source_address: Name = ""


class DnsAnswerEvidence(OutreachEvidence):
    resolver: Name
    name: Text
    outside_addresses: list[Name]


class ProxyEvidence(OutreachEvidence):
    FINGERPRINT_FIELDS: ClassVar[tuple[str, ...]] = ("origin", "variable")

    origin: Text
    variable: Name
    value: Text
    proxy_host: Text


class SharingEvidence(OutreachEvidence):
    ipv4_forwarding: bool
    ipv6_forwarding: bool
    ipv4_forwarding_interfaces: list[Name] = Field(default_factory=list, max_length=64)
    ipv6_forwarding_interfaces: list[Name] = Field(default_factory=list, max_length=64)
    masquerade: bool
    hotspot: list[Name]


class ProbeEvidence(OutreachEvidence):
    target: Name
    port: int
    method: Name
    outcome: Name
    detail: Text = ""
    rtt_ms: float | None = None


class ActionEvidence(Evidence):
    FINGERPRINT_FIELDS: ClassVar[tuple[str, ...]] = ("action", "target")

    action: Name
    target: Name
    dry_run: bool
    ok: bool
    detail: Text = ""


class FloodEvidence(Evidence):
    """Findings over the per-window cap: counted, with the most frequent destinations."""

    FINGERPRINT_FIELDS: ClassVar[tuple[str, ...]] = ("rule",)

    rule: Name
    window_start: AwareDatetime
    window_end: AwareDatetime
    suppressed: int = Field(ge=1)
    top: list[Text] = Field(default_factory=list, max_length=20)


class LostEvidence(Evidence):
    lost: int = Field(ge=1)
    detail: Text = ""


OUTREACH_EVIDENCE_MODELS: Final[dict[str, type[Evidence]]] = {
    "outreach.flow": FlowEvidence,
    "outreach.dns": FlowEvidence,
    "outreach.interface": InterfaceEvidence,
    "outreach.wifi": InterfaceEvidence,
    "outreach.address": AddressEvidence,
    "outreach.route": RouteEvidence,
    "outreach.dns_answer": DnsAnswerEvidence,
    "outreach.proxy": ProxyEvidence,
    "outreach.sharing": SharingEvidence,
    "outreach.probe": ProbeEvidence,
    "outreach.action": ActionEvidence,
    "outreach.flood": FloodEvidence,
    "outreach.lost": LostEvidence,
}
