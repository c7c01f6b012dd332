"""Pure verdicts shared by the detector and the source: is an address inside, is a link approved.

The source needs the same answers to build its kernel filter and to decide
on a response, so they live here, free of I/O.
"""

from __future__ import annotations

import ipaddress
from datetime import date
from fnmatch import fnmatchcase
from typing import Any, Final
from urllib.parse import urlsplit

from agent.detectors.outreach.observations import LinkFacts
from agent.detectors.outreach.policy import (
    ALWAYS_ALLOWED,
    InterfaceClass,
    IPAddress,
    NetworksPolicy,
    OutreachRule,
)

TETHERING_DRIVERS: Final = frozenset(
    {"rndis_host", "cdc_ether", "cdc_ncm", "cdc_eem", "ipheth", "cdc_subset"}
)
WWAN_DRIVERS: Final = frozenset({"qmi_wwan", "cdc_mbim", "option", "huawei_cdc_ncm", "mhi_net"})
#: Name prefixes for links without a device in sysfs (virtual links, test rigs, some PPP).
NAME_CLASSES: Final[tuple[tuple[str, InterfaceClass], ...]] = (
    ("wlan", "wifi"),
    ("wlp", "wifi"),
    ("wlx", "wifi"),
    ("wwan", "wwan"),
    ("wwp", "wwan"),
    ("usb", "tethering"),
    ("rndis", "tethering"),
    ("bnep", "bluetooth"),
    ("ppp", "ppp"),
    ("enx", "usb-ethernet"),
)
#: Classes an interface rule judges when it names none: everything a person can plug in.
DEFAULT_JUDGED: Final[frozenset[str]] = frozenset(
    {"ethernet", "wifi", "wwan", "tethering", "bluetooth", "ppp", "usb-ethernet", "unknown"}
)


def parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def always_allowed(address: IPAddress) -> bool:
    return any(
        address in network for network in ALWAYS_ALLOWED if network.version == address.version
    )


def inside(address: IPAddress, policy: NetworksPolicy) -> bool:
    """True for addresses in the intranet lists or the always-allowed ranges."""
    if always_allowed(address):
        return True
    return any(
        address in network
        for network in policy.intranet_networks
        if network.version == address.version
    )


def classify(link: LinkFacts) -> InterfaceClass:
    """Interface class from sysfs facts: driver and DEVTYPE first, names only for virtual links."""
    if link.iftype == 772 or link.name == "lo":
        return "loopback"
    if link.wireless or link.devtype == "wlan":
        return "wifi"
    if link.devtype == "wwan" or link.driver in WWAN_DRIVERS:
        return "wwan"
    if link.devtype == "bluetooth" or link.name.startswith("bnep"):
        return "bluetooth"
    if link.iftype == 512:
        return "ppp"
    if link.driver in TETHERING_DRIVERS:
        return "tethering"
    if link.bus == "usb":
        return "wwan" if link.iftype == 65534 else "usb-ethernet"
    if link.bus:
        return "ethernet"
    for prefix, klass in NAME_CLASSES:
        if link.name.startswith(prefix):
            return klass
    return "virtual"


def approved(link: LinkFacts, policy: NetworksPolicy) -> bool:
    """True when the link matches an approved name pattern, MAC or USB id (or is loopback)."""
    if classify(link) == "loopback":
        return True
    approval = policy.interface_approval
    if link.mac.lower() in approval.macs or link.usb_id.lower() in approval.usb_ids:
        return True
    return any(fnmatchcase(link.name, pattern) for pattern in approval.names)


def judged_classes(rule: OutreachRule) -> frozenset[str]:
    return frozenset(rule.match.interface_classes) or DEFAULT_JUDGED


def unapproved_for(rule: OutreachRule, link: LinkFacts, policy: NetworksPolicy) -> bool:
    """The interface rule's question: a judged class, and not approved."""
    return classify(link) in judged_classes(rule) and not approved(link, policy)


def in_zones(name: str, policy: NetworksPolicy) -> bool:
    name = name.strip(".").lower()
    return any(name == zone or name.endswith("." + zone) for zone in policy.zones)


def proxy_host(value: str) -> str:
    """The host a proxy setting points at (``http://h:3128``, ``h:3128``, ``socks5://u@h``)."""
    text = value.strip().strip("'\"")
    if "://" not in text:
        text = "http://" + text
    try:
        return (urlsplit(text).hostname or "").lower()
    except ValueError:
        return ""


def proxy_inside(host: str, policy: NetworksPolicy) -> bool:
    if not host:
        return True
    address = parse_ip(host)
    if address is not None:
        return inside(address, policy)
    return host == "localhost" or in_zones(host, policy)


def excepted(rule: OutreachRule, facts: dict[str, Any], today: date) -> str | None:
    """The name of the first unexpired exception whose row matches ``facts``, else None."""
    for exception in rule.exceptions:
        if exception.expires is not None and exception.expires < today:
            continue
        for row in exception.values:
            if all(_field_matches(f, v, facts) for f, v in zip(exception.fields, row, strict=True)):
                return exception.name
    return None


def _field_matches(field: str, expected: Any, facts: dict[str, Any]) -> bool:
    actual = facts.get(field)
    if actual is None:
        return False
    if field == "remote.address":
        address = parse_ip(str(actual))
        try:
            network = ipaddress.ip_network(str(expected), strict=False)
        except ValueError:
            return False
        return address is not None and address.version == network.version and address in network
    if field in {"interface.name", "process.name", "proxy.host", "dns.name"}:
        return fnmatchcase(str(actual), str(expected))
    return str(actual).lower() == str(expected).lower()
