"""The ``networks`` policy: what counts as inside, what is approved, and what each rule does.

A ``networks`` document keeps the shared header (``kind``, ``schema_version``,
``lists``, ``rules``) and adds one ``settings`` block that says which named
lists play which role::

    settings:
      intranet: [court_intranet, court_intranet_v6]   # CIDRs: the allowed destinations
      approved_interfaces: [approved_interfaces]       # name patterns, mac:..., usb:vid:pid
      approved_gateways: [approved_gateways]           # IP addresses
      resolvers: [intranet_resolvers]                  # IP addresses of allowed DNS servers
      dns_zones: [intranet_zones]                      # intranet DNS suffixes
      canaries: [public_canaries]                      # outside IPs for route queries
      probe: {targets: [probe_targets], key: ..., tcp_port: 4790, dns_port: 53}

Loopback, link-local and multicast are always allowed and never need listing;
RFC 1918 is *not* assumed to be inside. Each rule's ``match.signal`` says
which signal it judges; ``response`` (report, block, link-down) says what the
agent does about it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from functools import cached_property
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import Field, StringConstraints, model_validator

from agent.events import MAX_CAPTURE_BYTES, MAX_CAPTURE_PACKETS, MAX_CAPTURE_SECONDS
from agent.policy.models import (
    LintProblem,
    ListName,
    PolicyDocument,
    Rule,
    StrictModel,
)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

Signal = Literal[
    "probe",
    "interface",
    "wifi",
    "route",
    "address",
    "flow",
    "dns",
    "dns_answer",
    "proxy",
    "sharing",
]
Response = Literal["report", "block", "link-down"]
InterfaceClass = Literal[
    "loopback",
    "ethernet",
    "wifi",
    "wwan",
    "tethering",
    "bluetooth",
    "ppp",
    "usb-ethernet",
    "virtual",
    "unknown",
]
Protocol = Literal["tcp", "udp", "icmp", "icmpv6", "other"]
ProbeMethod = Literal["tcp", "dns"]
PROBE_METHODS: Final[tuple[ProbeMethod, ...]] = ("tcp", "dns")

#: Never judged: loopback, link-local, multicast, limited broadcast, the unspecified address.
ALWAYS_ALLOWED: Final[tuple[IPNetwork, ...]] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "169.254.0.0/16",
        "224.0.0.0/4",
        "255.255.255.255/32",
        "0.0.0.0/32",
        "::1/128",
        "fe80::/10",
        "ff00::/8",
        "::/128",
    )
)

#: Exception fields a rule may be shaped by; each names one fact of an observation.
EXCEPTION_FIELDS: Final = frozenset(
    {
        "process.name",
        "process.exe",
        "process.user",
        "remote.address",
        "remote.port",
        "protocol",
        "interface.name",
        "interface.class",
        "interface.mac",
        "interface.usb_id",
        "proxy.host",
        "dns.name",
    }
)

DomainName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$", max_length=253)]


class ProbeSettings(StrictModel):
    """The outreach probe: outside targets, the responder's ports, the shared HMAC key."""

    targets: list[ListName] = Field(default_factory=lambda: ["probe_targets"])
    key: Annotated[str, StringConstraints(min_length=16, max_length=256)]
    tcp_port: int = Field(default=4790, ge=1, le=65535)
    dns_port: int = Field(default=53, ge=1, le=65535)
    methods: list[ProbeMethod] = Field(default_factory=lambda: list(PROBE_METHODS))
    interval_s: float = Field(default=60.0, ge=5, le=86400)
    timeout_s: float = Field(default=3.0, gt=0, le=30)


class CaptureSettings(StrictModel):
    """Bounds of the capture a rule with ``capture: true`` starts (取证抓包)."""

    duration_s: float = Field(default=30.0, gt=0, le=MAX_CAPTURE_SECONDS)
    max_packets: int = Field(default=1000, ge=1, le=MAX_CAPTURE_PACKETS)
    max_bytes: int = Field(default=8 * 1024 * 1024, ge=4096, le=MAX_CAPTURE_BYTES)
    #: Keep what the packets carry, not only their headers; off unless a rule's case needs it.
    payload: bool = False


#: Signals whose events name an outside peer or an interface a capture can watch.
CAPTURE_SIGNALS: Final = frozenset(
    {"flow", "dns", "interface", "wifi", "route", "address", "probe"}
)


class IsolationSettings(StrictModel):
    """What an isolated host (一键隔离) may still reach besides the collector and resolvers."""

    #: Lists of CIDRs (an intranet mail relay, the patch server, a jump host for the responders).
    allow: list[ListName] = Field(default_factory=list)


class GrantedProgram(StrictModel):
    """One program a grant names: its executable path, and optionally the file's SHA-256."""

    exe: Annotated[str, StringConstraints(pattern=r"^/[^\x00]*$", max_length=512)]
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None


class ProgramGrant(StrictModel):
    """Outside destinations reserved for named programs: they pass, every other program is dropped.

    Needs ``hold_queue``: the verdict is given while the first packet waits in
    the kernel, with the sending process known.
    """

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64)]
    #: Lists of CIDRs (outside the intranet: inside destinations are never held).
    destinations: list[ListName] = Field(min_length=1)
    programs: list[GrantedProgram] = Field(min_length=1, max_length=64)


class NetworkSettings(StrictModel):
    """Which lists play which role, plus the detector's knobs."""

    intranet: list[ListName] = Field(min_length=1)
    approved_interfaces: list[ListName] = Field(default_factory=list)
    approved_gateways: list[ListName] = Field(default_factory=list)
    resolvers: list[ListName] = Field(default_factory=list)
    dns_zones: list[ListName] = Field(default_factory=list)
    canaries: list[ListName] = Field(default_factory=list)
    wireless_allowed: bool = False
    probe: ProbeSettings | None = None
    #: Report what a response would do without doing it.
    dry_run: bool = False
    #: Repeats of one finding within this window become one event with a count.
    aggregate_window_s: float = Field(default=300.0, ge=1, le=86400)
    #: New (not repeated) findings per rule per window; the rest are counted in a summary.
    max_events_per_window: int = Field(default=100, ge=1, le=100_000)
    #: NFLOG group the kernel filter logs violating flows to.
    nflog_group: int = Field(default=4790, ge=1, le=65535)
    #: What a capture started by a rule with ``capture: true`` keeps.
    capture: CaptureSettings = Field(default_factory=CaptureSettings)
    #: What a host isolated by a signed order from the console may still reach.
    isolation: IsolationSettings = Field(default_factory=IsolationSettings)
    #: NFQUEUE number that holds each new outside flow's first packet until its process is
    #: known (fail-open: it passes when the agent is not there); null: flows are only logged.
    hold_queue: int | None = Field(default=4790, ge=0, le=65535)
    #: Outside destinations allowed only for named programs (``ProgramGrant``).
    program_grants: list[ProgramGrant] = Field(default_factory=list, max_length=64)

    @model_validator(mode="after")
    def _grants_need_the_queue(self) -> NetworkSettings:
        if self.program_grants and self.hold_queue is None:
            raise ValueError(
                "settings.program_grants need settings.hold_queue: the program is judged "
                "while the first packet waits in the kernel queue"
            )
        names = [g.name for g in self.program_grants]
        if len(names) != len(set(names)):
            raise ValueError("settings.program_grants: each grant needs its own name")
        return self


class OutreachMatch(StrictModel):
    """What one outreach rule judges. Lists come from ``settings``; a rule narrows by terms."""

    signal: Signal
    #: Only interfaces of these classes (empty: every class except loopback and virtual).
    interface_classes: list[InterfaceClass] = Field(default_factory=list)
    #: Only flows of these protocols (empty: all).
    protocols: list[Protocol] = Field(default_factory=list)


class OutreachRule(Rule[OutreachMatch]):
    """A rule plus what the agent does when it fires (``report`` unless the policy asks more)."""

    response: Response = "report"
    #: Capture the offending traffic for evidence when the rule fires (``settings.capture``).
    capture: bool = False

    @model_validator(mode="after")
    def _response_fits_signal(self) -> OutreachRule:
        if self.capture and self.match.signal not in CAPTURE_SIGNALS:
            raise ValueError(
                f"rule {self.id}: capture needs an outside address or an interface to watch, "
                f"and signal {self.match.signal} has neither; capture applies to "
                f"{', '.join(sorted(CAPTURE_SIGNALS))}"
            )
        if self.response == "link-down" and self.match.signal not in {"interface", "wifi", "route"}:
            raise ValueError(
                f"rule {self.id}: response link-down needs an interface, "
                f"and signal {self.match.signal} has none; use report or block"
            )
        if self.response == "block" and self.match.signal not in {"flow", "dns", "interface"}:
            raise ValueError(
                f"rule {self.id}: response block applies to flow, dns or interface rules"
            )
        for exception in self.exceptions:
            unknown = sorted(set(exception.fields) - EXCEPTION_FIELDS)
            if unknown:
                raise ValueError(
                    f"rule {self.id}: exception {exception.name!r} uses unknown field(s) "
                    f"{', '.join(unknown)}; known: {', '.join(sorted(EXCEPTION_FIELDS))}"
                )
        return self


class InterfaceApproval(StrictModel):
    """Parsed ``approved_interfaces`` entries: name globs, MAC addresses, USB vendor:product."""

    names: tuple[str, ...] = ()
    macs: frozenset[str] = frozenset()
    usb_ids: frozenset[str] = frozenset()


def _parse_network(list_name: str, value: Any) -> IPNetwork:
    try:
        return ipaddress.ip_network(str(value), strict=False)
    except ValueError as exc:
        raise ValueError(f"list {list_name}: {value!r} is not an IP network ({exc})") from exc


def _parse_address(list_name: str, value: Any) -> IPAddress:
    try:
        return ipaddress.ip_address(str(value))
    except ValueError as exc:
        raise ValueError(f"list {list_name}: {value!r} is not an IP address") from exc


_MAC_PATTERN: Final = r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$"
_USB_PATTERN: Final = r"^[0-9a-f]{4}:[0-9a-f]{4}$"


def _parse_interface(list_name: str, raw: Any) -> tuple[str, str]:
    """One ``approved_interfaces`` entry as (mac|usb|name, value)."""
    value = str(raw).strip()
    if value.startswith("mac:"):
        mac = value[4:].lower()
        if not re.match(_MAC_PATTERN, mac):
            raise ValueError(f"list {list_name}: {value!r} is not mac:aa:bb:cc:dd:ee:ff")
        return "mac", mac
    if value.startswith("usb:"):
        usb = value[4:].lower()
        if not re.match(_USB_PATTERN, usb):
            raise ValueError(f"list {list_name}: {value!r} is not usb:vvvv:pppp")
        return "usb", usb
    if value and len(value) <= 32:
        return "name", value
    raise ValueError(f"list {list_name}: {value!r} is not an interface name pattern")


def _parse_zone(list_name: str, raw: Any) -> str:
    zone = str(raw).strip().strip(".").lower()
    if not zone or " " in zone:
        raise ValueError(f"list {list_name}: {raw!r} is not a DNS zone")
    return zone


class NetworksPolicy(PolicyDocument):
    """Policy for the outreach (违规外联) detector; see the module docstring."""

    KIND: ClassVar[str] = "networks"
    rules: list[OutreachRule]
    settings: NetworkSettings

    def _roles(self) -> list[tuple[str, list[str], Callable[[str, Any], Any], str]]:
        """(role, the lists it names, how one entry is read, how to fix a bad entry)."""
        address = "写成单个 IP 地址，例如 198.18.0.1"
        return [
            ("intranet", self.settings.intranet, _parse_network,
             "写成 CIDR 网段，例如 198.18.0.0/15"),
            ("approved_interfaces", self.settings.approved_interfaces, _parse_interface,
             "写成网卡名模式、mac:aa:bb:cc:dd:ee:ff 或 usb:vvvv:pppp"),
            ("approved_gateways", self.settings.approved_gateways, _parse_address, address),
            ("resolvers", self.settings.resolvers, _parse_address, address),
            ("dns_zones", self.settings.dns_zones, _parse_zone,
             "写成 DNS 后缀，例如 court.local"),
            ("canaries", self.settings.canaries, _parse_address, address),
            ("probe.targets", self.settings.probe.targets if self.settings.probe else [],
             _parse_address, address),
            ("isolation.allow", self.settings.isolation.allow, _parse_network,
             "写成 CIDR 网段，例如 198.18.0.10/32"),
            ("program_grants",
             [n for g in self.settings.program_grants for n in g.destinations],
             _parse_network, "写成 CIDR 网段，例如 203.0.113.0/24"),
        ]

    def lint(self) -> list[LintProblem]:
        """Lists each role names must exist and hold entries of the role's type; the
        outside addresses (canaries, probe targets) must not lie inside the intranet."""
        problems = super().lint()
        for role, names, parse, fix in self._roles():
            for position, name in enumerate(names):
                path: tuple[str | int, ...] = ("settings", *role.split("."), position)
                if name not in self.lists:
                    problems.append(LintProblem(
                        path, f"settings.{role} names list {name!r}, which is not defined",
                        f"在 lists: 下添加 {name!r}，或更正名称"))
                    continue
                for index, value in enumerate(self.lists[name]):
                    try:
                        parse(name, value)
                    except ValueError as exc:
                        problems.append(LintProblem(("lists", name, index), str(exc), fix))
        if not problems:
            problems += self._outside_inside_overlaps()
        return problems

    def _outside_inside_overlaps(self) -> list[LintProblem]:
        problems: list[LintProblem] = []
        for position, (grant, networks) in enumerate(self.grant_networks):
            for network in networks:
                inside = next((n for n in self.intranet_networks if network.overlaps(n)), None)
                if inside is not None:
                    problems.append(LintProblem(
                        ("settings", "program_grants", position, "destinations"),
                        f"grant {grant.name}: {network} overlaps the intranet ({inside}); "
                        "intranet destinations are never held, so the grant cannot apply",
                        "授权目的地址应为内网以外的网段，或收窄内网网段列表"))
        for role, names in (("canaries", self.settings.canaries),
                            ("probe.targets",
                             self.settings.probe.targets if self.settings.probe else [])):
            for name in names:
                for index, value in enumerate(self.lists[name]):
                    address = _parse_address(name, value)
                    inside = next((n for n in self.intranet_networks if address in n), None)
                    if inside is not None:
                        problems.append(LintProblem(
                            ("lists", name, index),
                            f"{address} is inside the intranet ({inside}), but settings.{role} "
                            "must name outside addresses",
                            f"在 {name!r} 中改用外部地址，或收窄内网网段列表"))
        return problems

    def _values(self, names: list[str]) -> list[tuple[str, Any]]:
        return [(name, value) for name in names for value in self.lists[name]]

    @cached_property
    def intranet_networks(self) -> tuple[IPNetwork, ...]:
        return tuple(_parse_network(n, v) for n, v in self._values(self.settings.intranet))

    @cached_property
    def interface_approval(self) -> InterfaceApproval:
        names: list[str] = []
        macs: set[str] = set()
        usb_ids: set[str] = set()
        for list_name, raw in self._values(self.settings.approved_interfaces):
            kind, value = _parse_interface(list_name, raw)
            {"mac": macs.add, "usb": usb_ids.add}.get(kind, names.append)(value)
        return InterfaceApproval(
            names=tuple(names), macs=frozenset(macs), usb_ids=frozenset(usb_ids)
        )

    @cached_property
    def gateways(self) -> frozenset[IPAddress]:
        return frozenset(
            _parse_address(n, v) for n, v in self._values(self.settings.approved_gateways)
        )

    @cached_property
    def resolver_set(self) -> frozenset[IPAddress]:
        return frozenset(_parse_address(n, v) for n, v in self._values(self.settings.resolvers))

    @cached_property
    def isolation_allow(self) -> tuple[IPNetwork, ...]:
        """Networks an isolated host may still reach (besides the collector and resolvers)."""
        return tuple(
            _parse_network(n, v) for n, v in self._values(self.settings.isolation.allow)
        )

    @cached_property
    def zones(self) -> tuple[str, ...]:
        return tuple(_parse_zone(n, v) for n, v in self._values(self.settings.dns_zones))

    @cached_property
    def canary_addresses(self) -> tuple[IPAddress, ...]:
        return tuple(_parse_address(n, v) for n, v in self._values(self.settings.canaries))

    @cached_property
    def probe_targets(self) -> tuple[IPAddress, ...]:
        probe = self.settings.probe
        if probe is None:
            return ()
        return tuple(_parse_address(n, v) for n, v in self._values(probe.targets))

    @cached_property
    def grant_networks(self) -> tuple[tuple[ProgramGrant, tuple[IPNetwork, ...]], ...]:
        return tuple(
            (grant, tuple(_parse_network(n, v) for n, v in self._values(grant.destinations)))
            for grant in self.settings.program_grants
        )

    def grant_for(self, address: IPAddress) -> ProgramGrant | None:
        """The first grant whose destinations hold ``address``."""
        return next(
            (g for g, networks in self.grant_networks if any(address in n for n in networks)),
            None,
        )

    def rules_for(self, signal: str) -> list[OutreachRule]:
        """Enabled rules judging ``signal``, in file order."""
        return [r for r in self.rules if r.enabled and r.match.signal == signal]

    def responses(self, response: str) -> list[OutreachRule]:
        """Enabled rules asking for ``response``."""
        return [r for r in self.rules if r.enabled and r.response == response]
