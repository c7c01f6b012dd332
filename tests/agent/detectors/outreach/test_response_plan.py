"""The response plan: which interfaces the filter blocks, which links go down and come back."""

from __future__ import annotations

from typing import Any

from agent.detectors.outreach.observations import LinkFacts
from agent.detectors.outreach.response_plan import (
    DRY_RUN,
    LinkState,
    LinkStep,
    interfaces_to_block,
    link_steps,
    links_to_down,
    still_asked,
)

ETH = LinkFacts(name="enp3s0", index=2, driver="r8169", bus="pci")
MODEM = LinkFacts(name="usb0", index=3, driver="rndis_host", bus="usb")
WIFI = LinkFacts(name="wlp2s0", index=4, driver="iwlwifi", bus="pci", wireless=True)
LO = LinkFacts(name="lo", index=1, iftype=772)
INTERFACE = "outreach.interface-unapproved"
ROUTE = "outreach.route-outside"
WIFI_RULE = "outreach.wifi-associated"


def up(facts: LinkFacts, carrier: bool = True) -> LinkState:
    return LinkState(facts, up=True, carrier=carrier)


def down(facts: LinkFacts) -> LinkState:
    return LinkState(facts, up=False, carrier=False)


def test_report_only_policy_plans_nothing(policy: Any) -> None:
    links = [up(LO), up(ETH), up(MODEM), up(WIFI)]
    assert interfaces_to_block(policy, links) == []
    assert links_to_down(policy, links, [MODEM]) == {}
    assert link_steps(policy, links, [MODEM], {"lo"}, {}) == []


def test_block_response_blocks_unapproved_links_that_are_up(make_policy: Any) -> None:
    policy = make_policy(**{INTERFACE: {"response": "block"}})
    assert interfaces_to_block(policy, [up(LO), up(ETH), up(MODEM), down(WIFI)]) == ["usb0"]


def test_each_link_down_signal_picks_its_links(make_policy: Any) -> None:
    policy = make_policy(
        **{
            INTERFACE: {"response": "link-down"},
            ROUTE: {"response": "link-down"},
            WIFI_RULE: {"response": "link-down"},
        }
    )
    links = [up(ETH), up(MODEM), up(WIFI, carrier=False)]
    # Wi-Fi without carrier is not associated, but still an unapproved interface.
    assert links_to_down(policy, links, []) == {"usb0": INTERFACE, "wlp2s0": INTERFACE}
    only_wifi = make_policy(**{WIFI_RULE: {"response": "link-down"}})
    assert links_to_down(only_wifi, [up(WIFI, carrier=False)], []) == {}
    assert links_to_down(only_wifi, [up(WIFI)], []) == {"wlp2s0": WIFI_RULE}
    only_route = make_policy(**{ROUTE: {"response": "link-down"}})
    assert links_to_down(only_route, [up(ETH), up(MODEM)], [ETH]) == {}
    assert links_to_down(only_route, [up(ETH), down(MODEM)], [MODEM]) == {"usb0": ROUTE}


def test_links_carrying_the_collector_path_are_refused(make_policy: Any) -> None:
    policy = make_policy(**{INTERFACE: {"response": "link-down"}})
    steps = link_steps(policy, [up(ETH), up(MODEM)], [], {"usb0", "lo"}, {})
    assert steps == [LinkStep("refuse", "usb0", INTERFACE)]


def test_a_wanted_link_is_taken_down_each_time_it_is_up(make_policy: Any) -> None:
    policy = make_policy(**{INTERFACE: {"response": "link-down"}})
    expected = [LinkStep("down", "usb0", INTERFACE)]
    assert link_steps(policy, [up(MODEM)], [], {"lo"}, {}) == expected
    assert link_steps(policy, [up(MODEM)], [], {"lo"}, {"usb0": INTERFACE}) == expected
    # Down already and still asked for: nothing to do, it stays recorded.
    assert link_steps(policy, [down(MODEM)], [], {"lo"}, {"usb0": INTERFACE}) == []


def test_dry_run_reports_a_link_once(make_policy: Any) -> None:
    policy = make_policy({"dry_run": True}, **{INTERFACE: {"response": "link-down"}})
    assert link_steps(policy, [up(MODEM)], [], {"lo"}, {}) == [
        LinkStep("dry-run", "usb0", INTERFACE)
    ]
    assert link_steps(policy, [up(MODEM)], [], {"lo"}, {"usb0": DRY_RUN}) == []


def test_links_come_back_when_the_policy_stops_asking(policy: Any) -> None:
    downed = {"usb0": INTERFACE, "wlp2s0": DRY_RUN, "wwan0": INTERFACE}
    # usb0 is present: up again; the dry-run one was never down; wwan0 is gone.
    assert link_steps(policy, [down(MODEM), up(WIFI)], [], {"lo"}, downed) == [
        LinkStep("up", "usb0", INTERFACE),
        LinkStep("forget", "wlp2s0", DRY_RUN),
        LinkStep("forget", "wwan0", INTERFACE),
    ]


def test_a_downed_link_stays_down_while_a_rule_would_take_it_down_again(
    make_policy: Any,
) -> None:
    interface = make_policy(**{INTERFACE: {"response": "link-down"}})
    assert still_asked(interface, "usb0", [down(MODEM)])
    assert not still_asked(interface, "enp3s0", [down(ETH)])
    # Unplugged: its facts are gone, so keep the decision while any link-down rule exists.
    assert still_asked(interface, "usb0", [])
    route = make_policy(**{ROUTE: {"response": "link-down"}})
    assert still_asked(route, "usb0", [down(MODEM)])
    wifi = make_policy(**{WIFI_RULE: {"response": "link-down"}})
    assert still_asked(wifi, "wlp2s0", [down(WIFI)])
    assert not still_asked(wifi, "usb0", [down(MODEM)])
    assert link_steps(interface, [down(MODEM)], [], {"lo"}, {"usb0": INTERFACE}) == []
