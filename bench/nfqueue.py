"""The hold queue's cost, in network namespaces (root; needs iperf3 for the intranet figure).

Builds the topology of ``tests/e2e/netns.py`` with a real collector, then, in
one run, three configurations one after the other: no agent (the floor), an
agent that only logs flows (``hold_queue: null``, as before the queue), and an
agent holding each new outside flow's first packet in its NFQUEUE. Prints:

1. added latency of a new outside flow's first packet: ``--connects`` TCP
   connections from the workstation to an outside listener, each timed from
   ``connect`` to established (the SYN is the held packet); median and 99th
   percentile of each configuration, and what each adds to the floor;
2. agent CPU while ``--flood-rate`` new outside flows per second (one UDP
   datagram each, distinct destination and port) leave for
   ``--flood-seconds``, logging only and with the queue, and the queue's own
   counters (held, dropped);
3. intranet load (iperf3 UDP, 16-byte datagrams) without the agent and with
   the holding agent: packets/s, loss, agent CPU (intranet traffic never
   reaches the queue).

It never fails on a figure.

    sudo .venv/bin/python bench/nfqueue.py [--connects 500] [--flood-rate 1000]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.outreach import FLOOD, cpu_seconds, intranet_load
from tests.e2e.harness import Agent, wait_until
from tests.e2e.netns import Topology, holding, root_reason, start_world

LISTENER = (
    "import socket\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('203.0.113.10', 8000)); s.listen(1024)\n"
    "while True:\n"
    "    c, _ = s.accept(); c.close()\n"
)
CONNECTS = (
    "import socket, sys, time\n"
    "times = []\n"
    "for n in range(int(sys.argv[1])):\n"
    "    t = time.perf_counter()\n"
    "    c = socket.create_connection(('203.0.113.10', 8000), timeout=5)\n"
    "    times.append(time.perf_counter() - t); c.close()\n"
    "print(' '.join(f'{x:.9f}' for x in times))\n"
)


def connect_times(topo: Topology, count: int) -> list[float]:
    result = topo.run(topo.ws, sys.executable, "-c", CONNECTS, str(count), timeout=count + 60)
    return [float(x) for x in result.stdout.split()]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def describe(label: str, times: list[float]) -> tuple[float, float]:
    median, p99 = statistics.median(times) * 1e6, percentile(times, 0.99) * 1e6
    print(f"{label}: median {median:.0f} µs, p99 {p99:.0f} µs over {len(times)} connections")
    return median, p99


def queue_stats(topo: Topology) -> list[list[str]]:
    text = topo.run(topo.ws, "cat", "/proc/net/netfilter/nfnetlink_queue").stdout
    return [line.split() for line in text.splitlines() if line.split()[:1] == ["4790"]][:1] or [[]]


def flood_cpu(topo: Topology, agent: Agent, rate: int, seconds: float) -> str:
    """Agent CPU while ``rate`` new outside flows a second leave for ``seconds``."""
    assert agent.process is not None
    process = psutil.Process(agent.process.pid)
    before_cpu, started = cpu_seconds(process), time.perf_counter()
    result = topo.run(
        topo.ws, sys.executable, "-c", FLOOD, str(rate), str(seconds), timeout=seconds * 3 + 30
    )
    time.sleep(1)
    cpu = (cpu_seconds(process) - before_cpu) / (time.perf_counter() - started) * 100
    sent, elapsed = result.stdout.split()[:2]
    return f"{sent} new outside flows in {float(elapsed):.1f} s; agent CPU {cpu:.1f}% of one core"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connects", type=int, default=500)
    parser.add_argument("--flood-rate", type=int, default=1000)
    parser.add_argument("--flood-seconds", type=float, default=10)
    parser.add_argument("--seconds", type=float, default=10, help="iperf3 run length")
    args = parser.parse_args()
    reason = root_reason()
    if reason is not None:
        sys.exit(f"cannot run: {reason}")
    iperf = shutil.which("iperf3") is not None
    agent_settings = {"heartbeat_interval_s": "60", "batch_max_age_s": "1"}

    topo = Topology()
    try:
        topo.create()
        topo.plug_modem()
        topo.spawn(topo.out, sys.executable, "-c", LISTENER)
        if iperf:
            topo.spawn(topo.intra, "iperf3", "-s", "-B", "198.18.0.1")
        time.sleep(1)
        with tempfile.TemporaryDirectory(prefix="cg-nfqueue-bench-") as tmp:
            connect_times(topo, 20)  # warm caches and the listener
            floor = describe("connect without agent (floor)", connect_times(topo, args.connects))
            baseline = intranet_load(topo, None, args.seconds) if iperf else None

            # The agent as before the queue: flows logged only (hold_queue: null).
            agent, collector = start_world(
                topo,
                Path(tmp) / "logged",
                agent_settings,
                settings={"aggregate_window_s": 5, "hold_queue": None},
            )
            try:
                time.sleep(3)
                connect_times(topo, 20)
                logged = describe("connect, agent logging only", connect_times(topo, args.connects))
                print(
                    "flood, agent logging only: "
                    + flood_cpu(topo, agent, args.flood_rate, args.flood_seconds)
                )
            finally:
                agent.stop()

            agent, collector = start_world(
                topo, Path(tmp) / "held", agent_settings, settings={"aggregate_window_s": 5}
            )
            try:
                wait_until(lambda: holding(topo), 30, "the agent holding new outside flows")
                connect_times(topo, 20)
                held = describe("connect with the hold queue", connect_times(topo, args.connects))
                print(
                    f"added by the queue: median {held[0] - floor[0]:.0f} µs "
                    f"({held[0] / floor[0]:.2f}x floor), p99 {held[1] - floor[1]:.0f} µs "
                    f"({held[1] / floor[1]:.2f}x floor); logging only added median "
                    f"{logged[0] - floor[0]:.0f} µs, p99 {logged[1] - floor[1]:.0f} µs"
                )
                before_queue = queue_stats(topo)[0]
                line = flood_cpu(topo, agent, args.flood_rate, args.flood_seconds)
                after_queue = queue_stats(topo)[0]
                # Columns: queue, portid, waiting, copy mode, copy range, queue dropped,
                # user dropped, last packet id, 1.
                print(
                    f"flood, with the hold queue: {line}; queue ids advanced by "
                    f"{int(after_queue[7]) - int(before_queue[7])}, queue dropped "
                    f"{after_queue[5]}, user dropped {after_queue[6]} "
                    f"(fail-open accepts are not counted by the kernel)"
                )
                if baseline is not None:
                    loaded = intranet_load(topo, agent, args.seconds)
                    print(
                        f"intranet UDP without agent: {baseline['pps']:,.0f} packets/s, "
                        f"loss {baseline['lost_percent']:.2f}%"
                    )
                    print(
                        f"intranet UDP with agent:    {loaded['pps']:,.0f} packets/s, "
                        f"loss {loaded['lost_percent']:.2f}%; agent CPU "
                        f"{loaded['agent_cpu_percent']:.2f}% of one core (budget < 0.5%)"
                    )
                else:
                    print("intranet load: skipped, iperf3 is missing (apt-get install iperf3)")
            finally:
                agent.stop()
                collector.stop()
    finally:
        topo.close()


if __name__ == "__main__":
    main()
