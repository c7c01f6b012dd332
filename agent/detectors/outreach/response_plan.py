"""Which responses the policy asks for now: interfaces to block, links to take down or give back.

Pure: a function of what the readers last saw (each link's facts and
state, the links the canaries' routes go through), what was taken down
before, and the policy. ``response`` carries the plan out; the kernel
filter's own plan (which destinations and interfaces it drops) is
``readers.kernel_filter.plan_for``, fed with ``interfaces_to_block``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from agent.detectors.outreach import judgement as j
from agent.detectors.outreach.observations import LinkFacts
from agent.detectors.outreach.policy import NetworksPolicy

#: The ``downed`` value of a link a dry-run policy would have taken down.
DRY_RUN: Final = "dry-run"
#: Why a link the policy wants down stays up.
PROTECTED_DETAIL: Final = "接口承载到采集端的路径，未禁用"


@dataclass(frozen=True)
class LinkState:
    """One link as last observed: its facts, administratively up, carrier present."""

    facts: LinkFacts
    up: bool
    carrier: bool


@dataclass(frozen=True)
class LinkStep:
    """One thing to do to one link.

    ``refuse``: the policy wants it down but it carries the collector's path;
    ``dry-run``: report it would go down; ``down``: take it down; ``up``:
    bring a link we took down back; ``forget``: no longer asked for, nothing
    to undo (a dry-run, or the link is gone).
    """

    action: Literal["refuse", "dry-run", "down", "up", "forget"]
    name: str
    rule_id: str


def interfaces_to_block(policy: NetworksPolicy, links: Iterable[LinkState]) -> list[str]:
    """Up links an interface rule with the ``block`` response judges unapproved."""
    rules = [r for r in policy.responses("block") if r.match.signal == "interface"]
    return [
        link.facts.name
        for link in links
        if link.up and any(j.unapproved_for(r, link.facts, policy) for r in rules)
    ]


def links_to_down(
    policy: NetworksPolicy, links: Sequence[LinkState], routed: Sequence[LinkFacts]
) -> dict[str, str]:
    """Interface name -> the first ``link-down`` rule asking for it to be down."""
    wanted: dict[str, str] = {}
    for rule in policy.responses("link-down"):
        signal = rule.match.signal
        for link in links:
            if not link.up:
                continue
            if (signal == "interface" and j.unapproved_for(rule, link.facts, policy)) or (
                signal == "wifi"
                and link.carrier
                and j.classify(link.facts) == "wifi"
                and not policy.settings.wireless_allowed
            ):
                wanted.setdefault(link.facts.name, rule.id)
        if signal == "route":
            for facts in routed:
                if not j.approved(facts, policy):
                    wanted.setdefault(facts.name, rule.id)
    return wanted


def still_asked(policy: NetworksPolicy, name: str, links: Sequence[LinkState]) -> bool:
    """Whether a link-down rule would still take this (now down) link down if it came up."""
    facts = next((link.facts for link in links if link.facts.name == name), None)
    if facts is None:
        return bool(policy.responses("link-down"))  # unplugged: keep the decision
    for rule in policy.responses("link-down"):
        signal = rule.match.signal
        if signal == "interface" and j.unapproved_for(rule, facts, policy):
            return True
        if signal == "route" and not j.approved(facts, policy):
            return True
        if (
            signal == "wifi"
            and j.classify(facts) == "wifi"
            and not policy.settings.wireless_allowed
        ):
            return True
    return False


def link_steps(
    policy: NetworksPolicy,
    links: Sequence[LinkState],
    routed: Sequence[LinkFacts],
    protected: Iterable[str],
    downed: Mapping[str, str],
) -> list[LinkStep]:
    """Links to take down (or refuse to, or only report in dry-run), then links to give back.

    ``protected`` names the interfaces that carry the collector's path (and
    ``lo``); ``downed`` is what earlier steps took down: name -> rule id, or
    ``DRY_RUN``.
    """
    wanted = links_to_down(policy, links, routed)
    shielded = set(protected)
    present = {link.facts.name for link in links}
    steps: list[LinkStep] = []
    for name, rule_id in wanted.items():
        if name in shielded:
            steps.append(LinkStep("refuse", name, rule_id))
        elif not policy.settings.dry_run:
            steps.append(LinkStep("down", name, rule_id))
        elif name not in downed:
            steps.append(LinkStep("dry-run", name, rule_id))
    for name, rule_id in downed.items():
        if name in wanted or still_asked(policy, name, links):
            continue
        undo = rule_id != DRY_RUN and name in present
        steps.append(LinkStep("up" if undo else "forget", name, rule_id))
    return steps
