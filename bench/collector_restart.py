"""How long a collector restart takes with agents connected: SIGTERM to exit, start to healthy.

Starts a real collector (SQLite, HTTPS) and N enrolled agents at product
pacing (each holds a shipper and a policy-poll connection), waits until every
agent holds a connection, then stops the collector with SIGTERM and starts it
again. Prints the stop and start times of each run; it never fails on a
figure.

    .venv/bin/python bench/collector_restart.py [--agents 3] [--runs 3]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.harness import Agent, Collector, product_pacing, wait_until


def connected(agent: Agent, port: int) -> bool:
    assert agent.process is not None
    return any(
        conn.status == psutil.CONN_ESTABLISHED and conn.raddr and conn.raddr.port == port
        for conn in psutil.Process(agent.process.pid).net_connections(kind="tcp")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        collector = Collector(home=home, database_url=f"sqlite:///{home / 'collector.db'}")
        collector.init()
        collector.start()
        agents = []
        try:
            for index in range(args.agents):
                agent = Agent(home=home / f"ws{index}", collector=collector,
                              settings=product_pacing())
                agent.home.mkdir()
                agent.enroll()
                agent.start()
                agents.append(agent)
            stops, starts = [], []
            for run in range(args.runs):
                for agent in agents:
                    wait_until(lambda a=agent: connected(a, collector.port), 120,
                               "every agent connected")
                assert collector.process is not None
                began = time.monotonic()
                collector.process.send_signal(signal.SIGTERM)
                collector.process.wait(timeout=120)
                stops.append(time.monotonic() - began)
                collector.process = None
                began = time.monotonic()
                collector.start()
                starts.append(time.monotonic() - began)
                print(f"run {run + 1}: SIGTERM to exit {stops[-1]:.2f} s, "
                      f"start to healthy {starts[-1]:.2f} s", flush=True)
            print(f"{args.agents} agents connected: stop median {statistics.median(stops):.2f} s, "
                  f"start median {statistics.median(starts):.2f} s")
        finally:
            for agent in agents:
                agent.stop()
            collector.stop()


if __name__ == "__main__":
    main()
