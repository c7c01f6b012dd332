"""What a workstation really sends, crafted with scapy, classified by the outreach detector.

Each test sends the same kind of packet once to the intranet and once to the
outside from the workstation namespace of ``tests/e2e/netns.py`` (the modem
plugged, so the outside is reachable), intranet first. The outside packet
must become its event with the right protocol, address and port; the
intranet one, sent before it, must not become any event.

scapy builds the packets; ``emit`` sends their bytes through a raw IP socket
(``IPPROTO_RAW``: the header as built), and ``sr1`` uses scapy's raw IP
socket (``L3RawSocket``). scapy's default packet sockets would hand frames
to the driver below netfilter's output hook, where no workstation's traffic
goes.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from tests.e2e import test_outreach as shared
from tests.e2e.netns import Topology
from tests.e2e.test_outreach import AgentEvents, outreach_events, wait_event

# The namespace fixtures of the outreach tests, found by pytest under these names.
intranet = shared.intranet
topology = shared.topology
world = shared.world

pytestmark = [pytest.mark.e2e, pytest.mark.root]

SCAPY = (
    "import socket\n"
    "from scapy.all import *\n"
    "conf.verb = 0\n"
    "conf.L3socket = L3RawSocket\n"
    "def emit(packet):\n"
    "    family = socket.AF_INET6 if IPv6 in packet else socket.AF_INET\n"
    "    with socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_RAW) as raw:\n"
    "        raw.sendto(bytes(packet), (packet.dst, 0))\n"
)
OUTSIDE_V6 = "2001:db8:2::5"
INTRANET_V6 = "fd00:cafe::53"  # in the intranet's fd00:cafe::/48
TCP_LISTENER = (
    "import socket,sys\n"
    "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(8)\n"
    "while True:\n"
    "    c,_=s.accept(); c.recv(512); c.close()\n"
)


def craft(topology: Topology, code: str) -> None:
    """Run scapy code in the workstation namespace (as root, like any raw-socket sender)."""
    topology.run(topology.ws, sys.executable, "-c", SCAPY + code, check=True, timeout=120)


def add_ipv6(topology: Topology) -> None:
    """A global address on the modem with the default route, and the intranet's prefix on eth0."""
    topology.ip(topology.ws, "-6", "addr", "add", "2001:db8:1::2/64", "dev", "usb0", "nodad")
    topology.ip(topology.ws, "-6", "route", "add", "default", "via", "2001:db8:1::1", "dev", "usb0")
    topology.ip(topology.ws, "-6", "addr", "add", "fd00:cafe:0:1::2/64", "dev", "eth0", "nodad")
    topology.ip(topology.ws, "-6", "route", "add", "fd00:cafe::/48", "dev", "eth0")


def flows_to(collector: AgentEvents, address: str) -> list[dict[str, Any]]:
    return [
        e for e in outreach_events(collector) if e["evidence"].get("remote_address") == address
    ]


def test_ipv6_with_extension_headers_and_icmpv6(world: Any, topology: Topology) -> None:
    """UDP behind hop-by-hop and destination-options headers, and an ICMPv6 echo."""
    _agent, collector = world()
    topology.plug_modem()
    add_ipv6(topology)
    craft(topology, (
        f"for dst in ['{INTRANET_V6}', '{OUTSIDE_V6}']:\n"
        "    emit(IPv6(dst=dst)/IPv6ExtHdrHopByHop()/IPv6ExtHdrDestOpt()"
        "/UDP(sport=40001, dport=4444)/b'x')\n"
        "    emit(IPv6(dst=dst)/ICMPv6EchoRequest(id=7, seq=1))\n"
    ))
    udp = wait_event(collector, "outreach.flow", lambda e: (
        e["evidence"]["remote_address"] == OUTSIDE_V6 and e["evidence"]["protocol"] == "udp"))
    assert udp["evidence"]["remote_port"] == 4444 and udp["evidence"]["interface"] == "usb0"
    wait_event(collector, "outreach.flow", lambda e: (
        e["evidence"]["remote_address"] == OUTSIDE_V6 and e["evidence"]["protocol"] == "icmpv6"))
    assert flows_to(collector, INTRANET_V6) == []


def test_ipv4_fragments_and_icmp(world: Any, topology: Topology) -> None:
    """A 3,000-byte UDP datagram sent as three fragments, and an ICMP echo."""
    _agent, collector = world()
    topology.plug_modem()
    craft(topology, (
        "for dst in ['198.18.0.1', '203.0.113.10']:\n"
        "    for piece in fragment(IP(dst=dst, id=4242)/UDP(sport=40002, dport=5555)"
        "/(b'x' * 3000), fragsize=1000):\n"
        "        emit(piece)\n"
        "    emit(IP(dst=dst)/ICMP(id=9, seq=1))\n"
    ))
    udp = wait_event(collector, "outreach.flow", lambda e: (
        e["evidence"]["remote_address"] == "203.0.113.10" and e["evidence"]["protocol"] == "udp"))
    assert udp["evidence"]["remote_port"] == 5555
    wait_event(collector, "outreach.flow", lambda e: (
        e["evidence"]["remote_address"] == "203.0.113.10" and e["evidence"]["protocol"] == "icmp"))
    assert len([e for e in flows_to(collector, "203.0.113.10") if
                e["evidence"]["protocol"] == "udp" and not e["evidence"]["repeat"]]) == 1
    assert flows_to(collector, "198.18.0.1") == []


def test_one_shot_datagram_and_syn_to_a_closed_port(world: Any, topology: Topology) -> None:
    """A datagram from a socket closed at once, and a TCP SYN answered by a reset."""
    _agent, collector = world()
    topology.plug_modem()
    craft(topology, (
        "import socket\n"
        "for dst in ['198.18.0.1', '203.0.113.10']:\n"
        "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "    s.sendto(b'x', (dst, 9999)); s.close()\n"
        "    answer = sr1(IP(dst=dst)/TCP(sport=40003, dport=81, flags='S'), timeout=3)\n"
        "    if dst == '203.0.113.10':\n"
        "        assert answer is not None and answer[TCP].flags.R, answer\n"
    ))
    udp = wait_event(collector, "outreach.flow", lambda e: (
        e["evidence"]["remote_address"] == "203.0.113.10" and e["evidence"]["protocol"] == "udp"))
    assert udp["evidence"]["remote_port"] == 9999
    syn = wait_event(collector, "outreach.flow", lambda e: (
        e["evidence"]["remote_address"] == "203.0.113.10" and e["evidence"]["protocol"] == "tcp"))
    assert syn["evidence"]["remote_port"] == 81 and syn["evidence"]["local_port"] == 40003
    assert flows_to(collector, "198.18.0.1") == []


def test_dns_over_tcp(world: Any, topology: Topology) -> None:
    """A DNS query over TCP (length-prefixed) to the intranet resolver and to an outside one."""
    _agent, collector = world()
    topology.plug_modem()
    topology.spawn(topology.out, sys.executable, "-c", TCP_LISTENER, "198.51.100.53", "53")
    topology.spawn(topology.intra, sys.executable, "-c", TCP_LISTENER, "198.18.0.53", "53")
    craft(topology, (
        "import socket, struct, time\n"
        "query = bytes(DNS(id=11, rd=1, qd=DNSQR(qname='example.com', qtype='A')))\n"
        "for dst in ['198.18.0.53', '198.51.100.53']:\n"
        "    for attempt in range(50):\n"
        "        try:\n"
        "            c = socket.create_connection((dst, 53), timeout=5); break\n"
        "        except ConnectionRefusedError:\n"
        "            time.sleep(0.2)  # the listener is still starting\n"
        "    c.sendall(struct.pack('!H', len(query)) + query); c.close()\n"
    ))
    dns = wait_event(collector, "outreach.dns", lambda e: e["evidence"]["protocol"] == "tcp")
    assert dns["evidence"]["remote_address"] == "198.51.100.53"
    assert dns["evidence"]["remote_port"] == 53
    assert flows_to(collector, "198.18.0.53") == []
