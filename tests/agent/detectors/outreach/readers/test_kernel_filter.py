"""The nft table text built from policy: sets, logging, blocking only when asked."""

from __future__ import annotations

import ipaddress
from typing import Any

from agent.detectors.outreach.policy import NetworksPolicy
from agent.detectors.outreach.readers import kernel_filter


def test_report_only_policy_logs_but_never_drops(policy: NetworksPolicy) -> None:
    text = kernel_filter.ruleset(kernel_filter.plan_for(policy))
    assert 'log group 4790 prefix "cg-out"' in text
    assert "drop" not in text
    assert "198.18.0.0/15" in text


def test_block_rule_adds_drops_and_keeps_the_collector(make_policy: Any) -> None:
    policy = make_policy(**{"outreach.flow-outside": {"response": "block"}})
    collector = [ipaddress.ip_address("203.0.113.250")]
    plan = kernel_filter.plan_for(policy, collector)
    text = kernel_filter.ruleset(plan)
    assert plan.block_destinations
    assert "ip daddr != @allow4 ip daddr != @grant4 counter drop" in text
    assert "203.0.113.250" in text.split("set allow4", 1)[1].split("}", 1)[0]


def test_dry_run_builds_no_enforcement(make_policy: Any) -> None:
    policy = make_policy({"dry_run": True}, **{"outreach.flow-outside": {"response": "block"}})
    plan = kernel_filter.plan_for(policy, dry_run_blocks=True, blocked_interfaces=["usb0"])
    assert not plan.block_destinations and plan.blocked_interfaces == ()
    assert "drop" not in kernel_filter.ruleset(plan)


def test_overlapping_lists_are_collapsed(make_policy: Any) -> None:
    policy = make_policy()
    data = policy.model_dump()
    data["lists"]["court_intranet"] += ["10.1.0.0/16"]
    text = kernel_filter.ruleset(kernel_filter.plan_for(NetworksPolicy.model_validate(data)))
    assert "10.1.0.0/16" not in text
