"""Host isolation (一键隔离) end to end: a signed order isolates a workstation in its namespace.

The topology of ``tests/e2e/netns.py``: the collector on 198.18.0.1 and the
intranet resolver on 198.18.0.53 in the intranet namespace, plus two intranet
hosts of this test, 198.18.0.80 (in the policy's ``isolation.allow``) and
198.18.0.90 (not); a USB modem to the outside (203.0.113.10). The collector
reads a networks policy with those lists, so the orders it signs carry them.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from tests.e2e.harness import Agent, Collector, in_netns, wait_until
from tests.e2e.netns import (
    COLLECTOR_ADDRESS,
    Intranet,
    Topology,
    networks_policy,
    require_root,
    start_world,
)

pytestmark = [pytest.mark.e2e, pytest.mark.root]

ALLOWED = "198.18.0.80"
OTHER_INTRANET = "198.18.0.90"
RESOLVER = "198.18.0.53"
OUTSIDE = "203.0.113.10"
TABLE = "courtguard_isolation"

CONNECT = (
    "import socket,sys\n"
    "s=socket.socket(); s.settimeout(2)\n"
    "try:\n"
    "    s.connect((sys.argv[1], int(sys.argv[2]))); print('ok')\n"
    "except OSError as exc:\n"
    "    print('no', exc)\n"
)
DNS_ASK = (
    "import socket,sys\n"
    "u=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(2)\n"
    "u.sendto(b'question', (sys.argv[1], 53))\n"
    "try:\n"
    "    print('ok' if u.recvfrom(512)[0] == b'question' else 'no')\n"
    "except OSError as exc:\n"
    "    print('no', exc)\n"
)
DNS_ECHO = (
    "import socket\n"
    f"u=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('{RESOLVER}', 53))\n"
    "while True:\n"
    "    data, peer = u.recvfrom(512); u.sendto(data, peer)\n"
)


@pytest.fixture(scope="module")
def intranet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Intranet]:
    """The intranet and a collector reading this module's networks policy."""
    require_root()
    home = tmp_path_factory.mktemp("isolation")
    policies = home / "collector-policies"
    policies.mkdir()
    for shipped in (Path(__file__).resolve().parents[2] / "policies").glob("*.yaml"):
        (policies / shipped.name).write_text(shipped.read_text())
    data = networks_policy()
    data["lists"]["isolation_allow"] = [f"{ALLOWED}/32"]
    (policies / "networks.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    shared = Intranet(home)
    try:
        shared.create()
        for address in (ALLOWED, OTHER_INTRANET):
            Topology(intranet=shared).ip(shared.netns, "addr", "add", f"{address}/32", "dev", "lo")
        shared.collector = Collector(
            home=home, database_url=f"sqlite:///{home / 'collector.db'}", netns=shared.netns,
            listen_host=COLLECTOR_ADDRESS,
            extra_env={"COURTGUARD_COLLECTOR_POLICY_DIR": str(policies)},
        )
        shared.collector.init()
        shared.collector.start()
        yield shared
    finally:
        shared.close()


@pytest.fixture
def topology(intranet: Intranet) -> Iterator[Topology]:
    topo = Topology(intranet=intranet)
    try:
        topo.create()
        yield topo
    finally:
        topo.close()


@pytest.fixture
def world(tmp_path: Path, topology: Topology) -> Iterator[Callable[[], tuple[Agent, Collector]]]:
    """An enrolled agent in the workstation, with intranet and outside services to reach."""
    started: list[Agent] = []

    def start() -> tuple[Agent, Collector]:
        for address in (ALLOWED, OTHER_INTRANET):
            topology.spawn(topology.intra, sys.executable, "-m", "http.server", "--bind",
                           address, "8080")
        topology.spawn(topology.intra, sys.executable, "-c", DNS_ECHO)
        topology.plug_modem()
        topology.spawn(topology.out, sys.executable, "-m", "http.server", "--bind", OUTSIDE, "80")
        agent, collector = start_world(topology, tmp_path)
        started.append(agent)
        collector.wait_online(agent.agent_id, timeout=60)
        wait_until(lambda: reaches(topology, OUTSIDE, 80), 30, "the outside web server")
        wait_until(lambda: asks_dns(topology), 30, "the intranet resolver")
        return agent, collector

    yield start
    for agent in started:
        agent.stop()


def reaches(topology: Topology, host: str, port: int) -> bool:
    result = topology.run(topology.ws, sys.executable, "-c", CONNECT, host, str(port))
    return result.stdout.startswith("ok")


def asks_dns(topology: Topology) -> bool:
    result = topology.run(topology.ws, sys.executable, "-c", DNS_ASK, RESOLVER)
    return result.stdout.startswith("ok")


def table_present(topology: Topology) -> bool:
    return topology.run(topology.ws, "nft", "list", "table", "inet", TABLE).returncode == 0


def admin_post(collector: Collector, path: str, body: dict[str, Any]) -> Any:
    def post() -> Any:
        with collector.http() as client:
            return client.post(path, json=body,
                               headers={"Authorization": f"Bearer {collector.admin_key}"})

    response = in_netns(collector.netns, post)
    assert response.status_code in (200, 201), response.text
    return response.json()


def wait_report(collector: Collector, agent: Agent, kind: str,
                where: Callable[[dict[str, Any]], bool] = lambda e: True,
                timeout: float = 60) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        events = collector.events(agent_id=agent.agent_id, kind=kind, limit=100)
        return next((e for e in events if where(e)), None)

    event: dict[str, Any] = wait_until(found, timeout, f"a {kind} event at the collector")
    return event


def assert_isolated(topology: Topology, collector: Collector) -> None:
    """Only the collector, the resolver and the allow-list pass."""
    assert not reaches(topology, OUTSIDE, 80)
    assert not reaches(topology, OTHER_INTRANET, 8080)
    assert reaches(topology, COLLECTOR_ADDRESS, collector.port)
    assert reaches(topology, ALLOWED, 8080)
    assert asks_dns(topology)
    # Loopback passes: a closed port answers refused at once instead of timing out.
    refused = topology.run(topology.ws, sys.executable, "-c", CONNECT, "127.0.0.1", "1")
    assert "refused" in refused.stdout


def test_isolate_restart_reboot_lift_and_replay(world: Any, topology: Topology) -> None:
    """Isolated by the API; kept across kill -9 and a lost table; lifted; a replay refused."""
    agent, collector = world()
    assert reaches(topology, OTHER_INTRANET, 8080)
    made = admin_post(collector, f"/api/v1/agents/{agent.agent_id}/isolations",
                      {"minutes": 60, "reason": "e2e 隔离"})
    applied = wait_report(collector, agent, "outreach.isolation_applied")
    assert applied["evidence"]["isolation_id"] == made["id"]
    assert applied["evidence"]["cause"] == "order" and applied["evidence"]["ok"] is True
    assert table_present(topology)
    assert_isolated(topology, collector)

    # An agent killed outright leaves the table in place: still isolated.
    agent.stop(signal.SIGKILL)
    assert table_present(topology)
    assert_isolated(topology, collector)
    # A reboot loses the table; the next start restores it from the stored order.
    topology.run(topology.ws, "nft", "delete", "table", "inet", TABLE)
    assert reaches(topology, OUTSIDE, 80)
    agent.start()
    wait_report(collector, agent, "outreach.isolation_applied",
                lambda e: e["evidence"].get("cause") == "restart")
    assert table_present(topology)
    assert_isolated(topology, collector)

    admin_post(collector, f"/api/v1/isolations/{made['id']}/lift", {"reason": "排查完毕"})
    lifted = wait_report(collector, agent, "outreach.isolation_lifted",
                         lambda e: e["evidence"].get("cause") == "order")
    assert lifted["evidence"]["isolation_id"] == made["id"]
    assert not table_present(topology)
    assert reaches(topology, OUTSIDE, 80) and reaches(topology, OTHER_INTRANET, 8080)

    # Someone with the database copies the old signed isolate order into a new row.
    engine = sa.create_engine(collector.database_url)
    try:
        with engine.begin() as conn:
            old = conn.execute(sa.text(
                "SELECT body, signature, isolation_id, agent_id FROM isolation_orders "
                "WHERE agent_id = :a AND action = 'isolate'"), {"a": agent.agent_id}).one()
            conn.execute(sa.text(
                "INSERT INTO isolation_orders (order_id, isolation_id, agent_id, action, body, "
                "signature, created_at) VALUES ('replayed-order', :i, :a, 'isolate', :b, :s, "
                "CURRENT_TIMESTAMP)"),
                {"i": old.isolation_id, "a": old.agent_id, "b": old.body, "s": old.signature})
    finally:
        engine.dispose()
    refused = wait_report(collector, agent, "outreach.isolation_refused")
    assert refused["evidence"]["reason_code"] == "replayed"
    assert not table_present(topology)
    assert reaches(topology, OUTSIDE, 80)


def test_an_isolation_expires_by_itself(world: Any, topology: Topology) -> None:
    """Isolated for one minute from the CLI; the agent lifts it at that time, alone."""
    agent, collector = world()
    said = collector.cli("host", "isolate", agent.agent_id, "--minutes", "1",
                         "--reason", "一分钟隔离", "--by", "e2e-admin")
    assert "isolation" in said.stdout and "signed" in said.stdout  # the tests' locale is C
    applied = wait_report(collector, agent, "outreach.isolation_applied")
    assert applied["evidence"]["requested_by"] == "e2e-admin"
    assert not reaches(topology, OUTSIDE, 80)
    listing = collector.cli("host", "isolations").stdout
    assert "isolated" in listing and "一分钟隔离" in listing
    wait_report(collector, agent, "outreach.isolation_lifted",
                lambda e: e["evidence"].get("cause") == "expired", timeout=240)
    assert not table_present(topology)
    assert reaches(topology, OUTSIDE, 80)
    assert "expired" in collector.cli("host", "isolations", "--all").stdout
