"""The responder carries out plans for real: nft in a namespace of its own, links down and up."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agent.detectors.outreach.observations import ActionObservation
from agent.detectors.outreach.policy import NetworksPolicy
from agent.detectors.outreach.response import DESTINATIONS_TARGET, STATE_FILE, Responder
from agent.detectors.outreach.response_plan import DRY_RUN, PROTECTED_DETAIL, LinkStep
from tests.e2e.harness import in_netns
from tests.e2e.netns import networks_policy, sh

pytestmark = pytest.mark.root

INTERFACE = "outreach.interface-unapproved"


@pytest.fixture
def veth(netns: str) -> str:
    """The namespace with a veth pair, cgr0 up."""
    sh("ip", "-n", netns, "link", "add", "cgr0", "type", "veth", "peer", "cgr1")
    sh("ip", "-n", netns, "link", "set", "cgr0", "up")
    return netns


def table() -> str:
    result = subprocess.run(
        ["nft", "list", "table", "inet", "courtguard"], capture_output=True, text=True, check=False
    )
    return result.stdout if result.returncode == 0 else ""


def is_up(netns: str, name: str) -> bool:
    return "UP" in sh("ip", "-n", netns, "-o", "link", "show", name).stdout.split(">")[0]


def test_links_go_down_and_come_back_and_are_remembered(veth: str, tmp_path: Path) -> None:
    netns = veth
    seen: list[Any] = []
    index = int(sh("ip", "-n", netns, "-o", "link", "show", "cgr0").stdout.split(":")[0])

    async def scenario() -> None:
        responder = Responder(tmp_path, seen.append)
        await responder.apply_links(
            [
                LinkStep("down", "cgr0", INTERFACE),
                LinkStep("refuse", "cgr1", INTERFACE),
                LinkStep("dry-run", "wlan9", INTERFACE),
            ],
            {"cgr0": index},
        )
        assert not is_up(netns, "cgr0")
        state = json.loads((tmp_path / STATE_FILE).read_text())["downed"]
        assert state == {"cgr0": INTERFACE, "wlan9": DRY_RUN}

        restarted = Responder(tmp_path, seen.append)
        restarted.load_state()
        assert restarted.downed == state
        await restarted.apply_links(
            [LinkStep("up", "cgr0", INTERFACE), LinkStep("forget", "wlan9", DRY_RUN)],
            {"cgr0": index},
        )
        assert is_up(netns, "cgr0")
        assert json.loads((tmp_path / STATE_FILE).read_text())["downed"] == {}

    in_netns(netns, lambda: asyncio.run(scenario()))
    actions = [(o.action, o.target, o.ok, o.dry_run, o.detail) for o in seen]
    assert actions == [
        ("link-down", "cgr0", True, False, ""),
        ("link-down", "cgr1", False, False, PROTECTED_DETAIL),
        ("link-down", "wlan9", True, True, ""),
        ("link-up", "cgr0", True, False, ""),
    ]


def test_filter_changes_are_reported_once_each(veth: str, tmp_path: Path) -> None:
    netns = veth
    report = NetworksPolicy.model_validate(networks_policy())
    block = NetworksPolicy.model_validate(
        networks_policy(
            **{"outreach.flow-outside": {"response": "block"}, INTERFACE: {"response": "block"}}
        )
    )
    seen: list[Any] = []

    async def scenario() -> None:
        responder = Responder(tmp_path, seen.append)
        await responder.adopt_table()
        await responder.apply_filter(report, (), [])
        assert "watch_out" in table() and "drop" not in table()
        await responder.apply_filter(report, (), [])  # the same plan: no swap, no report
        await responder.apply_filter(block, (), ["cgr0"])
        assert "drop" in table()
        await responder.apply_filter(report, (), [])
        await responder.stop()

    in_netns(netns, lambda: asyncio.run(scenario()))
    assert [(o.action, o.rule_id, o.target) for o in seen if isinstance(o, ActionObservation)] == [
        ("block", "outreach.flow-outside", DESTINATIONS_TARGET),
        ("block", INTERFACE, "cgr0"),
        ("unblock", "outreach.flow-outside", DESTINATIONS_TARGET),
        ("unblock", INTERFACE, "cgr0"),
    ]
    assert in_netns(netns, table) == ""  # nothing enforced: the table goes with the agent
