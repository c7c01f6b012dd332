"""What the outreach source sees, as plain data: one model per signal, one union over them.

Observations carry facts, never verdicts: the detector classifies interfaces
and judges addresses, so a rule case written as data exercises the same code
as the live source.

A flow's process is carried as ``ProcessEvidence`` from the start: it goes
into the event unchanged.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from agent.detectors.outreach.evidence import ProcessEvidence as ProcessFacts
from agent.detectors.outreach.policy import Protocol

Text = Annotated[str, StringConstraints(max_length=512)]
Name = Annotated[str, StringConstraints(max_length=64)]


class Observation(BaseModel):
    """Base of the outreach observations; validators are built at first use (``defer_build``):
    the registry imports them with the detector, a host without the detector never builds them."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class LinkFacts(Observation):
    """One network interface as sysfs and rtnetlink describe it."""

    name: Name
    index: int = 0
    mac: Name = ""
    #: ARPHRD type: 1 ethernet, 512 ppp, 772 loopback, 65534 raw IP (tun, some modems).
    iftype: int = 1
    driver: Name = ""
    #: DEVTYPE from the uevent (wlan, wwan, bluetooth, gadget...).
    devtype: Name = ""
    #: Bus of the underlying device: usb, pci, platform...; empty for virtual links.
    bus: Name = ""
    usb_id: Name = ""
    wireless: bool = False
    #: rtnetlink link kind (veth, bridge, tun...) when the link is virtual.
    link_kind: Name = ""


class LinkObservation(Observation):
    """An interface appeared, changed state or went away."""

    type: Literal["link"] = "link"
    link: LinkFacts
    change: Literal["new", "changed", "removed"] = "new"
    up: bool = False
    carrier: bool = False


class AddressObservation(Observation):
    """An address was added to (or removed from) an interface."""

    type: Literal["address"] = "address"
    link: LinkFacts
    address: Name
    prefixlen: int = Field(default=32, ge=0, le=128)
    removed: bool = False


class RouteObservation(Observation):
    """The kernel's answer to "which way would this canary address go?"."""

    type: Literal["route"] = "route"
    canary: Name
    reachable: bool = True
    link: LinkFacts | None = None
    gateway: Name = ""
    source: Name = ""


class FlowObservation(Observation):
    """The first packet of a new flow the kernel filter let through to us."""

    type: Literal["flow"] = "flow"
    protocol: Protocol
    source: Name
    destination: Name
    source_port: int | None = Field(default=None, ge=0, le=65535)
    destination_port: int | None = Field(default=None, ge=0, le=65535)
    link: LinkFacts | None = None
    #: output: from this host; forward: through it (sharing).
    hook: Literal["output", "forward"] = "output"
    process: ProcessFacts | None = None
    #: Why process is missing (socket already gone, forwarded, no privilege).
    process_note: Text = ""
    uid: int | None = None
    #: For DNS: the queried name, when the payload carried it.
    query_name: Text = ""
    #: What the kernel knew of the socket when no process was found (and the user's name).
    gid: int | None = None
    user: Name = ""
    cgroup: Text = ""
    unit: Name = ""
    #: The first packet waited in the kernel queue until it was looked up.
    held: bool = False
    #: accepted; granted (a program grant allows it: not reported); dropped (a grant
    #: reserves the destination for other programs); dry-run (would have been dropped).
    verdict: Literal["accepted", "granted", "dropped", "dry-run"] = "accepted"
    grant: Name = ""


class DnsAnswerObservation(Observation):
    """A DNS response from a resolver: the name asked and the addresses it got."""

    type: Literal["dns_answer"] = "dns_answer"
    resolver: Name
    name: Text
    addresses: list[Name] = Field(default_factory=list, max_length=64)


class ProxyObservation(Observation):
    """A proxy setting found in a configuration file or desktop setting."""

    type: Literal["proxy"] = "proxy"
    origin: Text
    variable: Name
    value: Text


class SharingObservation(Observation):
    """Whether this host forwards, masquerades or runs a hotspot."""

    type: Literal["sharing"] = "sharing"
    #: The global switches (``net.ipv4.ip_forward``, ``net.ipv6.conf.all.forwarding``).
    ipv4_forwarding: bool = False
    ipv6_forwarding: bool = False
    #: Interfaces forwarding on their own (``net.ipv4.conf.<if>.forwarding``), global switch or not.
    ipv4_forwarding_interfaces: list[Name] = Field(default_factory=list, max_length=64)
    ipv6_forwarding_interfaces: list[Name] = Field(default_factory=list, max_length=64)
    masquerade: bool = False
    hotspot: list[Name] = Field(default_factory=list, max_length=16)


class ProbeObservation(Observation):
    """One outreach probe through one interface, and what answered."""

    type: Literal["probe"] = "probe"
    link: LinkFacts
    target: Name
    port: int = Field(ge=1, le=65535)
    method: Literal["tcp", "dns"]
    outcome: Literal["verified", "forged", "no-reply", "error"]
    detail: Text = ""
    rtt_ms: float | None = None


class ActionObservation(Observation):
    """A response the source carried out (or, in dry-run, would have)."""

    type: Literal["action"] = "action"
    action: Literal["block", "unblock", "link-down", "link-up"]
    rule_id: Name
    target: Name
    dry_run: bool = False
    ok: bool = True
    detail: Text = ""


class CounterObservation(Observation):
    """Flows the kernel logged but the source could not read (socket buffer overrun)."""

    type: Literal["lost"] = "lost"
    lost: int = Field(ge=0)
    detail: Text = ""


OutreachObservation = Annotated[
    LinkObservation
    | AddressObservation
    | RouteObservation
    | FlowObservation
    | DnsAnswerObservation
    | ProxyObservation
    | SharingObservation
    | ProbeObservation
    | ActionObservation
    | CounterObservation,
    Field(discriminator="type"),
]
