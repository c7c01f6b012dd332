"""The pure outreach detector: verdicts, exceptions, aggregation and the flood cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from agent.detectors.outreach.detector import OutreachDetector
from agent.detectors.outreach.evidence import OUTREACH_EVIDENCE_MODELS
from agent.detectors.outreach.observations import (
    ActionObservation,
    CounterObservation,
    FlowObservation,
    LinkFacts,
    LinkObservation,
    RouteObservation,
)
from agent.detectors.outreach.policy import NetworksPolicy
from agent.registry import EVIDENCE_MODELS

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def flow(destination: str = "203.0.113.10", port: int = 443, **extra: Any) -> FlowObservation:
    return FlowObservation(
        protocol="tcp", source="10.1.2.3", destination=destination, destination_port=port, **extra
    )


def test_every_finding_carries_valid_typed_evidence(policy: NetworksPolicy) -> None:
    """Evidence of each kind validates against the model registered in EVIDENCE_MODELS."""
    detector = OutreachDetector()
    findings = detector.evaluate(flow(), policy, NOW)
    findings += detector.evaluate(
        LinkObservation(link=LinkFacts(name="wwan0", driver="qmi_wwan", bus="usb"), up=True),
        policy,
        NOW,
    )
    findings += detector.evaluate(
        ActionObservation(action="block", rule_id="outreach.flow-outside", target="x"), policy, NOW
    )
    assert {f.kind for f in findings} == {"outreach.flow", "outreach.interface", "outreach.action"}
    for finding in findings:
        EVIDENCE_MODELS[finding.kind].model_validate(finding.evidence)
    assert set(OUTREACH_EVIDENCE_MODELS) <= set(EVIDENCE_MODELS)


def test_repeats_become_one_event_with_a_count(policy: NetworksPolicy) -> None:
    """Five identical flows: one event at once, one repeat event with count 4 after the window."""
    detector = OutreachDetector()
    first = [f for _ in range(5) for f in detector.evaluate(flow(), policy, NOW)]
    assert len(first) == 1 and first[0].evidence["count"] == 1
    assert detector.finalize(policy, NOW + timedelta(seconds=10)) == []
    later = detector.finalize(policy, NOW + timedelta(seconds=301))
    assert len(later) == 1
    assert later[0].evidence["count"] == 4 and later[0].evidence["repeat"] is True


def test_flood_beyond_the_cap_is_counted_not_lost(make_policy: Any) -> None:
    """Over max_events_per_window distinct flows, the rest are counted in one outreach.flood."""
    policy = make_policy({"max_events_per_window": 10, "aggregate_window_s": 5})
    detector = OutreachDetector()
    sent = [
        f
        for i in range(250)
        for f in detector.evaluate(flow(f"203.0.113.{i % 250}", 1000 + i), policy, NOW)
    ]
    assert len(sent) == 10
    flood = [
        f
        for f in detector.finalize(policy, NOW + timedelta(seconds=6))
        if f.kind == "outreach.flood"
    ]
    assert flood[0].evidence["suppressed"] == 240
    assert len(sent) + flood[0].evidence["suppressed"] == 250


def test_flood_windows_that_close_between_finalizes_are_all_reported(make_policy: Any) -> None:
    """Two flood windows pass before finalize runs: both suppressed counts are reported."""
    policy = make_policy({"max_events_per_window": 1, "aggregate_window_s": 5})
    detector = OutreachDetector()
    for second in (0, 6):
        for i in range(10):
            detector.evaluate(
                flow(f"203.0.113.{i + 1}", 2000 + second), policy, NOW + timedelta(seconds=second)
            )
    floods = [
        f
        for f in detector.finalize(policy, NOW + timedelta(seconds=20))
        if f.kind == "outreach.flood"
    ]
    assert sorted(f.evidence["suppressed"] for f in floods) == [9, 9]


def test_process_port_exception_silences_one_program(make_policy: Any) -> None:
    """A process_port exception row stops findings for that program and port only."""
    policy = make_policy(
        **{
            "outreach.flow-outside": {
                "exceptions": [
                    {
                        "name": "process_port",
                        "fields": ["process.name", "remote.port"],
                        "values": [["backup-client", 443]],
                    }
                ]
            }
        }
    )
    process = {"pid": 7, "name": "backup-client"}
    assert OutreachDetector().evaluate(flow(process=process), policy, NOW) == []
    assert OutreachDetector().evaluate(flow(port=8443, process=process), policy, NOW)


def test_expired_exception_no_longer_applies(make_policy: Any) -> None:
    policy = make_policy(
        **{
            "outreach.flow-outside": {
                "exceptions": [
                    {
                        "name": "process_port",
                        "fields": ["remote.address"],
                        "values": [["203.0.113.0/24"]],
                        "expires": "2026-01-01",
                    }
                ]
            }
        }
    )
    assert OutreachDetector().evaluate(flow(), policy, NOW)


def test_disabled_rule_is_silent(make_policy: Any) -> None:
    policy = make_policy(**{"outreach.flow-outside": {"enabled": False}})
    assert OutreachDetector().evaluate(flow(), policy, NOW) == []


def test_route_through_approved_interface_but_unapproved_gateway_fires(make_policy: Any) -> None:
    """With approved gateways listed, an approved NIC towards another gateway still fires."""
    policy = make_policy()
    data = policy.model_dump()
    data["lists"]["approved_gateways"] = ["10.1.0.1"]
    policy = NetworksPolicy.model_validate(data)
    route = RouteObservation(
        canary="1.1.1.1", gateway="10.9.9.9", link=LinkFacts(name="eth0", bus="pci")
    )
    assert [f.rule_id for f in OutreachDetector().evaluate(route, policy, NOW)] == [
        "outreach.route-outside"
    ]


def test_lost_packets_are_reported(policy: NetworksPolicy) -> None:
    findings = OutreachDetector().evaluate(CounterObservation(lost=3), policy, NOW)
    assert findings[0].kind == "outreach.lost" and findings[0].evidence["lost"] == 3


def test_forwarded_flow_says_so(policy: NetworksPolicy) -> None:
    (finding,) = OutreachDetector().evaluate(flow(hook="forward"), policy, NOW)
    assert finding.summary.startswith("转发") and finding.evidence["hook"] == "forward"


MODEM = LinkFacts(name="usb0", mac="02:c0:7e:00:00:01", driver="rndis_host", bus="usb")


def _plugged() -> LinkObservation:
    return LinkObservation(link=MODEM, up=True, carrier=True)


def test_unplugged_interface_closes_the_episode_its_plug_opened(policy: NetworksPolicy) -> None:
    """Plugged, then removed: after the quiet time, one event with ended closes the episode."""
    detector = OutreachDetector()
    opened = detector.evaluate(_plugged(), policy, NOW)
    assert [f.kind for f in opened] == ["outreach.interface"]
    unplugged = LinkObservation(link=MODEM, change="removed")
    detector.evaluate(unplugged, policy, NOW + timedelta(seconds=60))
    assert detector.finalize(policy, NOW + timedelta(seconds=61)) == []  # still in quiet time
    (closing,) = detector.finalize(policy, NOW + timedelta(seconds=64))
    assert closing.kind == "outreach.interface" and closing.rule_id == opened[0].rule_id
    assert closing.evidence["ended"] == "removed"
    assert closing.evidence["duration_s"] == 60.0 and closing.evidence["sightings"] == 1
    assert closing.evidence["interface"] == "usb0"
    assert "已拔出" in closing.summary
    EVIDENCE_MODELS[closing.kind].model_validate(closing.evidence)
    # The next plug is a new episode: an event at once.
    assert len(detector.evaluate(_plugged(), policy, NOW + timedelta(seconds=70))) == 1


def test_link_set_down_closes_the_episode(policy: NetworksPolicy) -> None:
    """An interface set down (administratively) ends its episode with ended=down."""
    detector = OutreachDetector()
    detector.evaluate(_plugged(), policy, NOW)
    down = LinkObservation(link=MODEM, change="changed", up=False, carrier=False)
    detector.evaluate(down, policy, NOW + timedelta(seconds=5))
    (closing,) = detector.finalize(policy, NOW + timedelta(seconds=10))
    assert closing.evidence["ended"] == "down"


def test_a_link_back_within_the_quiet_time_continues_its_episode(policy: NetworksPolicy) -> None:
    """Unplugged and replugged at once: no closing event, the replug is a repeat."""
    detector = OutreachDetector()
    detector.evaluate(_plugged(), policy, NOW)
    detector.evaluate(LinkObservation(link=MODEM, change="removed"), policy, NOW)
    assert detector.evaluate(_plugged(), policy, NOW + timedelta(seconds=1)) == []
    assert detector.finalize(policy, NOW + timedelta(seconds=10)) == []


def test_a_link_episode_outlives_the_aggregation_window(policy: NetworksPolicy) -> None:
    """A modem left in for an hour: its episode closes when it goes, with the whole duration."""
    detector = OutreachDetector()
    detector.evaluate(_plugged(), policy, NOW)
    detector.evaluate(_plugged(), policy, NOW + timedelta(seconds=10))
    (repeat,) = detector.finalize(policy, NOW + timedelta(seconds=301))
    assert repeat.evidence["repeat"] is True and repeat.evidence["count"] == 1
    unplugged = LinkObservation(link=MODEM, change="removed")
    detector.evaluate(unplugged, policy, NOW + timedelta(hours=1))
    (closing,) = detector.finalize(policy, NOW + timedelta(hours=1, seconds=5))
    assert closing.evidence["duration_s"] == 3600.0 and closing.evidence["sightings"] == 2


def test_a_flow_key_does_not_wait_for_a_link(policy: NetworksPolicy) -> None:
    """Keys of other signals still end with their window."""
    detector = OutreachDetector()
    detector.evaluate(flow(), policy, NOW)
    assert detector.finalize(policy, NOW + timedelta(seconds=301)) == []
    assert len(detector.evaluate(flow(), policy, NOW + timedelta(seconds=302))) == 1


def test_a_link_set_down_then_deleted_ends_as_removed(policy: NetworksPolicy) -> None:
    """Unplugging sets the link down before deleting it: the episode ends as removed."""
    detector = OutreachDetector()
    detector.evaluate(_plugged(), policy, NOW)
    down = LinkObservation(link=MODEM, change="changed", up=False, carrier=False)
    detector.evaluate(down, policy, NOW + timedelta(seconds=5))
    removed = LinkObservation(link=MODEM, change="removed")
    detector.evaluate(removed, policy, NOW + timedelta(seconds=6))
    (closing,) = detector.finalize(policy, NOW + timedelta(seconds=10))
    assert closing.evidence["ended"] == "removed" and closing.evidence["duration_s"] == 5.0
