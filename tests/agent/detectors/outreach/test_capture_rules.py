"""Rules with ``capture: true``: validated per signal; the first finding carries the order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from agent.detectors.outreach.detector import OutreachDetector
from agent.detectors.outreach.observations import FlowObservation, LinkFacts, LinkObservation

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
MODEM = LinkFacts(name="usb0", driver="rndis_host", bus="usb")


def flow() -> FlowObservation:
    return FlowObservation(protocol="tcp", source="10.1.2.3", destination="203.0.113.10",
                           destination_port=80, link=MODEM)


def test_first_finding_carries_a_capture_order_for_the_peer(make_policy: Any) -> None:
    """A flow rule with capture: the event's finding orders a capture of the outside peer on
    its interface with settings.capture's bounds; the repeat event orders none."""
    policy = make_policy({"capture": {"duration_s": 12, "max_packets": 50}},
                         **{"outreach.flow-outside": {"capture": True}})
    detector = OutreachDetector()
    first = detector.evaluate(flow(), policy, NOW)
    assert detector.evaluate(flow(), policy, NOW) == []
    order = first[0].capture
    assert order is not None
    assert (order.peer, order.interface, order.duration_s, order.max_packets, order.payload) == (
        "203.0.113.10", "usb0", 12.0, 50, False)
    repeat = detector.finalize(policy, NOW + timedelta(seconds=301))
    assert repeat[0].capture is None


def test_interface_rule_captures_on_the_interface(make_policy: Any) -> None:
    """A plugged modem with capture: the order watches the interface, no peer."""
    policy = make_policy(**{"outreach.interface-unapproved": {"capture": True}})
    findings = OutreachDetector().evaluate(LinkObservation(link=MODEM, up=True), policy, NOW)
    order = findings[0].capture
    assert order is not None and order.interface == "usb0" and order.peer is None


def test_without_capture_no_order(policy: Any) -> None:
    """The shipped policy captures nothing."""
    assert OutreachDetector().evaluate(flow(), policy, NOW)[0].capture is None


def test_capture_on_a_signal_without_peer_or_interface_is_refused(make_policy: Any) -> None:
    """capture on the proxy rule names nothing to watch: the policy is refused, saying why."""
    with pytest.raises(ValidationError, match="capture needs an outside address or an interface"):
        make_policy(**{"outreach.proxy-outside": {"capture": True}})


def test_capture_bounds_are_checked(make_policy: Any) -> None:
    """A capture longer than five minutes is refused."""
    with pytest.raises(ValidationError, match="duration_s"):
        make_policy({"capture": {"duration_s": 3600}})
