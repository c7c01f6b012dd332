"""A route change that strands the agent's connect attempt, then the route back (namespaces, root).

The workstation's policy routing sends everything out of its modem for a
while; the shipper's connect to the collector leaves by the modem, with the
modem's source address, and hangs in SYN-SENT. When the rule goes, the agent
must notice the route change and connect again by the intranet, not wait out
its connect timeout (set far above the test's wait here, so only that can
pass).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Agent, Collector, wait_until
from tests.e2e.netns import COLLECTOR_ADDRESS, Topology, require_root, start_world

pytestmark = [pytest.mark.e2e, pytest.mark.root]

CONNECT_TIMEOUT_S = 120
DELIVERY_WAIT_S = 60


@pytest.fixture
def topology() -> Iterator[Topology]:
    require_root()
    topo = Topology()
    try:
        topo.create()
        yield topo
    finally:
        topo.close()


def stranded_connects(topology: Topology, port: int) -> int:
    """Connect attempts to the collector hanging in SYN-SENT in the workstation."""
    result = topology.run(topology.ws, "ss", "-Htn", "state", "syn-sent",
                          "dst", f"{COLLECTOR_ADDRESS}:{port}")
    return len(result.stdout.splitlines())


def test_delivery_resumes_when_the_route_to_the_collector_comes_back(
    tmp_path: Path, topology: Topology
) -> None:
    """An event spooled while the modem took every route is delivered once the route is back."""
    settings = {
        "detectors__outreach": "false",
        "connect_timeout_s": str(CONNECT_TIMEOUT_S),
        "http_timeout_s": str(CONNECT_TIMEOUT_S),
        # Every request on a new connection, so the one sent under the modem's rule connects.
        "keepalive_expiry_s": "0",
    }
    agent, collector = start_world(topology, tmp_path, agent_settings=settings)
    try:
        check(topology, agent, collector)
    finally:
        agent.stop()


def check(topology: Topology, agent: Agent, collector: Collector) -> None:
    collector.wait_online(agent.agent_id)
    topology.plug_modem(route=False)
    topology.ip(topology.ws, "route", "add", "default", "via", "198.51.100.1",
                "dev", "usb0", "table", "100")
    topology.ip(topology.ws, "rule", "add", "pref", "100", "lookup", "100")
    agent.emit_test(1, note="route-change")
    wait_until(lambda: stranded_connects(topology, collector.port), 30,
               "a connect to the collector stranded on the modem's route")
    topology.ip(topology.ws, "rule", "del", "pref", "100")
    back = time.monotonic()

    def delivered() -> bool:
        return bool(collector.events(agent_id=agent.agent_id, kind="agent.test"))

    wait_until(delivered, DELIVERY_WAIT_S, "the event after the route came back")
    print(f"delivered {time.monotonic() - back:.2f} s after the route came back")
    assert "network routes changed" in agent.log()
