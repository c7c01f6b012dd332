"""The capture child: headers only unless asked, and a real capture in a namespace."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import rdpcap

from agent.events import CaptureOrder
from agent.evidence.capture import bpf_filter, kept_bytes
from tests.e2e.netns import require_root, scratch_netns

REPO = Path(__file__).resolve().parents[3]


def test_tcp_payload_is_cut_after_the_tcp_header() -> None:
    """An HTTP request keeps its IP and TCP headers (40 bytes), not the request."""
    request = Raw(b"GET /secret HTTP/1.0\r\n")
    packet = Ether(dst="02:00:00:00:00:01") / IP(dst="203.0.113.10") / TCP(dport=80) / request
    kept = kept_bytes(Ether(bytes(packet)), payload=False)
    assert len(kept) == 40 and b"secret" not in kept
    assert IP(kept)[TCP].dport == 80


def test_payload_is_kept_when_the_order_asks() -> None:
    """payload: true keeps the whole IP packet."""
    packet = Ether(dst="02:00:00:00:00:01") / IP(dst="203.0.113.10") / UDP(dport=53) / Raw(b"query")
    assert kept_bytes(Ether(bytes(packet)), payload=True) == bytes(packet[IP])


def test_icmp_error_keeps_only_its_own_header() -> None:
    """An ICMP error quotes the offending packet; only IP + the 8-byte ICMP header stay."""
    quoted = IP(dst="203.0.113.10") / UDP(dport=9) / Raw(b"private")
    packet = Ether(dst="02:00:00:00:00:01") / IP(dst="10.1.2.3") / ICMP(type=3, code=3) / quoted
    kept = kept_bytes(Ether(bytes(packet)), payload=False)
    assert len(kept) == 28 and b"private" not in kept


def test_ipv6_fragment_keeps_the_network_headers() -> None:
    """A non-first IPv6 fragment has no transport header: the IPv6 header and extension stay."""
    fragment = IPv6ExtHdrFragment(offset=100) / Raw(b"x" * 64)
    packet = Ether(dst="02:00:00:00:00:01") / IPv6(dst="2001:db8::1") / fragment
    kept = kept_bytes(Ether(bytes(packet)), payload=False)
    assert len(kept) == 48 and b"x" * 8 not in kept


def test_filter_names_the_peer() -> None:
    """The kernel filter keeps the peer's traffic; an interface-only order keeps everything."""
    assert bpf_filter(CaptureOrder(peer="203.0.113.10")) == "host 203.0.113.10"
    assert bpf_filter(CaptureOrder(interface="usb0")) is None


@pytest.mark.root
def test_capture_in_a_namespace_keeps_the_peer_only(tmp_path: Path) -> None:
    """The child captures the peer's datagrams on a veth, headers only, and nothing of another
    address; its summary line counts them."""
    require_root()
    with scratch_netns("cgcap") as netns:
        for command in (
            ["link", "add", "cgcap0", "type", "veth", "peer", "name", "cgcap1"],
            ["addr", "add", "198.51.100.2/24", "dev", "cgcap0"],
            ["link", "set", "cgcap0", "up"], ["link", "set", "cgcap1", "up"],
            ["neigh", "add", "198.51.100.1", "lladdr", "02:00:00:00:00:01", "dev", "cgcap0"],
            ["neigh", "add", "198.51.100.9", "lladdr", "02:00:00:00:00:09", "dev", "cgcap0"],
        ):
            subprocess.run(["ip", "-n", netns, *command], check=True)
        out = tmp_path / "cap.pcap"
        order = CaptureOrder(peer="198.51.100.1", interface="cgcap0", duration_s=60,
                             max_packets=5)
        child = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, "-m", "agent.evidence.capture",
             order.model_dump_json(), str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
        )
        sender = "\n".join((
            "import socket, time",
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)",
            "for _ in range(50):",
            "    s.sendto(b'SECRET-PAYLOAD', ('198.51.100.9', 7))",
            "    s.sendto(b'SECRET-PAYLOAD', ('198.51.100.1', 9999))",
            "    time.sleep(0.1)",
        ))
        stop = threading.Event()

        def send() -> None:  # until the child has its five packets
            while not stop.is_set() and child.poll() is None:
                subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", sender],
                               timeout=120, check=False)

        threading.Thread(target=send, daemon=True).start()
        try:
            stdout, stderr = child.communicate(timeout=240)
        finally:
            stop.set()
        assert child.returncode == 0, stderr.decode()
        summary = json.loads(stdout.decode().strip().splitlines()[-1])
        assert summary["packets"] == 5 and summary["stopped_by"] == "packets"
        packets = rdpcap(str(out))
        assert len(packets) == 5
        assert {p[IP].dst for p in packets} == {"198.51.100.1"}
        assert all(p[UDP].dport == 9999 and p.wirelen > len(p) for p in packets)
        assert b"SECRET" not in out.read_bytes()


def test_the_daemon_never_imports_scapy() -> None:
    """scapy costs tens of megabytes: only the capture child may load it, never the daemon,
    its evidence service or the outreach source."""
    code = (
        "import sys, agent.cli, agent.daemon, agent.evidence.service, "
        "agent.detectors.outreach.source\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'scapy')\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, check=True, timeout=120)
    assert result.stdout.strip() == ""
