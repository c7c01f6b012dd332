"""The idle agent's footprint: start-to-ready time, RSS and CPU, with every detector enabled.

Starts a real collector (SQLite, HTTPS) and one enrolled agent with its
default settings (every registered detector enabled, the default heartbeat),
then samples the agent process once a second. Prints the figures and the
budget beside them; it never fails on a figure.

    .venv/bin/python bench/agent_footprint.py [--seconds 120] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.registry import DETECTORS
from tests.e2e.harness import Agent, Collector, wait_until

RSS_BUDGET_MB = 80
CPU_BUDGET_PERCENT = 0.5
READY_BUDGET_S = 2.0


def start_to_ready(agent: Agent) -> float:
    """Seconds from exec to the agent's 'agent ready' log line."""
    lines_before = agent.log().count("agent ready")
    started = time.perf_counter()
    agent.start(wait_ready=False)
    wait_until(
        lambda: agent.log().count("agent ready") > lines_before, 30, "agent ready", every=0.01
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--runs", type=int, default=3, help="start-to-ready measurements")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cg-footprint-") as tmp:
        home = Path(tmp)
        collector = Collector(home=home, database_url=f"sqlite:///{home / 'collector.db'}")
        collector.init()
        collector.start()
        agent = Agent(
            home=home / "ws", collector=collector, settings={"heartbeat_interval_s": "60"}
        )
        agent.home.mkdir()
        agent.enroll()
        try:
            ready = []
            for _ in range(args.runs):
                ready.append(start_to_ready(agent))
                agent.stop()
            ready.append(start_to_ready(agent))
            assert agent.process is not None
            process = psutil.Process(agent.process.pid)
            time.sleep(5)  # let start-up work (first heartbeat, first batch) finish
            rss: list[int] = []
            cpu_start = process.cpu_times()
            wall_start = time.perf_counter()
            while time.perf_counter() - wall_start < args.seconds:
                rss.append(process.memory_info().rss)
                time.sleep(1)
            cpu_end = process.cpu_times()
            wall = time.perf_counter() - wall_start
        finally:
            agent.stop()
            collector.stop()

    cpu = (cpu_end.user + cpu_end.system - cpu_start.user - cpu_start.system) / wall * 100
    names = ", ".join(spec.name for spec in DETECTORS) or "none registered yet"
    print(f"detectors enabled: {names}")
    print(
        f"start-to-ready   median {statistics.median(ready):.2f} s over {len(ready)} starts "
        f"(min {min(ready):.2f}, max {max(ready):.2f}); budget {READY_BUDGET_S} s"
    )
    print(
        f"idle RSS         median {statistics.median(rss) / 2**20:.1f} MB, "
        f"max {max(rss) / 2**20:.1f} MB over {wall:.0f} s; budget {RSS_BUDGET_MB} MB"
    )
    print(
        f"idle CPU         {cpu:.3f}% of one core averaged over {wall:.0f} s; "
        f"budget {CPU_BUDGET_PERCENT}%"
    )


if __name__ == "__main__":
    main()
