"""The outreach detector end to end: agent in a workstation namespace, collector in the intranet.

Each test builds the topology of ``tests/e2e/netns.py``, starts a real
collector inside the intranet namespace (on 198.18.0.1, so the agent ships
across the intranet link and block mode has a real collector path to keep
open) and a real agent inside the workstation namespace, then asserts the
events that reach the collector.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.harness import BIN, Agent, Collector, wait_until
from tests.e2e.netns import (
    MODEM_MAC,
    PROBE_KEY,
    Intranet,
    Topology,
    networks_policy,
    publish_block,
    require_root,
    start_world,
    write_policies,
)

pytestmark = [pytest.mark.e2e, pytest.mark.root]

SINK = (
    "import socket,threading,time\n"
    "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('203.0.113.10', 80)); s.listen(64)\n"
    "def hold(c):\n"
    "    time.sleep(2); c.sendall(b'HTTP/1.0 200 OK\\r\\n\\r\\nok'); c.close()\n"
    "while True:\n"
    "    c,_=s.accept(); threading.Thread(target=hold, args=(c,), daemon=True).start()\n"
)
INTRANET_CHATTER = (
    "import socket\n"
    "u=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "u.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)\n"
    "u.sendto(b'ntp', ('198.18.0.1', 123))\n"
    "u.sendto(b'mdns', ('224.0.0.251', 5353))\n"
    "u.sendto(b'dhcp', ('255.255.255.255', 67))\n"
    "u.sendto(b'dns', ('198.18.0.53', 53))\n"
)


@pytest.fixture(scope="module")
def intranet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Intranet]:
    """One intranet namespace and collector for the module; each test links its own workstation."""
    require_root()
    shared = Intranet(tmp_path_factory.mktemp("intranet"))
    try:
        shared.create()
        shared.start_collector()
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


@dataclass
class AgentEvents:
    """The shared collector's events, narrowed to one test's agent."""

    collector: Collector
    agent: Agent

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        filters: dict[str, Any] = {"agent_id": self.agent.agent_id, "limit": 1000}
        if kind is not None:
            filters["kind"] = kind
        return self.collector.events(**filters)


@pytest.fixture
def world(tmp_path: Path, topology: Topology) -> Iterator[Callable[..., tuple[Agent, Any]]]:
    """Start an agent in the workstation with a networks policy; its events at the collector."""
    started: list[Agent] = []

    def start(**policy_changes: Any) -> tuple[Agent, AgentEvents]:
        agent, collector = start_world(topology, tmp_path, **policy_changes)
        started.append(agent)
        return agent, AgentEvents(collector, agent)

    yield start
    for agent in started:
        agent.stop()


def outreach_events(collector: AgentEvents, kind: str | None = None) -> list[dict[str, Any]]:
    events = collector.events(kind)
    return [e for e in events if e["kind"].startswith("outreach.")]


def wait_event(
    collector: AgentEvents,
    kind: str,
    where: Callable[[dict[str, Any]], bool] = lambda e: True,
    timeout: float = 20,
) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        return next((e for e in collector.events(kind=kind) if where(e)), None)

    event: dict[str, Any] = wait_until(found, timeout, f"a {kind} event at the collector")
    return event


def start_responder(topology: Topology, tmp_path: Path, key: str = PROBE_KEY) -> Path:
    policy = tmp_path / f"responder-{key[:6]}.yaml"
    data = networks_policy()
    data["settings"]["probe"]["key"] = key
    policy.write_text(yaml.safe_dump(data, allow_unicode=True))
    log = tmp_path / "responder.jsonl"
    topology.spawn(
        topology.out,
        str(BIN / "courtguard-collector"),
        "probe-responder",
        "--policy",
        str(policy),
        "--log",
        str(log),
    )
    return log


def serve_intranet_web(topology: Topology) -> None:
    topology.spawn(
        topology.intra, sys.executable, "-m", "http.server", "--bind", "198.18.0.1", "8080"
    )


def intranet_web_status(topology: Topology) -> str:
    result = topology.run(
        topology.ws,
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "http://198.18.0.1:8080/",
    )
    return result.stdout


def test_intranet_life_raises_nothing(world: Any, topology: Topology) -> None:
    """DHCP, NTP, mDNS, intranet DNS and HTTP through the intranet link: no outreach event."""
    _agent, collector = world()
    serve_intranet_web(topology)
    time.sleep(1)
    for _ in range(3):
        topology.run(topology.ws, sys.executable, "-c", INTRANET_CHATTER, check=True)
        assert intranet_web_status(topology) == "200"
    time.sleep(2)
    heartbeats = wait_until(lambda: collector.events(kind="agent.heartbeat"), 10, "heartbeats")
    assert heartbeats[0]["evidence"]["detectors"]["outreach"]["state"] == "ok"
    assert outreach_events(collector) == []


def test_plugged_modem_reports_link_address_route_and_probe(
    world: Any, topology: Topology, tmp_path: Path
) -> None:
    """A modem with a better default route: interface, address, route events; probe via it only."""
    log = start_responder(topology, tmp_path)
    _agent, collector = world()
    topology.plug_modem()
    interface = wait_event(collector, "outreach.interface")
    assert interface["evidence"]["interface"] == "usb0"
    assert interface["evidence"]["interface_class"] == "tethering"
    assert interface["evidence"]["interface_mac"] == MODEM_MAC
    address = wait_event(collector, "outreach.address")
    assert address["evidence"]["address"] == "198.51.100.2"
    route = wait_event(collector, "outreach.route")
    assert route["evidence"]["interface"] == "usb0"
    assert route["evidence"]["gateway"] == "198.51.100.1"
    probe = wait_event(collector, "outreach.probe")
    assert probe["severity"] == "critical" and probe["evidence"]["interface"] == "usb0"
    # One round tries every interface at once and reports each answer as it comes.
    probes = wait_until(
        lambda: (
            len(collector.events(kind="outreach.probe")) >= 2
            and collector.events(kind="outreach.probe")
        ),
        10,
        "the TCP and DNS probe events",
    )
    assert {p["evidence"]["interface"] for p in probes} == {"usb0"}
    assert {p["evidence"]["method"] for p in probes} == {"tcp", "dns"}
    hits = [json.loads(line) for line in log.read_text().splitlines()]
    assert {h["interface"] for h in hits} == {"usb0"} and {h["host"] for h in hits} == {"ws-e2e"}


def test_outside_flows_tcp_udp_and_dns(world: Any, topology: Topology) -> None:
    """curl, one UDP datagram and a DNS query to an outside resolver each become an event."""
    _agent, collector = world()
    topology.plug_modem()
    topology.spawn(topology.out, sys.executable, "-c", SINK)
    time.sleep(1)
    curl = topology.spawn(topology.ws, "curl", "-s", "-m", "5", "http://203.0.113.10/")
    topology.run(
        topology.ws,
        sys.executable,
        "-c",
        "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
        ".sendto(b'x', ('203.0.113.77', 9999))",
        check=True,
    )
    topology.run(
        topology.ws,
        sys.executable,
        "-c",
        "import socket,struct; q=struct.pack('!HHHHHH',1,256,1,0,0,0)+"
        "b'\\x07example\\x03com\\x00'+struct.pack('!HH',1,1);"
        "socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(q, ('198.51.100.53', 53))",
        check=True,
    )
    tcp = wait_event(collector, "outreach.flow", lambda e: e["evidence"]["protocol"] == "tcp")
    assert tcp["evidence"]["remote_address"] == "203.0.113.10"
    assert tcp["evidence"]["remote_port"] == 80
    assert tcp["evidence"]["process"]["name"] == "curl"
    assert tcp["evidence"]["interface"] == "usb0"
    udp = wait_event(collector, "outreach.flow", lambda e: e["evidence"]["protocol"] == "udp")
    assert udp["evidence"]["remote_address"] == "203.0.113.77"
    assert udp["evidence"]["remote_port"] == 9999
    dns = wait_event(collector, "outreach.dns")
    assert dns["evidence"]["remote_address"] == "198.51.100.53"
    assert dns["evidence"]["query_name"] == "example.com"
    curl.wait(timeout=10)


def test_forged_probe_reply_is_not_a_hit(world: Any, topology: Topology, tmp_path: Path) -> None:
    """A responder with the wrong key answers every probe; no outreach.probe event results."""
    start_responder(topology, tmp_path, key="not-the-policy-key-at-all-000")
    agent, collector = world()
    topology.plug_modem()
    wait_event(collector, "outreach.interface")
    wait_until(lambda: "without a valid signature" in agent.log(), 20, "a rejected probe reply")
    assert collector.events(kind="outreach.probe") == []


def test_proxy_settings_forwarding_and_masquerade(world: Any, topology: Topology) -> None:
    """An outside proxy in /etc/environment, ip_forward=1 and a masquerade rule are reported."""
    (topology.etc / "environment").write_text(
        'http_proxy="http://proxy.court.test:8080"\nhttps_proxy=http://203.0.113.8:3128\n'
    )
    _agent, collector = world()
    proxy = wait_event(collector, "outreach.proxy")
    assert proxy["evidence"]["proxy_host"] == "203.0.113.8"
    assert len(collector.events(kind="outreach.proxy")) == 1  # the intranet proxy is fine
    topology.run(topology.ws, "sysctl", "-qw", "net.ipv4.ip_forward=1", check=True)
    sharing = wait_event(collector, "outreach.sharing", timeout=10)
    assert sharing["evidence"]["ipv4_forwarding"] is True
    for command in (
        "add table ip share",
        "add chain ip share post { type nat hook postrouting priority srcnat; }",
        'add rule ip share post oifname "eth0" masquerade',
    ):
        topology.run(topology.ws, "nft", command, check=True)
    masquerade = wait_event(
        collector, "outreach.sharing", lambda e: e["evidence"]["masquerade"], timeout=10
    )
    assert masquerade["evidence"]["ipv4_forwarding"] is True


def test_block_stops_outside_traffic_but_not_intranet_or_shipping(
    world: Any, topology: Topology
) -> None:
    """With block, curl outside fails, intranet HTTP works and events still reach the collector."""
    _agent, collector = world(**{"outreach.flow-outside": {"response": "block"}})
    topology.plug_modem()
    topology.spawn(topology.out, sys.executable, "-c", SINK)
    serve_intranet_web(topology)
    action = wait_event(collector, "outreach.action")
    assert action["evidence"]["action"] == "block" and action["evidence"]["ok"] is True
    time.sleep(1)
    outside = topology.run(topology.ws, "curl", "-s", "-m", "3", "http://203.0.113.10/")
    assert outside.returncode != 0
    assert intranet_web_status(topology) == "200"
    flow = wait_event(collector, "outreach.flow")  # shipped over the intranet while blocking
    assert flow["evidence"]["remote_address"] == "203.0.113.10"
    before = len(collector.events(kind="agent.heartbeat"))
    wait_until(
        lambda: len(collector.events(kind="agent.heartbeat")) > before + 1,
        10,
        "heartbeats while blocking",
    )


def test_link_down_takes_the_modem_down_and_keeps_it_down(world: Any, topology: Topology) -> None:
    """link-down: the agent downs usb0, reports it, and downs it again when it is raised."""
    _agent, collector = world(**{"outreach.interface-unapproved": {"response": "link-down"}})
    topology.plug_modem(route=False)
    action = wait_event(
        collector, "outreach.action", lambda e: e["evidence"]["action"] == "link-down"
    )
    assert action["evidence"]["target"] == "usb0" and action["evidence"]["ok"] is True
    wait_until(lambda: topology.link_state(topology.ws, "usb0") == "DOWN", 10, "usb0 down")
    topology.ip(topology.ws, "link", "set", "usb0", "up")
    wait_until(
        lambda: (
            len(
                [
                    e
                    for e in collector.events(kind="outreach.action")
                    if e["evidence"]["action"] == "link-down"
                ]
            )
            >= 2
        ),
        10,
        "a second link-down",
    )
    assert topology.link_state(topology.ws, "usb0") == "DOWN"
    assert topology.link_state(topology.ws, "eth0") == "UP"


def sightings(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Interface events reporting the link up (first or repeat), not the one closing it."""
    return [e for e in events if not e["evidence"].get("ended")]


def endings(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["evidence"].get("ended")]


def _fd_count(agent: Agent) -> int:
    assert agent.process is not None
    import psutil

    children = psutil.Process(agent.process.pid).children(recursive=True)
    process = children[-1] if children else psutil.Process(agent.process.pid)
    return process.num_fds()


def test_modem_plugged_and_unplugged_twenty_times(world: Any, topology: Topology) -> None:
    """Twenty cycles: one episode, a repeat per window with the count, one ending; no fd leak.

    On a loaded machine the cycles can outlast one 8 s window; the episode
    then reports one repeat for each window it spans and one more with its
    ending, and the counts still add up to twenty.
    """
    agent, collector = world(settings={"aggregate_window_s": 8})
    time.sleep(1)
    fds_before = _fd_count(agent)
    started = time.monotonic()
    for _ in range(20):
        topology.plug_modem(route=False)
        time.sleep(0.15)
        topology.unplug_modem()
        time.sleep(0.15)
    cycling_s = time.monotonic() - started

    def all_twenty_counted() -> list[dict[str, Any]] | None:
        events = sightings(collector.events(kind="outreach.interface"))
        return events if sum(e["evidence"]["count"] for e in events) == 20 else None

    events = wait_until(all_twenty_counted, 45, "twenty sightings counted")
    # Replugged within the quiet time, the modem stays one episode, closed once it stays out.
    closing = wait_event(
        collector, "outreach.interface", lambda e: bool(e["evidence"].get("ended"))
    )
    assert closing["evidence"]["ended"] == "removed"
    assert len(endings(collector.events(kind="outreach.interface"))) <= len(
        [e for e in events if not e["evidence"]["repeat"]]
    )
    firsts = [e for e in events if not e["evidence"]["repeat"]]
    repeats = [e for e in events if e["evidence"]["repeat"]]
    assert [e["evidence"]["count"] for e in firsts] == [1] * len(firsts)
    span_s = (datetime.fromisoformat(closing["time"])
              - datetime.fromisoformat(firsts[0]["time"])).total_seconds()
    assert len(repeats) <= len(firsts) + 1 + int(span_s // 8)
    # Sightings start at the first plug and may be handled a little after the last one.
    assert len(firsts) <= 2 + int(cycling_s // 8)
    assert _fd_count(agent) <= fds_before + 2
    tables = topology.run(topology.ws, "nft", "list", "tables").stdout.split("\n")
    assert [t for t in tables if "courtguard" in t] == ["table inet courtguard"]
    links = topology.ip(topology.ws, "-o", "link").stdout
    assert "usb0" not in links


def test_dry_run_reports_the_block_without_blocking(world: Any, topology: Topology) -> None:
    """dry_run: an outreach.action with dry_run true, and outside traffic still flows."""
    _agent, collector = world(
        settings={"dry_run": True}, **{"outreach.flow-outside": {"response": "block"}}
    )
    topology.plug_modem()
    topology.spawn(topology.out, sys.executable, "-c", SINK)
    action = wait_event(collector, "outreach.action")
    assert action["evidence"]["dry_run"] is True and action["evidence"]["action"] == "block"
    time.sleep(1)
    assert topology.run(topology.ws, "curl", "-s", "-m", "5", "http://203.0.113.10/").stdout == "ok"
    assert (
        "drop" not in topology.run(topology.ws, "nft", "list", "table", "inet", "courtguard").stdout
    )


def test_block_is_undone_when_the_policy_stops_asking(
    world: Any, topology: Topology, tmp_path: Path
) -> None:
    """Block survives the agent's stop; restarted on a report-only policy, it unblocks."""
    agent, collector = world(**{"outreach.flow-outside": {"response": "block"}})
    topology.plug_modem()
    topology.spawn(topology.out, sys.executable, "-c", SINK)
    wait_event(collector, "outreach.action", lambda e: e["evidence"]["action"] == "block")
    agent.stop()
    listing = topology.run(topology.ws, "nft", "list", "table", "inet", "courtguard").stdout
    assert "drop" in listing  # enforcement fails closed while the agent is away
    write_policies(tmp_path / "policies")
    agent.start()
    unblock = wait_event(
        collector, "outreach.action", lambda e: e["evidence"]["action"] == "unblock"
    )
    assert unblock["evidence"]["ok"] is True
    assert topology.run(topology.ws, "curl", "-s", "-m", "5", "http://203.0.113.10/").stdout == "ok"


DNS_SERVER = (
    "import socket,struct\n"
    "s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('198.18.0.53', 53))\n"
    "while True:\n"
    "    q,peer=s.recvfrom(512)\n"
    "    end=q.index(b'\\0',12)+5\n"
    "    a=struct.pack('!HHHIH',0xC00C,1,1,60,4)+socket.inet_aton('203.0.113.5')\n"
    "    s.sendto(q[:2]+struct.pack('!HHHHH',0x8180,1,1,0,0)+q[12:end]+a, peer)\n"
)


def test_intranet_name_answered_with_an_outside_address(world: Any, topology: Topology) -> None:
    """The intranet resolver answers oa.court.test with 203.0.113.5: outreach.dns_answer."""
    _agent, collector = world()
    topology.spawn(topology.intra, sys.executable, "-c", DNS_SERVER)
    time.sleep(1)
    query = (
        "import socket,struct; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3);"
        "q=struct.pack('!HHHHHH',7,256,1,0,0,0)+b'\\x02oa\\x05court\\x04test\\x00'"
        "+struct.pack('!HH',1,1); s.sendto(q, ('198.18.0.53', 53)); print(len(s.recv(512)))"
    )
    assert topology.run(topology.ws, sys.executable, "-c", query, check=True).stdout.strip() != ""
    answer = wait_event(collector, "outreach.dns_answer")
    assert answer["evidence"]["name"] == "oa.court.test"
    assert answer["evidence"]["outside_addresses"] == ["203.0.113.5"]
    assert answer["evidence"]["resolver"] == "198.18.0.53"


def test_ipv6_global_address_and_flows_and_icmp(world: Any, topology: Topology) -> None:
    """A global IPv6 address on the modem, a UDP datagram over IPv6 and an ICMP echo."""
    _agent, collector = world()
    topology.plug_modem()
    topology.ip(topology.ws, "-6", "addr", "add", "2001:db8:1::2/64", "dev", "usb0", "nodad")
    topology.ip(topology.ws, "-6", "route", "add", "default", "via", "2001:db8:1::1", "dev", "usb0")
    address = wait_event(
        collector, "outreach.address", lambda e: e["evidence"]["address"] == "2001:db8:1::2"
    )
    assert address["evidence"]["interface"] == "usb0"
    sender = (
        "import socket; socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)"
        ".sendto(b'x', ('2001:db8:2::5', 4444));"
        "icmp=socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP);"
        "icmp.sendto(b'\\x08\\x00\\xf7\\xff\\x00\\x00\\x00\\x00', ('203.0.113.10', 0))"
    )
    topology.run(topology.ws, sys.executable, "-c", sender, check=True)
    udp6 = wait_event(
        collector, "outreach.flow", lambda e: e["evidence"]["remote_address"] == "2001:db8:2::5"
    )
    assert udp6["evidence"]["protocol"] == "udp" and udp6["evidence"]["remote_port"] == 4444
    icmp = wait_event(collector, "outreach.flow", lambda e: e["evidence"]["protocol"] == "icmp")
    assert icmp["evidence"]["remote_address"] == "203.0.113.10"


def test_split_default_routes_through_the_modem(world: Any, topology: Topology) -> None:
    """0/1 + 128/1 through the modem (VPN style) beat the default route: outreach.route."""
    _agent, collector = world()
    topology.plug_modem(route=False)
    for half in ("0.0.0.0/1", "128.0.0.0/1"):
        topology.ip(topology.ws, "route", "add", half, "via", "198.51.100.1", "dev", "usb0")
    route = wait_event(collector, "outreach.route")
    assert route["evidence"]["interface"] == "usb0"
    assert route["evidence"]["canary"] == "192.0.2.1"


def test_interface_block_drops_traffic_leaving_through_the_modem(
    world: Any, topology: Topology
) -> None:
    """block on the interface rule: nothing leaves through usb0; unplugged, the block goes."""
    _agent, collector = world(**{"outreach.interface-unapproved": {"response": "block"}})
    topology.plug_modem()
    topology.spawn(topology.out, sys.executable, "-c", SINK)
    action = wait_event(collector, "outreach.action", lambda e: e["evidence"]["target"] == "usb0")
    assert action["evidence"]["action"] == "block" and action["evidence"]["ok"] is True
    assert topology.run(topology.ws, "curl", "-s", "-m", "3", "http://203.0.113.10/").stdout == ""
    serve_intranet_web(topology)
    time.sleep(1)
    assert intranet_web_status(topology) == "200"
    topology.unplug_modem()
    wait_event(collector, "outreach.action", lambda e: e["evidence"]["action"] == "unblock")
    listing = topology.run(topology.ws, "nft", "list", "table", "inet", "courtguard").stdout
    assert "usb0" not in listing


def _alert_of(collector: AgentEvents, event_id: str) -> int:
    rows = collector.collector.query(
        "SELECT alert_id FROM alert_events WHERE event_id = :id", id=event_id
    )
    return int(rows[0][0])


def test_modem_set_down_or_unplugged_closes_its_episode(world: Any, topology: Topology) -> None:
    """Set down, then raised and unplugged: each episode ends with an event in its own alert."""
    _agent, collector = world()
    topology.plug_modem(route=False)
    opened = wait_event(collector, "outreach.interface")
    topology.ip(topology.ws, "link", "set", "usb0", "down")
    down = wait_event(collector, "outreach.interface", lambda e: bool(e["evidence"].get("ended")))
    assert down["evidence"]["ended"] == "down" and down["evidence"]["interface"] == "usb0"
    assert down["rule_id"] == opened["rule_id"] == "outreach.interface-unapproved"
    assert down["evidence"]["sightings"] >= 1 and down["evidence"]["duration_s"] >= 0
    assert "已停用" in down["summary"]
    wait_until(lambda: collector.collector.query(
        "SELECT 1 FROM alert_events WHERE event_id = :id", id=down["id"]), 20, "alert grouping")
    assert _alert_of(collector, down["id"]) == _alert_of(collector, opened["id"])
    # Raised again: a new episode, reported at once; unplugged: it ends too.
    topology.ip(topology.ws, "link", "set", "usb0", "up")
    wait_until(
        lambda: len(sightings(collector.events(kind="outreach.interface"))) >= 2,
        20,
        "the second episode's first event",
    )
    topology.unplug_modem()
    removed = wait_event(
        collector, "outreach.interface", lambda e: e["evidence"].get("ended") == "removed"
    )
    assert removed["evidence"]["interface"] == "usb0" and "已拔出" in removed["summary"]


def test_forwarding_on_two_interfaces_with_the_global_switch_off(
    world: Any, topology: Topology
) -> None:
    """net.ipv4.conf.<if>.forwarding on eth0 and usb0, ip_forward 0: reported as sharing."""
    _agent, collector = world()
    topology.plug_modem(route=False)
    wait_event(collector, "outreach.interface")
    assert topology.run(topology.ws, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "0"
    for name in ("eth0", "usb0"):
        topology.run(topology.ws, "sysctl", "-qw", f"net.ipv4.conf.{name}.forwarding=1", check=True)
    sharing = wait_event(
        collector,
        "outreach.sharing",
        lambda e: e["evidence"].get("ipv4_forwarding_interfaces") == ["eth0", "usb0"],
    )
    assert sharing["evidence"]["ipv4_forwarding"] is False
    assert "eth0、usb0" in sharing["summary"]


def test_proxy_written_after_start_is_reported(world: Any, topology: Topology) -> None:
    """A proxy script dropped into /etc/profile.d while the agent runs: inotify wakes the reader."""
    profile_d = topology.etc / "profile.d"  # bind-mounted over the workstation's /etc/profile.d
    profile_d.mkdir()
    _agent, collector = world()
    wait_until(lambda: collector.events(kind="agent.heartbeat"), 20, "a first heartbeat")
    (profile_d / "proxy.sh").write_text("export https_proxy=http://203.0.113.8:3128\n")
    proxy = wait_event(collector, "outreach.proxy")
    assert proxy["evidence"]["proxy_host"] == "203.0.113.8"
    assert proxy["evidence"]["origin"] == "/etc/profile.d/proxy.sh"


def _probe_pending_on(topology: Topology, interface: str) -> bool:
    """A probe socket bound to ``interface`` still waiting for the responder (SYN sent)."""
    listing = topology.run(
        topology.ws, "ss", "-Htn", "state", "syn-sent", "dst", "203.0.113.10"
    ).stdout
    return f"%{interface}:" in listing


def test_a_verified_probe_does_not_wait_for_the_slowest_interface(
    world: Any, topology: Topology, tmp_path: Path
) -> None:
    """usb0's verified probe reaches the collector while eth0's probe is still unanswered."""
    start_responder(topology, tmp_path)
    _agent, collector = world(settings={"probe": {
        "targets": ["probe_targets"], "key": PROBE_KEY, "interval_s": 3600, "timeout_s": 25,
        "methods": ["tcp"],
    }})
    topology.plug_modem(route=False)
    probe = wait_event(collector, "outreach.probe", timeout=20)
    assert probe["evidence"]["interface"] == "usb0"
    # The intranet drops packets to the outside silently, so eth0's probe waits out its timeout.
    assert _probe_pending_on(topology, "eth0")


def _blocking(topology: Topology) -> bool:
    listing = topology.run(topology.ws, "nft", "list", "table", "inet", "courtguard").stdout
    return " drop" in listing


def _enforced_after(collector: Collector, agent: Agent, action: str, published: float) -> float:
    """Seconds from the bundle's creation to the agent's report that its table enforces it."""
    events = collector.events(kind="outreach.action", agent_id=agent.agent_id)
    times = [
        datetime.fromisoformat(e["time"]).timestamp()
        for e in events
        if e["evidence"]["action"] == action
    ]
    return max(times) - published


def test_blocking_published_on_and_off_takes_effect_without_waiting_for_a_poll(
    topology: Topology, tmp_path: Path
) -> None:
    """A published block is enforced, and a published report-only policy lifts it.

    The agent's timed poll is every 10 minutes here: the change comes through
    the held fetch (or an ingest answer's hint). The seconds from each
    bundle's creation to the agent's ``outreach.action`` are printed (``-s``);
    bench/policy_switch.py measures them over several rounds.
    """
    group = f"switch-{topology.suffix}"
    agent, collector = start_world(
        topology, tmp_path, agent_settings={"policy_poll_s": "600"}, group=group
    )
    try:
        topology.plug_modem()
        topology.spawn(topology.out, sys.executable, "-c", SINK)
        wait_until(lambda: collector.events(kind="agent.heartbeat", agent_id=agent.agent_id),
                   20, "a first heartbeat")
        assert not _blocking(topology)
        published = publish_block(collector, tmp_path / "on", group, block=True)
        wait_until(lambda: _blocking(topology), 60, "blocking on after the publish")
        outside = topology.run(topology.ws, "curl", "-s", "-m", "3", "http://203.0.113.10/")
        assert outside.stdout == ""
        wait_until(lambda: collector.events(kind="outreach.action", agent_id=agent.agent_id),
                   20, "the block reported")
        on_s = _enforced_after(collector, agent, "block", published)
        published = publish_block(collector, tmp_path / "off", group, block=False)
        wait_until(lambda: not _blocking(topology), 60, "blocking off after the publish")
        assert (
            topology.run(topology.ws, "curl", "-s", "-m", "5", "http://203.0.113.10/").stdout
            == "ok"
        )
        wait_until(
            lambda: [
                e
                for e in collector.events(kind="outreach.action", agent_id=agent.agent_id)
                if e["evidence"]["action"] == "unblock"
            ],
            20,
            "the unblock reported",
        )
        off_s = _enforced_after(collector, agent, "unblock", published)
        print(f"policy switch: blocking on {on_s:.1f} s, off {off_s:.1f} s after publishing")
    finally:
        agent.stop()
