"""A workstation, an intranet and an outside world in network namespaces, for outreach tests.

::

    ws (agent)                         intra (collector, intranet services)
      eth0 198.18.N.2/24  <──veth──>    iN 198.18.N.1/24; lo 198.18.0.1 (collector,
                                        web), 198.18.0.53 (resolver)
      usb0 198.51.100.2/24 <──veth──>  out: m0 198.51.100.1/24 ("the USB modem")
                                        lo 203.0.113.10 (probe responder, web), 198.51.100.53

The intranet (``Intranet``: namespace and collector) can be shared by the
tests of a module, each with its own workstation and outside namespaces
linked to it on a subnet of their own (``N``). Every namespace name carries a
random suffix so parallel runs cannot collide; ``close`` deletes what it made
(which deletes their links too) and the ``/etc/netns/<ws>`` directory used for
the workstation's own /etc files. Nothing here is bridged to the machine's
interfaces.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.harness import POLICIES, Agent, Collector

MODEM_MAC = "02:c0:7e:00:00:01"
PROBE_KEY = "e2e-probe-key-0123456789abcdef"
#: The networks policy's default ``settings.hold_queue``.
HOLD_QUEUE = "4790"


def networks_policy(gateway: str = "198.18.1.1", **changes: Any) -> dict[str, Any]:
    """The shipped networks policy with this topology's lists; ``settings`` and rule changes.

    Keyword arguments named after a rule id update that rule (``response``,
    ``enabled``...); ``settings`` updates the settings block, ``lists`` adds lists.
    """
    data: dict[str, Any] = yaml.safe_load((POLICIES / "networks.yaml").read_text())
    data["lists"].update(
        court_intranet=["198.18.0.0/15"],
        court_intranet_v6=["fd00:cafe::/48"],
        approved_interfaces=["eth0"],
        approved_gateways=[gateway],
        intranet_resolvers=["198.18.0.53"],
        intranet_zones=["court.test"],
        public_canaries=["192.0.2.1"],
        probe_targets=["203.0.113.10"],
    )
    data["settings"]["probe"].update(key=PROBE_KEY, interval_s=5, timeout_s=1)
    data["lists"].update(changes.pop("lists", {}))
    data["settings"].update(changes.pop("settings", {}))
    for rule in data["rules"]:
        rule.pop("cases", None)
        rule.update(changes.get(rule["id"], {}))
    return data


def write_policies(directory: Path, gateway: str = "198.18.1.1", **changes: Any) -> Path:
    """A policy directory: the project's other policies and ``networks_policy(...)``."""
    directory.mkdir(parents=True, exist_ok=True)
    for shipped in POLICIES.glob("*.yaml"):
        if shipped.name != "networks.yaml":
            (directory / shipped.name).write_text(shipped.read_text())
    (directory / "networks.yaml").write_text(
        yaml.safe_dump(networks_policy(gateway, **changes), allow_unicode=True)
    )
    return directory


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=check)


COLLECTOR_ADDRESS = "198.18.0.1"


@dataclass
class Intranet:
    """The intranet namespace and its collector (on 198.18.0.1), shareable by several tests."""

    home: Path
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    collector: Collector | None = None
    links: int = 0

    @property
    def netns(self) -> str:
        return f"cgin-{self.suffix}"

    def create(self) -> None:
        sh("ip", "netns", "add", self.netns)
        sh("ip", "-n", self.netns, "link", "set", "lo", "up")
        for address in (f"{COLLECTOR_ADDRESS}/32", "198.18.0.53/32"):
            sh("ip", "-n", self.netns, "addr", "add", address, "dev", "lo")

    def start_collector(self) -> Collector:
        self.collector = Collector(
            home=self.home,
            database_url=f"sqlite:///{self.home / 'collector.db'}",
            netns=self.netns,
            listen_host=COLLECTOR_ADDRESS,
        )
        self.collector.init()
        self.collector.start()
        return self.collector

    def next_subnet(self) -> int:
        self.links += 1
        return self.links

    def close(self) -> None:
        if self.collector is not None:
            self.collector.stop()
        sh("ip", "netns", "del", self.netns, check=False)


@dataclass
class Topology:
    """One workstation and one outside world, linked to an intranet (its own unless given)."""

    intranet: Intranet | None = None
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    background: list[subprocess.Popen[bytes]] = field(default_factory=list)
    subnet: int = 1
    own_intranet: bool = False

    @property
    def ws(self) -> str:
        return f"cgws-{self.suffix}"

    @property
    def intra(self) -> str:
        assert self.intranet is not None
        return self.intranet.netns

    @property
    def out(self) -> str:
        return f"cgout-{self.suffix}"

    @property
    def gateway(self) -> str:
        return f"198.18.{self.subnet}.1"

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
        if self.intranet is None:
            self.intranet = Intranet(Path("."), suffix=self.suffix)  # home set by start_world
            self.intranet.create()
            self.own_intranet = True
        self.subnet = self.intranet.next_subnet()
        for name in (self.ws, self.out):
            sh("ip", "netns", "add", name)
            self.ip(name, "link", "set", "lo", "up")
        self.etc.mkdir(parents=True, exist_ok=True)
        peer = f"i{self.suffix}"
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
            peer,
            "netns",
            self.intra,
        )
        self.ip(self.ws, "addr", "add", f"198.18.{self.subnet}.2/24", "dev", "eth0")
        self.ip(self.ws, "link", "set", "eth0", "up")
        self.ip(self.intra, "addr", "add", f"{self.gateway}/24", "dev", peer)
        self.ip(self.intra, "link", "set", peer, "up")
        self.ip(self.ws, "route", "add", "default", "via", self.gateway, "metric", "100")
        # The intranet's own route, as on a real workstation: a modem's better default
        # route must not take the path to the collector with it.
        self.ip(self.ws, "route", "add", "198.18.0.0/15", "via", self.gateway)
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
        for name in (self.ws, self.out):
            sh("ip", "netns", "del", name, check=False)
        shutil.rmtree(self.etc, ignore_errors=True)
        if self.own_intranet and self.intranet is not None:
            self.intranet.close()


def start_world(
    topology: Topology,
    home: Path,
    agent_settings: dict[str, str] | None = None,
    group: str | None = None,
    **changes: Any,
) -> tuple[Agent, Collector]:
    """An enrolled agent in the workstation (in ``group`` if given), reporting to the
    intranet's collector.

    The intranet's collector is started here if it is not running yet. The
    caller stops the agent; the intranet stops its collector when closed.
    """
    intranet = topology.intranet
    assert intranet is not None
    if intranet.collector is None:
        intranet.home = home
    collector = intranet.collector or intranet.start_collector()
    policies = write_policies(home / "policies", topology.gateway, **changes)
    settings = {"policy_dir": str(policies), "detectors__outreach": "true", "hostname": "ws-e2e"}
    settings.update(agent_settings or {})
    agent = Agent(home=home / "ws", collector=collector, netns=topology.ws, settings=settings)
    agent.home.mkdir(parents=True, exist_ok=True)
    try:
        agent.enroll(*(("--group", group) if group else ()))
        agent.start()
    except BaseException:
        agent.stop()
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


def publish_block(collector: Collector, directory: Path, group: str, block: bool) -> float:
    """Publish the shipped policies to ``group``, flow-outside blocking or not.

    Returns when the bundle was made (its ``created_at``, as ``time.time()``
    seconds), not when the command returned: the agent may have applied it
    before the publishing process has exited. The shipped lists, not the
    topology's: publishing runs every rule's cases, which are written for
    them. The collector's address is allowed whatever the lists say.
    """
    shutil.copytree(POLICIES, directory)
    networks = yaml.safe_load((directory / "networks.yaml").read_text())
    for rule in networks["rules"]:
        if rule["id"] == "outreach.flow-outside":
            rule["response"] = "block" if block else "report"
    (directory / "networks.yaml").write_text(yaml.safe_dump(networks, allow_unicode=True))
    collector.cli("policy", "publish", str(directory), "--group", group, "--note", "e2e",
                  "--author", "e2e")
    (created,) = collector.query(
        'SELECT created_at FROM policy_bundles WHERE "group" = :group '
        "ORDER BY version DESC LIMIT 1",
        group=group,
    )[0]
    if isinstance(created, str):
        created = datetime.fromisoformat(created)
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return float(created.timestamp())


def queue_bound(topology: Topology) -> bool:
    """Whether a process is bound to the hold queue in the workstation (its portid is not 0)."""
    text = topology.run(topology.ws, "cat", "/proc/net/netfilter/nfnetlink_queue").stdout
    return any(
        line.split()[:1] == [HOLD_QUEUE] and line.split()[1] != "0" for line in text.splitlines()
    )


def holding(topology: Topology) -> bool:
    """The agent is bound to the queue and its table's ``hold`` chain has the queue rule."""
    chain = topology.run(topology.ws, "nft", "-j", "list", "chain", "inet", "courtguard", "hold")
    return queue_bound(topology) and '"NFQUEUE"' in chain.stdout
