"""Pure verdicts: inside or outside, interface classes and approval, zones, proxies, exceptions."""

from __future__ import annotations

import ipaddress
from datetime import date
from typing import Any

import pytest

from agent.detectors.outreach import judgement as j
from agent.detectors.outreach.judgement import approved, classify
from agent.detectors.outreach.observations import LinkFacts
from agent.detectors.outreach.policy import NetworksPolicy
from tests.agent.detectors.outreach.conftest import shipped_data


def with_changes(**lists: Any) -> dict[str, Any]:
    data = shipped_data()
    data["lists"].update(lists)
    return data


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        ({"name": "usb0", "driver": "rndis_host", "bus": "usb"}, "tethering"),
        ({"name": "enx0011", "driver": "cdc_ncm", "bus": "usb"}, "tethering"),
        ({"name": "eth1", "driver": "ipheth", "bus": "usb"}, "tethering"),
        ({"name": "wwan0", "driver": "qmi_wwan", "bus": "usb", "iftype": 65534}, "wwan"),
        ({"name": "wlan0", "devtype": "wlan", "wireless": True, "bus": "usb"}, "wifi"),
        ({"name": "bnep0", "devtype": "bluetooth"}, "bluetooth"),
        ({"name": "ppp0", "iftype": 512}, "ppp"),
        ({"name": "enx1122", "driver": "r8152", "bus": "usb"}, "usb-ethernet"),
        ({"name": "enp3s0", "driver": "r8169", "bus": "pci"}, "ethernet"),
        ({"name": "veth12", "link_kind": "veth"}, "virtual"),
        ({"name": "lo", "iftype": 772}, "loopback"),
    ],
)
def test_interface_classes(facts: dict[str, Any], expected: str) -> None:
    assert classify(LinkFacts(**facts)) == expected


def test_approval_by_mac_and_usb_id() -> None:
    policy = NetworksPolicy.model_validate(
        with_changes(approved_interfaces=["mac:02:00:00:00:00:01", "usb:0bda:8153"])
    )
    assert approved(LinkFacts(name="x", mac="02:00:00:00:00:01"), policy)
    assert approved(LinkFacts(name="y", usb_id="0bda:8153"), policy)
    assert not approved(LinkFacts(name="eth0"), policy)


def test_parse_ip_drops_the_zone_and_refuses_names() -> None:
    assert j.parse_ip("fe80::1%eth0") == ipaddress.ip_address("fe80::1")
    assert j.parse_ip("198.18.0.1") == ipaddress.ip_address("198.18.0.1")
    assert j.parse_ip("court.local") is None
    assert j.parse_ip("") is None


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("198.18.3.4", True),  # intranet list
        ("10.0.0.53", True),
        ("fd00::5", True),
        ("127.0.0.1", True),  # always allowed
        ("::1", True),
        ("203.0.113.9", False),
        ("2001:db8::1", False),
    ],
)
def test_inside(policy: NetworksPolicy, address: str, expected: bool) -> None:
    assert j.inside(ipaddress.ip_address(address), policy) is expected


def test_loopback_is_always_approved_and_unknown_names_are_virtual(
    policy: NetworksPolicy,
) -> None:
    assert approved(LinkFacts(name="lo", iftype=772), policy)
    assert approved(LinkFacts(name="enp3s0", bus="pci"), policy)  # name pattern en[ops]*
    assert classify(LinkFacts(name="wlan0")) == "wifi"  # no device: the name decides
    assert classify(LinkFacts(name="tun0", iftype=65534)) == "virtual"


def test_an_interface_rule_judges_its_classes_or_every_pluggable_one(
    policy: NetworksPolicy,
) -> None:
    rule = policy.rules_for("interface")[0]
    modem = LinkFacts(name="wwan0", driver="qmi_wwan", bus="usb")
    bridge = LinkFacts(name="cg-br0", link_kind="bridge")
    assert j.unapproved_for(rule, modem, policy)
    assert not j.unapproved_for(rule, bridge, policy)  # virtual: not judged by default
    only_wifi = rule.model_copy(
        update={"match": rule.match.model_copy(update={"interface_classes": ["wifi"]})}
    )
    assert not j.unapproved_for(only_wifi, modem, policy)


def test_zones_match_the_name_and_its_subdomains(policy: NetworksPolicy) -> None:
    assert j.in_zones("court.local", policy)
    assert j.in_zones("WWW.Court.Local.", policy)
    assert not j.in_zones("notcourt.local", policy)
    assert not j.in_zones("example.org", policy)


@pytest.mark.parametrize(
    ("value", "host"),
    [
        ("http://proxy.example.org:3128", "proxy.example.org"),
        ("203.0.113.5:8080", "203.0.113.5"),
        ("'socks5://user@Proxy.Court.Local:1080'", "proxy.court.local"),
        ("http://[2001:db8::1]:3128", "2001:db8::1"),
        ("http://[bad", ""),
        ("", ""),
    ],
)
def test_proxy_host(value: str, host: str) -> None:
    assert j.proxy_host(value) == host


def test_proxy_inside(policy: NetworksPolicy) -> None:
    assert j.proxy_inside("", policy)  # no host: nothing leaves through it
    assert j.proxy_inside("localhost", policy)
    assert j.proxy_inside("proxy.court.local", policy)
    assert j.proxy_inside("10.0.0.8", policy)
    assert not j.proxy_inside("203.0.113.5", policy)
    assert not j.proxy_inside("proxy.example.org", policy)


def test_exceptions_match_cidrs_globs_and_text_until_they_expire(make_policy: Any) -> None:
    policy: NetworksPolicy = make_policy(
        **{
            "outreach.flow-outside": {
                "exceptions": [
                    {
                        "name": "update_mirror",
                        "fields": ["remote.address", "process.name"],
                        "values": [["203.0.113.0/24", "apt*"]],
                        "expires": "2026-06-30",
                    },
                    {"name": "by_port", "fields": ["remote.port"], "values": [["8443"]]},
                ]
            }
        }
    )
    rule = next(r for r in policy.rules if r.id == "outreach.flow-outside")
    apt = {"remote.address": "203.0.113.7", "process.name": "apt-get", "remote.port": 443}
    assert j.excepted(rule, apt, date(2026, 6, 30)) == "update_mirror"
    assert j.excepted(rule, apt, date(2026, 7, 1)) is None  # expired
    assert j.excepted(rule, {**apt, "process.name": "curl"}, date(2026, 3, 1)) is None
    assert j.excepted(rule, {**apt, "remote.address": "bad"}, date(2026, 3, 1)) is None
    assert j.excepted(rule, {"remote.port": 8443}, date(2027, 1, 1)) == "by_port"
    assert j.excepted(rule, {}, date(2026, 3, 1)) is None
