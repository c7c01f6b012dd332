"""The idle agent's footprint: start-to-ready, idle CPU and RSS, beside a bare-imports floor.

Starts a real collector (SQLite, HTTPS) and one enrolled agent at the
product's pacing (``product_pacing``: the shipped heartbeat, batching and
back-off), every registered detector enabled. Each round:

1. starts the floor, a process that imports the libraries a ready agent
   cannot do without (``FLOOR_IMPORTS``), prints a line and waits on an idle
   event loop, and times exec to that line;
2. starts the agent and times exec to its ``agent ready`` log line;
3. samples both processes once a second for ``--seconds`` (120 by default):
   CPU over the whole window after ready and from ready + 5 s (start-up
   work such as the first heartbeat, policy fetch and probes left out), as
   a share of a core and as the process's own CPU seconds; its wake-ups
   (voluntary context switches of all its threads, which machine load
   barely changes) per minute over the same window; and the median RSS;
4. stops both.

Floor and agent idle side by side, so both see the same machine load. The
figures printed are medians over ``--runs`` rounds (3 by default), each with
its ratio to the floor measured in the same run; it never fails on a figure.
The agent tree is byte-compiled first (as a package install does), and
``PYTHONDONTWRITEBYTECODE`` does not change what is measured.

    .venv/bin/python bench/agent_footprint.py [--seconds 120] [--runs 3] [--documents N]
        [--only accounts] [--accounts-auth-log] [--netns]

With ``--documents N`` the documents detector watches a publication folder
and N judgments (.docx and .txt, half of them with personal data) are dropped
into it in the first round; the idle windows of that round start once the
agent has scanned them all (each in its own child process).

``--capture`` turns ``capture: true`` on for every outreach rule that can
capture (取证抓包): the daemon then holds the capture machinery, idle; scapy
loads only in a capture's child process, so the figure must not move.

``--only NAME`` (repeatable) switches every other detector off;
``--accounts-auth-log`` gives the accounts detector an (idle) auth log file to
follow, so its log reader runs as on a Debian workstation without journald.

Detectors that change the host (the outreach detector installs an nftables
table and probes from every interface) run only with ``--netns``: collector,
agent and floor then run in a throwaway network namespace (root), so nothing
touches the machine's own network. Without it they are switched off.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.detectors.outreach.policy import CAPTURE_SIGNALS
from agent.registry import DETECTORS
from tests.e2e.harness import (
    BIN,
    POLICIES,
    Agent,
    Collector,
    netns_prefix,
    policies_watching,
    product_pacing,
    spawn,
    stop_process,
    wait_until,
)

REPO = Path(__file__).resolve().parents[1]

#: What a ready agent has loaded that no agent could do without: the event loop, the spool,
#: TLS and HTTP to the collector, the models, logging, process and file watching, signatures.
FLOOR_IMPORTS = (
    "asyncio",
    "sqlite3",
    "ssl",
    "pydantic",
    "pydantic_settings",
    "structlog",
    "httpx",
    "psutil",
    "yaml",
    "watchdog.observers",
    "cryptography.hazmat.primitives.asymmetric.ed25519",
)
FLOOR_READY = "floor ready"
FLOOR_PROGRAM = (
    f"import {', '.join(FLOOR_IMPORTS)}\n"
    f"print({FLOOR_READY!r}, flush=True)\n"
    "asyncio.run(asyncio.Event().wait())\n"
)
#: The window "from ready + 5 s" leaves the start-up work out.
SETTLE_S = 5.0

RSS_BUDGET_MB = 80
CPU_GOAL_PERCENT = 0.25
READY_GOAL_S = 1.0


@dataclass
class Sampled:
    """One process's figures in one round."""

    ready_s: float
    start_cpu_s: float  # CPU seconds spent from exec to ready (its own, not its children's)
    cpu_first: float = 0.0  # % of one core, ready .. ready + window
    cpu_settled: float = 0.0  # % of one core, ready + SETTLE_S .. ready + window
    cpu_s_settled: float = 0.0  # its own CPU seconds over that window (user + system)
    wakeups_per_min: float = 0.0  # voluntary context switches of all its threads, same window
    rss: list[int] = field(default_factory=list)

    @property
    def rss_mb(self) -> float:
        return statistics.median(self.rss) / 2**20 if self.rss else 0.0


def _log_lines(path: Path, text: str) -> int:
    return path.read_text(errors="replace").count(text) if path.exists() else 0


def timed_start(start: Callable[[], psutil.Process], log: Path, ready_line: str) -> tuple[
    psutil.Process, float, float
]:
    """Start a process; wall and CPU seconds from exec to ``ready_line`` once more in ``log``."""
    before = _log_lines(log, ready_line)
    started = time.perf_counter()
    process = start()
    wait_until(lambda: _log_lines(log, ready_line) > before, 60, ready_line, every=0.01)
    return process, time.perf_counter() - started, cpu_seconds(process)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def wakeups(process: psutil.Process) -> int:
    """Voluntary context switches of every thread: each is a sleep that ended in a wake-up.

    Machine load barely moves this count (an idle thread blocks once per wake however
    slowly it runs), where CPU time grows with load.
    """
    total = 0
    for task in Path(f"/proc/{process.pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
    return total


def sample_idle(processes: dict[str, psutil.Process], seconds: float,
                ready: dict[str, tuple[float, float]]) -> dict[str, Sampled]:
    """CPU and RSS of each process over ``seconds`` from now (taken as its ready time)."""
    out = {name: Sampled(*ready[name]) for name in processes}
    start_cpu = {name: cpu_seconds(p) for name, p in processes.items()}
    settled_cpu: dict[str, float] = {}
    settled_wakeups: dict[str, int] = {}
    began = time.perf_counter()
    settled_at = began
    while (elapsed := time.perf_counter() - began) < seconds:
        if not settled_cpu and elapsed >= SETTLE_S:
            settled_cpu = {name: cpu_seconds(p) for name, p in processes.items()}
            settled_wakeups = {name: wakeups(p) for name, p in processes.items()}
            settled_at = time.perf_counter()
        for name, process in processes.items():
            out[name].rss.append(process.memory_info().rss)
        time.sleep(1)
    ended = time.perf_counter()
    for name, process in processes.items():
        end = cpu_seconds(process)
        out[name].cpu_first = (end - start_cpu[name]) / (ended - began) * 100
        out[name].cpu_s_settled = end - settled_cpu.get(name, start_cpu[name])
        out[name].cpu_settled = out[name].cpu_s_settled / (ended - settled_at) * 100
        out[name].wakeups_per_min = (
            (wakeups(process) - settled_wakeups.get(name, 0)) / (ended - settled_at) * 60
        )
    return out


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


def ratio(value: float, floor: float) -> str:
    return f"{value / floor:.2f}x the floor" if floor > 0 else "floor is 0"


def report(rounds: list[dict[str, Sampled]], seconds: float) -> None:
    def median(name: str, figure: Callable[[Sampled], float]) -> float:
        return statistics.median(figure(r[name]) for r in rounds)

    figures: list[tuple[str, Callable[[Sampled], float], str, str]] = [
        ("start-to-ready", lambda s: s.ready_s, "s", f"goal {READY_GOAL_S} s"),
        ("CPU spent starting", lambda s: s.start_cpu_s, "s", ""),
        (f"idle CPU, first {seconds:.0f} s", lambda s: s.cpu_first, "% of a core", ""),
        (f"idle CPU, from ready+{SETTLE_S:.0f} s", lambda s: s.cpu_settled, "% of a core",
         f"goal {CPU_GOAL_PERCENT} %"),
        (f"own CPU s, ready+{SETTLE_S:.0f} s on", lambda s: s.cpu_s_settled, "s", ""),
        (f"wakeups/min, ready+{SETTLE_S:.0f} s on", lambda s: s.wakeups_per_min, "/min", ""),
        ("idle RSS (median)", lambda s: s.rss_mb, "MB", f"budget {RSS_BUDGET_MB} MB"),
    ]
    print(f"medians of {len(rounds)} run(s); floor: {', '.join(FLOOR_IMPORTS)}")
    for label, figure, unit, goal in figures:
        agent, floor = median("agent", figure), median("floor", figure)
        digits = 4 if unit.startswith("%") else 2 if unit == "s" else 1
        each = ", ".join(f"{figure(r['agent']):.{digits}f}" for r in rounds)
        print(
            f"{label:<28} agent {agent:.{digits}f} {unit} ({ratio(agent, floor)}; "
            f"floor {floor:.{digits}f}); runs: {each}{'; ' + goal if goal else ''}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120, help="idle window after ready")
    parser.add_argument("--runs", type=int, default=3, help="rounds; figures are their medians")
    parser.add_argument(
        "--documents", type=int, default=0, metavar="N",
        help="watch a publication folder and drop N judgments into it before measuring",
    )
    parser.add_argument("--only", action="append", default=[], metavar="DETECTOR",
                        help="enable only these detectors (repeatable); default: all")
    parser.add_argument("--accounts-auth-log", action="store_true",
                        help="let the accounts detector follow an (idle) auth log file")
    parser.add_argument(
        "--netns", action="store_true",
        help="run in a new network namespace with every detector on (root)",
    )
    parser.add_argument("--capture", action="store_true",
                        help="capture: true on every outreach rule that can capture")
    args = parser.parse_args()
    unknown = set(args.only) - {spec.name for spec in DETECTORS}
    if unknown:
        parser.error(f"no such detector: {', '.join(sorted(unknown))}")
    if args.runs < 1 or args.seconds <= SETTLE_S:
        parser.error(f"--runs must be at least 1 and --seconds above {SETTLE_S:.0f}")
    enabled = [s.name for s in DETECTORS if not args.only or s.name in args.only]
    # What a package install does (pip compiles at install): measure with bytecode cached.
    compileall.compile_dir(REPO / "agent", quiet=1)

    rounds: list[dict[str, Sampled]] = []
    scanned = 0
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
        floor_log = home / "floor.log"
        floor_env = {k: v for k, v in os.environ.items() if not k.startswith("COURTGUARD_")}
        floor_command = [*netns_prefix(ns), str(BIN / "python"), "-c", FLOOR_PROGRAM]

        floor_popen: list[subprocess.Popen[bytes]] = []

        def start_floor() -> psutil.Process:
            floor_popen.append(spawn("floor", floor_command, floor_env, floor_log))
            return psutil.Process(floor_popen[-1].pid)

        def start_agent() -> psutil.Process:
            agent.start(wait_ready=False)
            assert agent.process is not None
            return psutil.Process(agent.process.pid)

        try:
            for index in range(args.runs):
                try:
                    floor, *floor_ready = timed_start(start_floor, floor_log, FLOOR_READY)
                    process, *agent_ready = timed_start(
                        start_agent, agent.log_file, "agent ready"
                    )
                    if args.documents and index == 0:
                        scanned = drop_documents(folder, args.documents, agent)
                    rounds.append(sample_idle(
                        {"agent": process, "floor": floor}, args.seconds,
                        {"agent": (agent_ready[0], agent_ready[1]),
                         "floor": (floor_ready[0], floor_ready[1])},
                    ))
                finally:
                    agent.stop()
                    while floor_popen:
                        stop_process(floor_popen.pop())
        finally:
            collector.stop()

    names = ", ".join(enabled) or "none"
    follows = " (accounts follows an idle auth log)" if args.accounts_auth_log else ""
    where = f" (in netns {ns})" if ns else ""
    capture = "; capture: true on every outreach rule that can capture" if args.capture else ""
    print(f"detectors enabled: {names}{follows}{where}{capture}; load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.documents:
        print(f"documents: {scanned} scanned from the watched folder before the first round")
    report(rounds, args.seconds)


if __name__ == "__main__":
    main()
