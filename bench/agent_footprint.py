"""The idle agent's footprint: start-to-ready time, RSS and CPU, with every detector enabled.

Starts a real collector (SQLite, HTTPS) and one enrolled agent with its
default settings (the default heartbeat), then samples the agent process once
a second. Prints the figures and the budget beside them; it never fails on a
figure.

    .venv/bin/python bench/agent_footprint.py [--seconds 120] [--runs 3] [--documents N]
        [--only accounts] [--accounts-auth-log] [--netns]

With ``--documents N`` the documents detector watches a publication folder
and N judgments (.docx and .txt, half of them with personal data) are dropped
into it before the idle measurement; the figures are taken after the agent
has scanned them all (each in its own child process).

``--capture`` turns ``capture: true`` on for every outreach rule that can
capture (取证抓包): the daemon then holds the capture machinery, idle; scapy
loads only in a capture's child process, so the figure must not move.

``--only NAME`` (repeatable) switches every other detector off;
``--accounts-auth-log`` gives the accounts detector an (idle) auth log file to
follow, so its log reader runs as on a Debian workstation without journald.

Detectors that change the host (the outreach detector installs an nftables
table and probes from every interface) run only with ``--netns``: collector
and agent then run in a throwaway network namespace (root), so nothing
touches the machine's own network. Without it they are switched off.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.detectors.outreach.policy import CAPTURE_SIGNALS
from agent.registry import DETECTORS
from tests.e2e.harness import (
    POLICIES,
    Agent,
    Collector,
    policies_watching,
    product_pacing,
    wait_until,
)

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


def drop_documents(folder: Path, count: int, agent: Agent) -> int:
    """Write ``count`` judgments into the watched folder; wait until the agent scanned them all."""
    from tests.agent.detectors.documents.corpus import Generator, clean_twin, render

    generator = Generator(seed=3)
    for index in range(count):
        document = generator.criminal(index) if index % 2 else clean_twin(generator.civil(index))
        render(document, folder, ".docx" if index % 3 else ".txt")
    seen = agent.data_dir / "documents-scanned.txt"

    def scanned() -> int:
        return len(seen.read_text().split()) if seen.exists() else 0

    wait_until(lambda: scanned() >= count, 60 + count, "the agent to scan every document")
    return scanned()


@contextlib.contextmanager
def own_netns(wanted: bool) -> Iterator[str | None]:
    """A fresh network namespace with loopback up (deleted afterwards), or None."""
    if not wanted:
        yield None
        return
    from tests.e2e.netns import scratch_netns

    with scratch_netns("cgfp") as name:
        yield name


def capturing(source: Path, target: Path) -> Path:
    """A copy of the policy directory whose outreach rules capture wherever they can."""
    target.mkdir()
    for path in source.glob("*.yaml"):
        text = path.read_text()
        if path.name == "networks.yaml":
            data = yaml.safe_load(text)
            for rule in data["rules"]:
                if rule["match"]["signal"] in CAPTURE_SIGNALS:
                    rule["capture"] = True
            text = yaml.safe_dump(data, allow_unicode=True)
        (target / path.name).write_text(text)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--runs", type=int, default=3, help="start-to-ready measurements")
    parser.add_argument(
        "--documents", type=int, default=0, metavar="N",
        help="watch a publication folder and drop N judgments into it before measuring",
    )
    parser.add_argument("--only", action="append", default=[], metavar="DETECTOR",
                        help="enable only these detectors (repeatable); default: all")
    parser.add_argument("--accounts-auth-log", action="store_true",
                        help="let the accounts detector follow an (idle) auth log file")
    parser.add_argument("--capture", action="store_true",
                        help="capture: true on every outreach rule that can capture")
    parser.add_argument(
        "--netns", action="store_true",
        help="run in a new network namespace with every detector on (root)",
    )
    args = parser.parse_args()
    unknown = set(args.only) - {spec.name for spec in DETECTORS}
    if unknown:
        parser.error(f"no such detector: {', '.join(sorted(unknown))}")
    enabled = [s.name for s in DETECTORS if not args.only or s.name in args.only]

    with tempfile.TemporaryDirectory(prefix="cg-footprint-") as tmp, own_netns(args.netns) as ns:
        home = Path(tmp)
        collector = Collector(
            home=home, database_url=f"sqlite:///{home / 'collector.db'}", netns=ns
        )
        collector.init()
        collector.start()
        settings = product_pacing()  # heartbeats and batching as shipped
        if ns is None and "outreach" in enabled:
            enabled.remove("outreach")  # it would change this machine's network; see --netns
        folder = home / "publish"
        if args.documents:
            folder.mkdir()
            settings["policy_dir"] = str(policies_watching(home / "policies", [folder]))
        if args.capture:
            settings["policy_dir"] = str(capturing(Path(settings.get("policy_dir", POLICIES)),
                                                   home / "capture-policies"))
        settings.update({f"detectors__{s.name}": "true" if s.name in enabled else "false"
                         for s in DETECTORS})
        if args.accounts_auth_log:
            auth_log = home / "auth.log"
            auth_log.touch()
            settings.update({"accounts__journal": "false",
                             "accounts__auth_logs": f'["{auth_log}"]'})
        agent = Agent(home=home / "ws", collector=collector, settings=settings, netns=ns)
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
            scanned = drop_documents(folder, args.documents, agent) if args.documents else 0
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
    names = ", ".join(enabled) or "none"
    follows = " (accounts follows an idle auth log)" if args.accounts_auth_log else ""
    where = f" (in netns {ns})" if ns else ""
    capture = "; capture: true on every outreach rule that can capture" if args.capture else ""
    print(f"detectors enabled: {names}{follows}{where}{capture}")
    if args.documents:
        print(f"documents        {scanned} scanned from the watched folder before measuring")
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
