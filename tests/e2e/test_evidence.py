"""Evidence captures end to end: a rule with capture: true, and an admin's order from the API.

The workstation, intranet and outside namespaces of ``tests/e2e/netns.py``;
the agent captures with its scapy child, ships the pcap over HTTPS to the
collector in the intranet, and an admin downloads it.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from scapy.layers.inet import IP, TCP
from scapy.utils import rdpcap

from tests.e2e.harness import Collector, in_netns, wait_until
from tests.e2e.netns import Topology
from tests.e2e.test_outreach import SINK, wait_event

# The outreach tests' fixtures, found by pytest under these names.
from tests.e2e.test_outreach import intranet as intranet
from tests.e2e.test_outreach import topology as topology
from tests.e2e.test_outreach import world as world

pytestmark = [pytest.mark.e2e, pytest.mark.root]

#: Connections to the outside sink, each sending a request the pcap must not keep.
CLIENT = (
    "import socket, time\n"
    "for _ in range(40):\n"
    "    try:\n"
    "        c = socket.create_connection(('203.0.113.10', 80), timeout=3)\n"
    "        c.sendall(b'GET /evidence-secret HTTP/1.0\\r\\n\\r\\n')\n"
    "        c.close()\n"
    "    except OSError:\n"
    "        pass\n"
    "    time.sleep(0.5)\n"
)


def _artifact(collector: Collector, event_id: str) -> Any:
    rows = collector.query(
        "SELECT state, size, sha256, packets FROM evidence_artifacts WHERE event_id = :id",
        id=event_id)
    return rows[0] if rows else None


def _download(collector: Collector, event_id: str) -> httpx.Response:
    def get() -> httpx.Response:
        with collector.http() as client:
            return client.get(f"/api/v1/events/{event_id}/evidence",
                              headers={"Authorization": f"Bearer {collector.admin_key}"})

    response: httpx.Response = in_netns(collector.netns, get)
    return response


def _outside_traffic(topo: Topology) -> None:
    topo.spawn(topo.out, sys.executable, "-c", SINK)
    topo.spawn(topo.ws, sys.executable, "-c", CLIENT)


def test_capture_rule_ships_a_verified_header_only_pcap(
    world: Any, topology: Topology, tmp_path: Path
) -> None:
    """A flow to the outside with capture: true: a pcap of that peer's traffic reaches the
    collector, its hash verifies, scapy reads it, it holds the connections' headers and none
    of the request; the admin's download is audited."""
    _agent, collector = world(**{
        "outreach.flow-outside": {"capture": True},
        "settings": {"capture": {"duration_s": 6, "max_packets": 500}},
    })
    topology.plug_modem()
    _outside_traffic(topology)
    flow = wait_event(collector, "outreach.flow",
                      lambda e: e["evidence"]["remote_address"] == "203.0.113.10")
    row = wait_until(
        lambda: (a := _artifact(collector.collector, flow["id"])) and a.state == "complete" and a,
        180, "the evidence pcap complete at the collector")
    response = _download(collector.collector, flow["id"])
    assert response.status_code == 200, response.text
    pcap = response.content
    assert len(pcap) == row.size and hashlib.sha256(pcap).hexdigest() == row.sha256
    path = tmp_path / "evidence.pcap"
    path.write_bytes(pcap)
    packets = rdpcap(str(path))
    assert len(packets) == row.packets > 0
    assert all({p[IP].src, p[IP].dst} & {"203.0.113.10"} for p in packets)
    syns = [p for p in packets if p.haslayer(TCP) and p[TCP].dport == 80 and p[TCP].flags.S]
    assert syns, "the capture holds the outside connections' SYNs"
    assert b"evidence-secret" not in pcap and b"HTTP/1.0" not in pcap
    audit = collector.collector.query(
        "SELECT actor, via FROM audit_log WHERE action = 'evidence.download' "
        "AND object_id = :id", id=flow["id"])
    assert len(audit) == 1 and audit[0].via == "api"


def test_admin_orders_a_capture_through_the_ingest_answer(
    world: Any, topology: Topology
) -> None:
    """No rule captures; an admin orders a capture for an outside-flow event through the API,
    the agent learns it from its next ingest answer and ships the pcap."""
    _agent, collector = world()
    topology.plug_modem()
    _outside_traffic(topology)
    flow = wait_event(collector, "outreach.flow",
                      lambda e: e["evidence"]["remote_address"] == "203.0.113.10")
    assert _artifact(collector.collector, flow["id"]) is None

    def order() -> httpx.Response:
        with collector.collector.http() as client:
            return client.post(f"/api/v1/events/{flow['id']}/capture",
                               json={"duration_s": 5, "reason": "e2e"},
                               headers={"Authorization": f"Bearer {collector.collector.admin_key}"})

    ordered: httpx.Response = in_netns(collector.collector.netns, order)
    assert ordered.status_code == 202, ordered.text
    topology.spawn(topology.ws, sys.executable, "-c", CLIENT)
    row = wait_until(
        lambda: (a := _artifact(collector.collector, flow["id"])) and a.state == "complete" and a,
        180, "the ordered pcap complete at the collector")
    assert row.packets > 0
