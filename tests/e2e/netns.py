"""A workstation, an intranet and an outside world in network namespaces, for outreach tests.

::

    ws (agent)                       intra (collector, intranet services)
      eth0 198.18.0.2/24  <──veth──>  i0 198.18.0.1/24 (+198.18.0.53 resolver)
      usb0 198.51.100.2/24 <─veth─>  out: m0 198.51.100.1/24 ("the USB modem")
                                       lo 203.0.113.10 (probe responder, web), 198.51.100.53 (DNS)

Every namespace name carries a random suffix so parallel runs cannot
collide; ``close`` deletes them all (which deletes their links too) and the
``/etc/netns/<ws>`` directory used for the workstation's own /etc files.
Nothing here is bridged to the machine's interfaces.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.harness import POLICIES, Agent, Collector

MODEM_MAC = "02:c0:7e:00:00:01"
PROBE_KEY = "e2e-probe-key-0123456789abcdef"


def networks_policy(**changes: Any) -> dict[str, Any]:
    """The shipped networks policy with this topology's lists; ``settings`` and rule changes.

    Keyword arguments named after a rule id update that rule (``response``,
    ``enabled``...); ``settings`` updates the settings block.
    """
    data: dict[str, Any] = yaml.safe_load((POLICIES / "networks.yaml").read_text())
    data["lists"].update(
        court_intranet=["198.18.0.0/15"],
        court_intranet_v6=["fd00:cafe::/48"],
        approved_interfaces=["eth0"],
        approved_gateways=["198.18.0.1"],
        intranet_resolvers=["198.18.0.53"],
        intranet_zones=["court.test"],
        public_canaries=["192.0.2.1"],
        probe_targets=["203.0.113.10"],
    )
    data["settings"]["probe"].update(key=PROBE_KEY, interval_s=5, timeout_s=1)
    data["settings"].update(changes.pop("settings", {}))
    for rule in data["rules"]:
        rule.pop("cases", None)
        rule.update(changes.get(rule["id"], {}))
    return data


def write_policies(directory: Path, **changes: Any) -> Path:
    """A policy directory: the project's other policies and ``networks_policy(**changes)``."""
    directory.mkdir(parents=True, exist_ok=True)
    for shipped in POLICIES.glob("*.yaml"):
        if shipped.name != "networks.yaml":
            (directory / shipped.name).write_text(shipped.read_text())
    (directory / "networks.yaml").write_text(
        yaml.safe_dump(networks_policy(**changes), allow_unicode=True)
    )
    return directory


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=check)


@dataclass
class Topology:
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    background: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def ws(self) -> str:
        return f"cgws-{self.suffix}"

    @property
    def intra(self) -> str:
        return f"cgin-{self.suffix}"

    @property
    def out(self) -> str:
        return f"cgout-{self.suffix}"

    @property
    def etc(self) -> Path:
        return Path("/etc/netns") / self.ws

    def ip(self, netns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "-n", netns, *args, check=check)

    def run(
        self, netns: str, *args: str, check: bool = False, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", netns, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    def spawn(self, netns: str, *args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
        out = log.open("ab") if log is not None else subprocess.DEVNULL
        process = subprocess.Popen(["ip", "netns", "exec", netns, *args], stdout=out, stderr=out)
        self.background.append(process)
        return process

    def create(self) -> None:
        for name in (self.ws, self.intra, self.out):
            sh("ip", "netns", "add", name)
        self.etc.mkdir(parents=True, exist_ok=True)
        for name in (self.ws, self.intra, self.out):
            self.ip(name, "link", "set", "lo", "up")
        sh(
            "ip",
            "link",
            "add",
            "eth0",
            "netns",
            self.ws,
            "type",
            "veth",
            "peer",
            "name",
            "i0",
            "netns",
            self.intra,
        )
        self.ip(self.ws, "addr", "add", "198.18.0.2/24", "dev", "eth0")
        self.ip(self.ws, "link", "set", "eth0", "up")
        self.ip(self.intra, "addr", "add", "198.18.0.1/24", "dev", "i0")
        self.ip(self.intra, "addr", "add", "198.18.0.53/32", "dev", "lo")
        self.ip(self.intra, "link", "set", "i0", "up")
        self.ip(self.ws, "route", "add", "default", "via", "198.18.0.1", "metric", "100")
        self.ip(
            self.intra,
            "route",
            "add",
            "198.18.0.0/15",
            "via",
            "198.18.0.2",
            "metric",
            "200",
            check=False,
        )
        self.ip(self.out, "addr", "add", "203.0.113.10/32", "dev", "lo")
        self.ip(self.out, "addr", "add", "198.51.100.53/32", "dev", "lo")

    def plug_modem(self, route: bool = True) -> None:
        """A USB modem appears: link, carrier-side address, and a better default route."""
        sh(
            "ip",
            "link",
            "add",
            "usb0",
            "netns",
            self.ws,
            "address",
            MODEM_MAC,
            "type",
            "veth",
            "peer",
            "name",
            "m0",
            "netns",
            self.out,
        )
        self.ip(self.out, "addr", "add", "198.51.100.1/24", "dev", "m0")
        self.ip(self.out, "link", "set", "m0", "up")
        self.ip(self.ws, "addr", "add", "198.51.100.2/24", "dev", "usb0")
        self.ip(self.ws, "link", "set", "usb0", "up")
        if route:
            self.ip(self.ws, "route", "add", "default", "via", "198.51.100.1", "metric", "50")

    def unplug_modem(self) -> None:
        self.ip(self.ws, "link", "del", "usb0", check=False)

    def link_state(self, netns: str, name: str) -> str:
        result = self.ip(netns, "-o", "link", "show", name, check=False)
        return "UP" if ",UP" in result.stdout or "<UP" in result.stdout else "DOWN"

    def close(self) -> None:
        for process in self.background:
            if process.poll() is None:
                process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)
            if process.poll() is None:
                process.kill()
                process.wait()
        for name in (self.ws, self.intra, self.out):
            sh("ip", "netns", "del", name, check=False)
        shutil.rmtree(self.etc, ignore_errors=True)


def start_world(
    topology: Topology, home: Path, agent_settings: dict[str, str] | None = None, **changes: Any
) -> tuple[Agent, Collector]:
    """A collector in the intranet namespace (198.18.0.1) and an enrolled agent in the workstation.

    The caller stops both (agent first).
    """
    policies = write_policies(home / "policies", **changes)
    collector = Collector(
        home=home,
        database_url=f"sqlite:///{home / 'collector.db'}",
        netns=topology.intra,
        listen_host="198.18.0.1",
    )
    collector.init()
    collector.start()
    settings = {"policy_dir": str(policies), "detectors__outreach": "true", "hostname": "ws-e2e"}
    settings.update(agent_settings or {})
    agent = Agent(home=home / "ws", collector=collector, netns=topology.ws, settings=settings)
    agent.home.mkdir(exist_ok=True)
    try:
        agent.enroll()
        agent.start()
    except BaseException:
        agent.stop()
        collector.stop()
        raise
    return agent, collector


@contextlib.contextmanager
def scratch_netns(prefix: str = "cgns") -> Iterator[str]:
    """A fresh, empty network namespace with loopback up; deleted afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        sh("ip", "netns", "del", name, check=False)


def require_root() -> None:
    """Skip a namespace test where it cannot run; on CI a missing capability is a failure."""
    import pytest

    reason = root_reason()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"namespace tests must run on CI: {reason}")
    pytest.skip(reason)


def root_reason() -> str | None:
    """Why namespace tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None or shutil.which("nft") is None:
        return "needs iproute2 and nftables"
    return None
