"""Which rtnetlink messages count as a network change, and the rtnetlink watch itself."""

from __future__ import annotations

import asyncio
import struct

import pytest

from agent.network_changes import NetworkChanges, relevant
from agent.testing import eventually
from tests.e2e.harness import in_netns
from tests.e2e.netns import require_root, scratch_netns, sh

NLMSGHDR = struct.Struct("=IHHII")
RTMSG = struct.Struct("=BBBBBBBBI")


def route_message(kind: int, table: int) -> bytes:
    body = RTMSG.pack(2, 24, 0, 0, table, 4, 0, 1, 0)
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), kind, 0, 0, 0) + body


def test_a_main_table_route_change_counts() -> None:
    """A new or deleted route in the main table (254) is a change."""
    assert relevant(route_message(24, 254))
    assert relevant(route_message(25, 254))


def test_a_local_table_route_alone_does_not_count() -> None:
    """The local table (255) only follows the host's own addresses."""
    assert not relevant(route_message(24, 255))
    assert relevant(route_message(24, 255) + route_message(25, 100))


def test_a_rule_change_counts() -> None:
    """Policy-routing rules (RTM_NEWRULE, RTM_DELRULE) are changes."""
    header = NLMSGHDR.pack(NLMSGHDR.size + 12, 32, 0, 0, 0)
    assert relevant(header + bytes(12))


def test_a_burst_of_changes_is_told_once() -> None:
    """Changes within settle_s of the first reach each subscriber once."""
    told: list[int] = []

    async def scenario() -> NetworkChanges:
        network = NetworkChanges(settle_s=0.05)
        network.subscribe(lambda: told.append(1))
        for _ in range(5):
            network.changed()
        await eventually(lambda: told)
        return network

    assert asyncio.run(scenario()).notified == 1
    assert told == [1]


@pytest.mark.root
def test_rtnetlink_tells_a_rule_and_a_route_change_in_a_namespace() -> None:
    """In a namespace of its own, adding a routing rule and a route is noticed by rtnetlink."""
    require_root()

    async def scenario(netns: str) -> int:
        network = NetworkChanges(settle_s=0.05)
        told = asyncio.Event()
        network.subscribe(told.set)
        assert network.start()
        try:
            await asyncio.to_thread(sh, "ip", "-n", netns, "rule", "add", "pref", "100",
                                    "lookup", "100")
            await asyncio.wait_for(told.wait(), 30)
            told.clear()
            await asyncio.to_thread(sh, "ip", "-n", netns, "route", "add", "blackhole",
                                    "192.0.2.0/24")
            await asyncio.wait_for(told.wait(), 30)
        finally:
            network.close()
        return network.notified

    with scratch_netns() as netns:
        assert in_netns(netns, lambda: asyncio.run(scenario(netns))) == 2
