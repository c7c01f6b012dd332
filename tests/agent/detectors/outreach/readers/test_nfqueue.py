"""The hold queue on a real kernel, in a scratch namespace: held, looked up, answered.

The table is the one the agent installs (``kernel_filter.install``); the
packets are real sockets' first packets to an outside address routed out of
a veth whose peer drops it. A postrouting counter of the test's own shows what passed.
"""

from __future__ import annotations

import os
import select
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from agent.detectors.outreach.observations import FlowObservation
from agent.detectors.outreach.policy import NetworksPolicy
from agent.detectors.outreach.readers import kernel_filter
from agent.detectors.outreach.readers.attribution import cgroup_of, unit_of
from agent.detectors.outreach.readers.flows import FlowReader, twin_key
from agent.detectors.outreach.readers.nfqueue import queue_rule_batch
from tests.e2e.harness import in_netns, wait_until
from tests.e2e.netns import sh

OUTSIDE = "203.0.113.5"
QUEUE = 4790


def prepare(netns: str) -> None:
    sh("ip", "-n", netns, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
    sh("ip", "-n", netns, "link", "set", "d1", "up")
    sh("ip", "-n", netns, "address", "add", "198.51.100.2/24", "dev", "d0")
    sh("ip", "-n", netns, "link", "set", "d0", "up")
    sh("ip", "-n", netns, "route", "add", "default", "dev", "d0")
    sh(
        "ip",
        "netns",
        "exec",
        netns,
        "nft",
        "add table inet seen; add chain inet seen post { type filter hook postrouting "
        "priority 100; }; add rule inet seen post ip daddr 203.0.113.5 udp dport 7000-7001 counter",
    )


def passed(netns: str) -> int:
    text = sh("ip", "netns", "exec", netns, "nft", "list", "table", "inet", "seen").stdout
    return int(text.split("packets", 1)[1].split()[0])


def held(reader: FlowReader, policy: NetworksPolicy, seen: list[Any], want: int = 1) -> None:
    """Read the queue until ``want`` observations came (generous deadline)."""
    deadline = time.monotonic() + 10
    while len(seen) < want and time.monotonic() < deadline:
        assert reader.queue is not None
        select.select([reader.queue], [], [], 0.5)
        reader.read_held(policy, lambda index: None)


def scenario(policy: NetworksPolicy, body: Callable[..., Any]) -> Callable[[], Any]:
    def run() -> Any:
        seen: list[FlowObservation] = []
        kernel_filter.install(kernel_filter.plan_for(policy))
        reader = FlowReader(policy.settings.nflog_group, seen.append, policy.settings.hold_queue)
        try:
            return body(reader, seen)
        finally:
            reader.close()

    return run


def test_queue_rule_is_the_compat_nfqueue_target_with_bypass() -> None:
    batch = queue_rule_batch("courtguard", "hold", 4790)
    assert b"NFQUEUE\0" in batch and b"courtguard\0" in batch and b"hold\0" in batch


def test_held_tcp_syn_and_udp_datagram_name_their_process(
    netns: str, policy: NetworksPolicy
) -> None:
    prepare(netns)

    def body(reader: FlowReader, seen: list[FlowObservation]) -> None:
        assert reader.queue is not None, reader.queue_error
        client = socket.socket()
        client.setblocking(False)
        client.connect_ex((OUTSIDE, 9))  # nothing listens: the SYN is answered with a reset
        held(reader, policy, seen)
        tcp = seen[0]
        assert tcp.held and tcp.protocol == "tcp" and tcp.destination == OUTSIDE
        assert tcp.process is not None and tcp.process.pid == os.getpid()
        assert tcp.uid == os.getuid() and tcp.user
        client.close()
        # A datagram from a socket closed at once: its process may be gone, its uid is not.
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.sendto(b"x", (OUTSIDE, 9999))
        udp.close()
        held(reader, policy, seen, 2)
        datagram = seen[1]
        assert datagram.protocol == "udp" and datagram.held
        assert datagram.uid == os.getuid() and datagram.gid == os.getgid()
        assert datagram.process is not None or datagram.process_note

    in_netns(netns, scenario(policy, body))


def test_held_ipv6_and_dual_stack_syns_name_their_process(
    netns: str, policy: NetworksPolicy
) -> None:
    prepare(netns)
    sh("ip", "-n", netns, "address", "add", "2001:db8::2/64", "dev", "d0", "nodad")
    sh("ip", "-n", netns, "-6", "route", "add", "default", "dev", "d0")

    def body(reader: FlowReader, seen: list[FlowObservation]) -> None:
        client = socket.socket(socket.AF_INET6)
        client.setblocking(False)
        client.connect_ex(("2001:db8::5", 9))
        held(reader, policy, seen)
        client.close()
        assert seen[0].destination == "2001:db8::5" and seen[0].held
        assert seen[0].process is not None and seen[0].process.pid == os.getpid()
        # A dual-stack socket sending IPv4: sock_diag finds it by its IPv4 addresses.
        mapped = socket.socket(socket.AF_INET6)
        mapped.setblocking(False)
        mapped.connect_ex((f"::ffff:{OUTSIDE}", 9))
        held(reader, policy, seen, 2)
        mapped.close()
        assert seen[1].destination == OUTSIDE
        assert seen[1].process is not None and seen[1].process.pid == os.getpid()

    in_netns(netns, scenario(policy, body))


def test_the_hold_thread_answers_and_stops(netns: str, policy: NetworksPolicy) -> None:
    prepare(netns)

    def body(reader: FlowReader, seen: list[FlowObservation]) -> None:
        reader.start_holding(lambda: policy, lambda index: None, seen.append)
        client = socket.socket()
        client.setblocking(False)
        client.connect_ex((OUTSIDE, 9))
        wait_until(lambda: seen, 10, "the held SYN answered by the hold thread")
        client.close()
        assert seen[0].process is not None and seen[0].process.pid == os.getpid()

    in_netns(netns, scenario(policy, body))


def test_without_a_bound_queue_packets_pass(netns: str, policy: NetworksPolicy) -> None:
    """bypass: with the table in place and no agent on the queue, nothing is held or lost."""
    prepare(netns)

    def run() -> None:
        kernel_filter.install(kernel_filter.plan_for(policy))
        assert "chain hold_out" in sh("nft", "list", "table", "inet", "courtguard").stdout
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"passed", (OUTSIDE, 7000))

    in_netns(netns, run)
    assert passed(netns) == 1


def test_program_grant_passes_its_program_and_drops_others(netns: str, make_policy: Any) -> None:
    prepare(netns)
    me = os.readlink("/proc/self/exe")

    def grant(exe: str) -> NetworksPolicy:
        data = make_policy().model_dump(mode="json")
        data["lists"]["portal"] = ["203.0.113.0/28"]
        data["settings"]["program_grants"] = [
            {"name": "approved-browser", "destinations": ["portal"], "programs": [{"exe": exe}]}
        ]
        return NetworksPolicy.model_validate(data)

    def attempt(policy: NetworksPolicy) -> FlowObservation:
        def body(reader: FlowReader, seen: list[FlowObservation]) -> Any:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                sender.sendto(b"portal", (OUTSIDE, 7001))
                held(reader, policy, seen)
            return seen[0]

        result: FlowObservation = in_netns(netns, scenario(policy, body))
        return result

    allowed = attempt(grant(me))
    assert allowed.verdict == "granted" and allowed.grant == "approved-browser"
    assert passed(netns) == 1
    denied = attempt(grant("/usr/bin/approved-browser"))
    assert denied.verdict == "dropped" and passed(netns) == 1
    assert denied.process is not None and denied.process.exe == me
    assert len(denied.process.sha256) == 64


def test_grants_are_validated(make_policy: Any) -> None:
    data = make_policy().model_dump(mode="json")
    data["lists"]["portal"] = ["203.0.113.0/28"]
    bad_hash = {"exe": "/usr/bin/chromium", "sha256": "abc"}
    data["settings"]["program_grants"] = [
        {"name": "b", "destinations": ["portal"], "programs": [bad_hash]}
    ]
    with pytest.raises(ValueError, match="sha256"):
        NetworksPolicy.model_validate(data)
    data["settings"]["program_grants"][0]["programs"] = [{"exe": "chromium"}]
    with pytest.raises(ValueError, match="exe"):
        NetworksPolicy.model_validate(data)
    data["settings"]["program_grants"][0]["programs"] = [{"exe": "/usr/bin/chromium"}]
    data["settings"]["hold_queue"] = None
    with pytest.raises(ValueError, match="hold_queue"):
        NetworksPolicy.model_validate(data)
    data["settings"]["hold_queue"] = QUEUE
    data["settings"]["program_grants"][0]["destinations"] = ["missing"]
    with pytest.raises(ValueError, match="missing"):
        NetworksPolicy.model_validate(data)


def test_hold_chain_comes_after_the_drops(make_policy: Any) -> None:
    policy = make_policy(**{"outreach.flow-outside": {"response": "block"}})
    text = kernel_filter.ruleset(kernel_filter.plan_for(policy))
    outbound = text.split("chain outbound", 1)[1].split("}", 1)[0]
    assert outbound.index("drop") < outbound.index("jump hold_out")
    forwarded = text.split("chain forwarded", 1)[1].split("}", 1)[0]
    assert "hold_out" not in forwarded
    unheld = make_policy({"hold_queue": None})
    assert "hold" not in kernel_filter.ruleset(kernel_filter.plan_for(unheld))


def test_logged_and_held_twins_differ_only_in_the_transport_checksum() -> None:
    """Bytes of one SYN as NFLOG (partial checksum) and NFQUEUE (completed) copied it."""
    logged = bytes.fromhex(
        "4500003c36c1400040069dbfc6336402cb007105e52a0050d7d71f3600000000a002faf0666a0000"
        "020405b40402080a3fd5e352000000000103030a"
    )
    held_copy = logged[:36] + bytes.fromhex("e71f") + logged[38:]
    assert logged != held_copy
    assert twin_key(logged) == twin_key(held_copy)
    retry_from_another_port = logged[:20] + bytes.fromhex("e52b") + logged[22:]
    assert twin_key(retry_from_another_port) != twin_key(logged)
    assert twin_key(b"") == b""


def test_a_grant_for_an_intranet_destination_is_refused(make_policy: Any) -> None:
    data = make_policy().model_dump(mode="json")
    data["lists"]["portal"] = ["198.18.5.0/24"]
    data["settings"]["program_grants"] = [
        {"name": "b", "destinations": ["portal"], "programs": [{"exe": "/usr/bin/chromium"}]}
    ]
    with pytest.raises(
        ValueError, match=r"program_grants\[0\]\.destinations: .* overlaps the intranet"
    ):
        NetworksPolicy.model_validate(data)


def test_cgroup_paths_name_the_unit() -> None:
    assert unit_of("/system.slice/cups.service") == "cups.service"
    assert unit_of("/user.slice/user-1000.slice/session-3.scope") == "session-3.scope"
    assert unit_of("/user.slice/user-1000.slice") == "user-1000.slice"
    assert unit_of("/") == ""
    assert cgroup_of(os.getpid()).startswith("/")
