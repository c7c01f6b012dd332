"""Outreach detector under load, in network namespaces (root; needs iperf3 and curl).

Builds the topology of ``tests/e2e/netns.py`` (workstation, intranet, outside),
a real collector in the intranet namespace and a real agent in the
workstation namespace, then measures:

1. intranet load: iperf3 UDP with 16-byte datagrams from the workstation to the
   intranet for ``--seconds``, once without the agent and once with it; prints
   packets/s, loss, and the agent's CPU (% of one core) and RSS while it runs;
2. latency: ``--latency-flows`` single UDP datagrams to distinct outside
   addresses, each timed from just before ``sendto`` to the moment its
   ``outreach.flow`` event is in the agent's spool (the collector is stopped
   meanwhile so events stay there); prints the median and max;
3. flood: ``--flood-rate`` new outside flows per second for ``--flood-seconds``
   (distinct destination and port each), then waits for the aggregation window
   to close and accounts for every flow: events (with their counts) +
   ``outreach.flood`` suppressed + ``outreach.lost``, against what was sent and
   what the kernel's own counter logged; prints agent CPU during the flood.

It never fails on a figure.

    sudo .venv/bin/python bench/outreach.py [--seconds 20] [--latency-flows 30]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.harness import Agent, Collector
from tests.e2e.netns import Topology, root_reason, start_world

FLOOD = """
import socket, sys, time
rate, seconds = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sent, start = 0, time.perf_counter()
while sent < rate * seconds:
    due = start + sent / rate
    now = time.perf_counter()
    if due > now:
        time.sleep(due - now)
    n = sent
    s.sendto(b"x", (f"203.0.{113 if n % 2 else 112}.{n % 250 + 1}", 10000 + n // 250))
    sent += 1
print(sent, time.perf_counter() - start)
"""


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def iperf(topo: Topology, seconds: float) -> dict[str, float]:
    result = topo.run(
        topo.ws,
        "iperf3",
        "-c",
        "198.18.0.1",
        "-u",
        "-b",
        "0",
        "-l",
        "16",
        "-t",
        str(seconds),
        "--json",
        timeout=seconds + 30,
    )
    summary = json.loads(result.stdout)["end"]["sum"]
    packets = summary.get("packets", 0)
    return {
        "pps": packets / summary["seconds"],
        "lost_percent": summary.get("lost_percent", 0.0),
        "packets": packets,
    }


def intranet_load(topo: Topology, agent: Agent | None, seconds: float) -> dict[str, float]:
    process = psutil.Process(agent.process.pid) if agent and agent.process else None
    before = cpu_seconds(process) if process else 0.0
    rss: list[int] = []
    started = time.perf_counter()
    figures: dict[str, float] = {}
    # iperf3 runs in a thread while this one samples the agent.
    thread = threading.Thread(target=lambda: figures.update(iperf(topo, seconds)))
    thread.start()
    while thread.is_alive():
        if process:
            rss.append(process.memory_info().rss)
        time.sleep(0.5)
    wall = time.perf_counter() - started
    if process:
        figures["agent_cpu_percent"] = (cpu_seconds(process) - before) / wall * 100
        figures["agent_rss_mb"] = max(rss) / 2**20
    return figures


def spool_events(spool: Path, after: int) -> list[tuple[int, dict[str, Any]]]:
    with sqlite3.connect(f"file:{spool}?mode=ro", uri=True, timeout=5) as db:
        rows = db.execute("SELECT seq, body FROM events WHERE seq > ? ORDER BY seq", (after,))
        return [(seq, json.loads(body)) for seq, body in rows]


def latency(topo: Topology, agent: Agent, flows: int) -> list[float]:
    spool = agent.data_dir / "spool.db"
    last = max((seq for seq, _ in spool_events(spool, 0)), default=0)
    results = []
    for i in range(flows):
        target = f"203.0.113.{150 + i % 100}"
        port = 20000 + i
        sender = (
            "import socket,time,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            f"t=time.time(); s.sendto(b'x', ('{target}', {port})); print(t)"
        )
        sent_at = float(topo.run(topo.ws, sys.executable, "-c", sender, check=True).stdout)
        deadline = time.time() + 10
        seen = None
        while time.time() < deadline and seen is None:
            for seq, event in spool_events(spool, last):
                last = max(last, seq)
                evidence = event.get("evidence", {})
                if evidence.get("remote_port") == port and evidence.get("remote_address") == target:
                    seen = time.time()
            time.sleep(0.002)
        if seen is not None:
            results.append(seen - sent_at)
    return results


def flood(
    topo: Topology, agent: Agent, collector: Collector, rate: int, seconds: float, window_s: float
) -> dict[str, Any]:
    assert agent.process is not None
    process = psutil.Process(agent.process.pid)
    kernel_before = _kernel_logged(topo)
    before = cpu_seconds(process)
    started = time.perf_counter()
    result = topo.run(
        topo.ws, sys.executable, "-c", FLOOD, str(rate), str(seconds), timeout=seconds * 3 + 30
    )
    sent = int(result.stdout.split()[0])
    elapsed = float(result.stdout.split()[1])
    time.sleep(1)
    cpu = (cpu_seconds(process) - before) / (time.perf_counter() - started) * 100
    kernel = _kernel_logged(topo) - kernel_before
    time.sleep(window_s + 8)  # let the window close and the finalize timer run

    def accounted() -> tuple[int, int, int, int]:
        events = _all_events(collector, ["outreach.flow", "outreach.flood", "outreach.lost"])
        flows = sum(
            e["evidence"]["count"]
            for e in events
            if e["kind"] == "outreach.flow" and 10000 <= e["evidence"]["remote_port"] < 20000
        )
        flooded = sum(e["evidence"]["suppressed"] for e in events if e["kind"] == "outreach.flood")
        lost = sum(e["evidence"]["lost"] for e in events if e["kind"] == "outreach.lost")
        return flows, flooded, lost, flows + flooded + lost

    deadline = time.monotonic() + 60
    flows, flooded, lost, total = accounted()
    while total < sent and time.monotonic() < deadline:
        time.sleep(2)
        flows, flooded, lost, total = accounted()
    return {
        "sent": sent,
        "elapsed_s": elapsed,
        "kernel_logged": kernel,
        "events_counted": flows,
        "flood_suppressed": flooded,
        "lost": lost,
        "accounted": total,
        "agent_cpu_percent": cpu,
    }


def _all_events(collector: Collector, kinds: list[str]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"kind": ",".join(kinds), "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = collector.api("/api/v1/events", **params)
        events.extend(page["events"])
        cursor = page.get("next_cursor")
        if not cursor:
            return events


def _kernel_logged(topo: Topology) -> int:
    listing = topo.run(topo.ws, "nft", "list", "chain", "inet", "courtguard", "watch_out").stdout
    total = 0
    for line in listing.splitlines():
        words = line.split()
        if "packets" in words:
            total += int(words[words.index("packets") + 1])
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20, help="iperf3 run length")
    parser.add_argument("--latency-flows", type=int, default=30)
    parser.add_argument("--flood-rate", type=int, default=1000)
    parser.add_argument("--flood-seconds", type=float, default=10)
    parser.add_argument("--window", type=float, default=5, help="aggregate_window_s")
    args = parser.parse_args()
    reason = root_reason()
    if reason is not None or shutil.which("iperf3") is None:
        sys.exit(f"cannot run: {reason or 'iperf3 is missing (apt-get install iperf3)'}")

    topo = Topology()
    try:
        topo.create()
        with tempfile.TemporaryDirectory(prefix="cg-outreach-bench-") as tmp:
            home = Path(tmp)
            topo.spawn(topo.intra, "iperf3", "-s", "-B", "198.18.0.1")
            time.sleep(1)
            baseline = intranet_load(topo, None, args.seconds)
            agent, collector = start_world(
                topo,
                home,
                {"heartbeat_interval_s": "60", "batch_max_age_s": "1"},
                settings={"aggregate_window_s": args.window},
            )
            try:
                time.sleep(3)
                loaded = intranet_load(topo, agent, args.seconds)
                print(
                    f"intranet UDP without agent: {baseline['pps']:,.0f} packets/s, "
                    f"loss {baseline['lost_percent']:.2f}%"
                )
                print(
                    f"intranet UDP with agent:    {loaded['pps']:,.0f} packets/s, "
                    f"loss {loaded['lost_percent']:.2f}%; "
                    f"agent CPU {loaded['agent_cpu_percent']:.2f}% "
                    f"of one core, RSS max {loaded['agent_rss_mb']:.1f} MB "
                    f"(budget CPU < 0.5%)"
                )
                outreach_during = [
                    e for e in collector.events() if e["kind"].startswith("outreach.")
                ]
                print(f"outreach events raised by intranet load: {len(outreach_during)}")

                result = flood(
                    topo, agent, collector, args.flood_rate, args.flood_seconds, args.window
                )
                print(
                    f"flood: {result['sent']} new outside flows in {result['elapsed_s']:.1f} s; "
                    f"kernel logged {result['kernel_logged']}; accounted {result['accounted']} "
                    f"(events with counts {result['events_counted']}, counted in outreach.flood "
                    f"{result['flood_suppressed']}, lost {result['lost']}); "
                    f"agent CPU {result['agent_cpu_percent']:.1f}% of one core during the flood"
                )

                collector.stop()  # keep events in the spool for the latency measurement
                lat = latency(topo, agent, args.latency_flows)
                if lat:
                    print(
                        f"first packet to spool: median {statistics.median(lat) * 1000:.1f} ms, "
                        f"max {max(lat) * 1000:.1f} ms over {len(lat)} of "
                        f"{args.latency_flows} flows "
                        f"(budget median < 1 s)"
                    )
                else:
                    print("first packet to spool: no flow reached the spool")
            finally:
                agent.stop()
                collector.stop()
    finally:
        topo.close()


if __name__ == "__main__":
    main()
