"""Candidate findings per signal, and the facts exceptions match, before aggregation."""

from __future__ import annotations

import pytest

from agent.detectors.outreach.candidates import candidates, exception_facts
from agent.detectors.outreach.evidence import ProcessEvidence
from agent.detectors.outreach.observations import (
    CounterObservation,
    FlowObservation,
    LinkFacts,
    LinkObservation,
    ProxyObservation,
)
from agent.detectors.outreach.policy import NetworksPolicy

MODEM = LinkFacts(name="usb0", driver="rndis_host", bus="usb", mac="02:11:22:33:44:55")


def test_a_query_to_an_outside_resolver_is_a_dns_finding_not_a_flow(
    policy: NetworksPolicy,
) -> None:
    query = FlowObservation(
        protocol="udp", source="10.1.2.3", destination="203.0.113.53", destination_port=53
    )
    assert [c.kind for c in candidates(query, policy)] == ["outreach.dns"]
    resolver = query.model_copy(update={"destination": "10.0.0.53"})
    assert candidates(resolver, policy) == []  # the listed resolver, inside: nothing


def test_an_unapproved_link_is_a_candidate_only_while_up(policy: NetworksPolicy) -> None:
    (found,) = candidates(LinkObservation(link=MODEM, up=True, carrier=True), policy)
    assert (found.kind, found.key, found.label) == (
        "outreach.interface",
        ("outreach.interface-unapproved", "usb0", "02:11:22:33:44:55"),
        "usb0",
    )
    assert found.evidence["interface_class"] == "tethering"
    assert candidates(LinkObservation(link=MODEM, up=False), policy) == []
    assert candidates(LinkObservation(link=MODEM, change="removed"), policy) == []


def test_exception_facts_of_a_flow_and_a_proxy() -> None:
    process = ProcessEvidence(pid=7, name="curl", exe="/usr/bin/curl", cmdline="curl", user="u")
    flow = FlowObservation(
        protocol="tcp",
        source="10.1.2.3",
        destination="203.0.113.9",
        destination_port=443,
        link=MODEM,
        process=process,
    )
    assert exception_facts(flow) == {
        "interface.name": "usb0",
        "interface.class": "tethering",
        "interface.mac": "02:11:22:33:44:55",
        "interface.usb_id": "",
        "remote.address": "203.0.113.9",
        "remote.port": 443,
        "protocol": "tcp",
        "dns.name": None,
        "process.name": "curl",
        "process.exe": "/usr/bin/curl",
        "process.user": "u",
    }
    proxy = ProxyObservation(origin="/etc/environment", variable="https_proxy", value="p.example:8")
    assert exception_facts(proxy) == {"proxy.host": "p.example"}


def test_what_is_not_a_judged_observation_is_refused(policy: NetworksPolicy) -> None:
    with pytest.raises(TypeError, match="not an outreach observation: CounterObservation"):
        candidates(CounterObservation(lost=1), policy)
