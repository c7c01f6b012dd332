"""How fast a published policy switches the outreach block on and off (root, network namespaces).

Builds the topology of ``tests/e2e/netns.py`` with a real collector in the
intranet namespace and a real agent in the workstation namespace (its own
policy group), then, ``--rounds`` times:

1. publishes the shipped policies with ``outreach.flow-outside`` set to
   ``block`` and times publish → the agent's ``outreach.action`` (block),
   which it reports once its nftables table drops (checked too);
2. publishes them report-only again and times publish → ``unblock``.

Before each publish the agent is left idle until it has shipped nothing for
5 s (heartbeats hourly), so no ingest answer's hint can bring the bundle in
early: what is measured is the held fetch (or, without it, the timed poll).

"publish" is the bundle's ``created_at`` (stored a moment later, when
``courtguard-collector policy publish`` commits); the agent may apply it
before that command's process has even exited. The floor, measured in the
same run, is one HTTPS fetch of the group's bundle from the collector
(``GET /api/v1/policy``, 200): what any switch costs at the least. With
``--polling-rounds N`` the same is measured N times with ``policy_wait_s =
0`` (timed polls and ingest hints only, what agents did before held
fetches). It never fails on a figure.

    sudo .venv/bin/python bench/policy_switch.py [--rounds 5] [--polling-rounds 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.harness import Agent, Collector
from tests.e2e.netns import Topology, publish_block, root_reason, start_world

DEADLINE_S = 180.0


def blocking(topology: Topology) -> bool:
    listing = topology.run(topology.ws, "nft", "list", "table", "inet", "courtguard").stdout
    return " drop" in listing


def switch(
    collector: Collector, agent: Agent, topology: Topology, home: Path, group: str, on: bool
) -> float:
    """Publish blocking ``on`` (or off); seconds from the bundle's creation to the agent's
    ``outreach.action`` saying its table enforces it (inf past the deadline)."""
    action = "block" if on else "unblock"
    seen = len(actions(collector, agent, action))
    settle(collector, agent)
    published = publish_block(collector, home / f"publish-{time.monotonic_ns()}", group, on)
    while blocking(topology) != on or len(actions(collector, agent, action)) <= seen:
        if time.time() - published > DEADLINE_S:
            return float("inf")
        time.sleep(0.2)
    return max(actions(collector, agent, action)) - published


def settle(collector: Collector, agent: Agent, quiet_s: float = 5.0) -> None:
    """Wait until the agent has shipped nothing for ``quiet_s``: no ingest answer (whose
    policy hint would fetch the bundle at once) is then on its way when the bundle is made."""
    count, since = -1, time.monotonic()
    while time.monotonic() - since < quiet_s:
        now = len(collector.events(agent_id=agent.agent_id))
        if now != count:
            count, since = now, time.monotonic()
        time.sleep(0.5)


def actions(collector: Collector, agent: Agent, action: str) -> list[float]:
    """When the agent reported ``action`` (block, unblock), as ``time.time()`` seconds."""
    return [
        datetime.fromisoformat(e["time"]).timestamp()
        for e in collector.events(kind="outreach.action", agent_id=agent.agent_id)
        if e["evidence"]["action"] == action
    ]


def fetch_floor(collector: Collector, agent: Agent, topology: Topology, tries: int = 5) -> float:
    """The fastest of ``tries`` full HTTPS fetches of the agent's bundle from the workstation."""
    credentials = json.loads((agent.data_dir / "credentials.json").read_text())
    authorization = f"Bearer {credentials['agent_id']}:{credentials['secret']}"
    best = float("inf")
    script = (
        "import httpx,sys,time,json\n"
        "url, ca, auth = sys.argv[1:4]\n"
        "with httpx.Client(base_url=url, verify=ca) as c:\n"
        "    c.get('/healthz')\n"
        "    t = time.perf_counter()\n"
        "    r = c.get('/api/v1/policy', headers={'Authorization': auth})\n"
        "    print(json.dumps([time.perf_counter() - t, r.status_code]))\n"
    )
    for _ in range(tries):
        result = subprocess.run(
            ["ip", "netns", "exec", topology.ws, sys.executable, "-c", script,
             collector.url, str(collector.ca_file), authorization],
            capture_output=True, text=True, timeout=60, check=True,
        )
        seconds, status = json.loads(result.stdout)
        if status == 200:
            best = min(best, seconds)
    return best


def measure(
    topology: Topology, home: Path, rounds: int, wait_s: str, group: str
) -> tuple[list[float], list[float], float]:
    agent, collector = start_world(
        topology, home / group, {"policy_wait_s": wait_s, "heartbeat_interval_s": "3600"},
        group=group,
    )
    try:
        on, off = [], []
        for _ in range(rounds):
            on.append(switch(collector, agent, topology, home, group, True))
            off.append(switch(collector, agent, topology, home, group, False))
        return on, off, fetch_floor(collector, agent, topology)
    finally:
        agent.stop()


def describe(name: str, figures: list[float], floor: float) -> str:
    median = statistics.median(figures)
    return (f"{name}: median {median:.2f} s, max {max(figures):.2f} s "
            f"(×{median / floor:,.0f} the floor), each {', '.join(f'{f:.1f}' for f in figures)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--polling-rounds", type=int, default=0,
                        help="also measure with policy_wait_s=0 (up to a minute per switch)")
    args = parser.parse_args()
    reason = root_reason()
    if reason is not None:
        sys.exit(f"cannot run: {reason}")
    topology = Topology()
    try:
        topology.create()
        with tempfile.TemporaryDirectory(prefix="cg-policy-switch-") as tmp:
            home = Path(tmp)
            topology.plug_modem()
            on, off, floor = measure(topology, home, args.rounds, "25", f"held-{topology.suffix}")
            print(f"floor: one HTTPS fetch of the bundle {floor * 1000:.1f} ms")
            print(describe("held fetches (policy_wait_s 25), blocking on ", on, floor))
            print(describe("held fetches (policy_wait_s 25), blocking off", off, floor))
            if args.polling_rounds:
                on, off, floor = measure(
                    topology, home, args.polling_rounds, "0", f"poll-{topology.suffix}"
                )
                print(describe("timed polls (policy_wait_s 0), blocking on  ", on, floor))
                print(describe("timed polls (policy_wait_s 0), blocking off ", off, floor))
    finally:
        topology.close()


if __name__ == "__main__":
    main()
