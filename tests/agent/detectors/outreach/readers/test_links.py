"""The link reader on a real rtnetlink socket, in a network namespace of its own."""

from __future__ import annotations

import select
import time
from collections.abc import Callable
from typing import Any

import pytest

from agent.detectors.outreach.observations import (
    AddressObservation,
    LinkObservation,
    RouteObservation,
)
from agent.detectors.outreach.readers.links import LinkReader
from tests.e2e.harness import in_netns
from tests.e2e.netns import sh

pytestmark = pytest.mark.root


def read_until(reader: LinkReader, done: Callable[[], bool], what: str) -> None:
    """Handle messages as they arrive until ``done``; 10 s without it is a failure."""
    deadline = time.monotonic() + 10
    while not done():
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out waiting for {what}")
        if select.select([reader.fileno()], [], [], left)[0]:
            reader.read()


def test_dump_then_changes_then_routes(netns: str) -> None:
    seen: list[Any] = []

    def scenario() -> None:
        reader = LinkReader(seen.append)
        try:
            reader.resync()
            assert [
                (o.link.name, o.change, o.up) for o in seen if isinstance(o, LinkObservation)
            ] == [("lo", "new", True)]
            assert {o.address for o in seen if isinstance(o, AddressObservation)} == {
                "127.0.0.1",
                "::1",
            }
            seen.clear()
            reader.resync()
            assert seen == []  # nothing changed: a second dump is silent

            sh("ip", "-n", netns, "link", "add", "cgl0", "type", "veth", "peer", "cgl1")
            sh("ip", "-n", netns, "address", "add", "198.18.0.5/24", "dev", "cgl0")
            sh("ip", "-n", netns, "link", "set", "cgl1", "up")
            sh("ip", "-n", netns, "link", "set", "cgl0", "up")
            sh("ip", "-n", netns, "route", "add", "203.0.113.0/24", "dev", "cgl0")

            def cgl0_up_with_carrier() -> bool:
                return any(
                    isinstance(o, LinkObservation) and o.link.name == "cgl0" and o.up and o.carrier
                    for o in seen
                )

            read_until(reader, cgl0_up_with_carrier, "cgl0 up with carrier")
            read_until(
                reader,
                lambda: any(
                    isinstance(o, AddressObservation) and o.address == "198.18.0.5" for o in seen
                ),
                "cgl0's address",
            )
            link = next(
                o.link for o in seen if isinstance(o, LinkObservation) and o.link.name == "cgl0"
            )
            assert (link.link_kind, link.iftype) == ("veth", 1)

            seen.clear()
            reader.check_routes(["203.0.113.9", "192.0.2.1"])
            routes = {o.canary: o for o in seen if isinstance(o, RouteObservation)}
            assert routes["203.0.113.9"].reachable
            assert routes["203.0.113.9"].link is not None
            assert routes["203.0.113.9"].link.name == "cgl0"
            assert routes["203.0.113.9"].source == "198.18.0.5"
            assert not routes["192.0.2.1"].reachable
            seen.clear()
            reader.check_routes(["203.0.113.9", "192.0.2.1"])
            assert seen == []  # the same routes again: nothing new
            assert reader.route_interfaces(["203.0.113.9", "192.0.2.1"]) == {"cgl0"}
            assert [f.name for f in reader.routed()] == ["cgl0"]
            states = {s.facts.name: (s.up, s.carrier) for s in reader.states()}
            assert states["cgl0"] == (True, True)
            assert set(reader.indexes()) == {"lo", "cgl0", "cgl1"}

            sh("ip", "-n", netns, "link", "del", "cgl0")
            read_until(
                reader,
                lambda: any(
                    isinstance(o, LinkObservation)
                    and o.change == "removed"
                    and o.link.name == "cgl0"
                    for o in seen
                ),
                "cgl0 removed",
            )
            assert set(reader.indexes()) == {"lo"}
        finally:
            reader.close()

    in_netns(netns, scenario)
