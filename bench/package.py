"""The agent package: its size, and the packaged agent's idle footprint beside the virtualenv's.

Builds (or reuses, by source digest) the PyInstaller one-folder tree, packs
the .deb as shipped (xz), and reports its size and ``Installed-Size``. Then
unpacks the package (``dpkg-deb -x``: the files as ``dpkg -i`` lays them) and
starts, side by side against one real collector (SQLite, HTTPS, loopback),
the packaged agent from that tree and the same agent from this checkout's
virtualenv, both enrolled, at the product's pacing, with the detectors that
do not change the host. It samples both once a second for ``--seconds`` (60
by default) from ready + 5 s: CPU in % of one core and the median RSS; the
ratios packaged / virtualenv are the figures (both see the same load).

    .venv/bin/python bench/package.py [--seconds 60] [--build-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.agent_footprint import SETTLE_S, cpu_seconds, sample_idle
from tests.e2e.harness import (
    Agent,
    Collector,
    NotifySocket,
    product_pacing,
    spawn,
    stop_process,
)

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "packaging" / "build_agent_deb.py"
RSS_BUDGET_MB = 80
CPU_BUDGET_PERCENT = 0.5


@dataclass
class PackagedAgent(Agent):
    """The same agent, run from the unpacked package's executable instead of the virtualenv."""

    binary: Path = Path("/opt/courtguard/agent/courtguard-agent")

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.binary), *args], env=self.env(), capture_output=True,
                              text=True, timeout=120, check=check)

    def start(self, wait_ready: bool = True, ready_ceiling: float = 300.0) -> None:
        notify = NotifySocket()
        try:
            env = {**self.env(), "NOTIFY_SOCKET": str(notify.path)}
            self.process = spawn("packaged agent", [str(self.binary), "run"], env, self.log_file)
            notify.wait_ready(self.process, "packaged agent", self.log, ready_ceiling)
        except BaseException:
            self.stop(signal.SIGKILL)
            raise
        finally:
            notify.close()


def build(arguments: list[str]) -> Path:
    done = subprocess.run([sys.executable, str(BUILD), *arguments], capture_output=True,
                          text=True, timeout=3600, check=False)
    if done.returncode != 0:
        sys.exit(f"build failed:\n{done.stderr[-3000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def installed_size_kib(deb: Path) -> int:
    return int(subprocess.run(["dpkg-deb", "-f", str(deb), "Installed-Size"],
                              capture_output=True, text=True, check=True).stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--build-dir", type=Path, default=REPO / "build" / "agent-onefolder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cg-bench-package-") as scratch:
        work = Path(scratch)
        tree = build(["--build-dir", str(args.build_dir), "--print-tree"])
        deb = build(["--reuse-build", str(tree), "--out", str(work / "deb")])
        size, installed = deb.stat().st_size, installed_size_kib(deb) * 1024
        subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "installed")], check=True)

        collector = Collector(home=work / "collector", database_url=f"sqlite:///{work}/c.db")
        collector.home.mkdir()
        pacing = {**product_pacing(), "detectors__outreach": "false"}
        venv_agent = Agent(home=work / "venv", collector=collector, settings=dict(pacing))
        packaged = PackagedAgent(home=work / "packaged", collector=collector,
                                 settings=dict(pacing),
                                 binary=work / "installed/opt/courtguard/agent/courtguard-agent")
        agents: dict[str, Agent] = {"virtualenv": venv_agent, "packaged": packaged}
        collector.init()
        collector.start()
        try:
            for agent in agents.values():
                agent.home.mkdir()
                agent.enroll()
                agent.start()
            processes = {name: psutil.Process(a.process.pid)  # type: ignore[union-attr]  # started just above, so process is set
                         for name, a in agents.items()}
            ready = {name: (0.0, cpu_seconds(p)) for name, p in processes.items()}
            figures = sample_idle(processes, SETTLE_S + args.seconds, ready)
        finally:
            for agent in agents.values():
                if agent.process is not None:
                    stop_process(agent.process)
            collector.stop()

    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    print(f"package        {deb.name}: {size} bytes ({size / 2**20:.1f} MiB), "
          f"installed {installed} bytes ({installed / 2**20:.1f} MiB)")
    venv_figures, packaged_figures = figures["virtualenv"], figures["packaged"]
    for name, sampled in figures.items():
        print(f"{name:<14} idle RSS {sampled.rss_mb:6.1f} MB (budget {RSS_BUDGET_MB}), "
              f"CPU {sampled.cpu_settled:5.2f} % of a core from ready+{SETTLE_S:.0f}s "
              f"over {args.seconds:.0f}s (budget {CPU_BUDGET_PERCENT})")
    rss_ratio = packaged_figures.rss_mb / venv_figures.rss_mb if venv_figures.rss_mb else 0.0
    cpu_ratio = (packaged_figures.cpu_settled / venv_figures.cpu_settled
                 if venv_figures.cpu_settled else float("nan"))
    print(f"ratio packaged/virtualenv: RSS {rss_ratio:.2f}, CPU {cpu_ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
