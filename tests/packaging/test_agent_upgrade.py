"""End-to-end signed upgrades with the real package, real dpkg, a real root and a real collector.

Two workstations are two writable views of the cached minimal Debian root (no Python:
the agent runs from its package; tests/packaging/debian_root.py), each with release N
installed by ``dpkg -i`` and enrolled, agent ``ws-canary`` in group ``canary`` and
``ws-court`` in group ``court``. No systemd runs here, so each agent runs under a supervisor thread
that starts it again whenever it exits, as the unit's ``Restart=always`` does:
the upgrader's restart path is the one production takes without systemd
(SIGTERM to ``releases/agent.pid``; docs/upgrades.md). In order:

1. N is published to all (the way back), N+1 to ``canary``: the canary agent
   installs N+1 through its detached upgrader and reports it; ``ws-court`` stays
   on N until ``release promote``, then follows;
2. N+2, whose agent exits at start (the package's binary replaced by a script
   that exits 1), is published to all: each upgrader installs it, sees no
   healthy N+2 within the timeout, installs N+1 again; the restored agents
   report ``agent.upgrade_failed`` (``not_healthy``, rolled back) and
   ``GET /api/v1/agents`` shows the failure; ``release status`` counts it;
3. ``release rollback`` twice takes ``canary``'s target down to N: the canary
   agent, on N+1, refuses the older package (``older_version``);
4. the collector's signing key is replaced (as a compromised or rebuilt
   collector would) and a tampered N+3 (changed bytes) published with it: both
   agents refuse it (``bad_signature``) and stay on N+1.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Collector, load_scale, tail, wait_until
from tests.packaging.debian_root import CACHE, Chroot, chroot_env
from tests.packaging.test_agent_deb import (
    BINARY,
    TEST_CONFIG,
    _build,
    _project_version,
    _unavailable,
    build_tree,
    collector,  # noqa: F401 (a fixture)
    minbase,  # noqa: F401 (a fixture)
)

pytestmark = [pytest.mark.root, pytest.mark.e2e, pytest.mark.timeout(3600)]
#: The one-folder build to pack the releases from (the packaging test's cache by default).
BUILD_DIR = Path(os.environ.get("COURTGUARD_TEST_AGENT_BUILD_DIR", CACHE / "agent-onefolder"))


@pytest.fixture(scope="module")
def releases(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """N, N+1, N+2 (broken: its agent exits at start) and a tampered N+3."""
    if os.geteuid() != 0:
        _unavailable("needs root (dpkg and chroot)")
    if shutil.which("dpkg-deb") is None:
        _unavailable("dpkg-deb is missing (scripts/test.sh installs dpkg-dev)")
    tree = build_tree(request, BUILD_DIR)
    out = tmp_path_factory.mktemp("releases")
    base = _project_version()
    made = {name: _build(["--reuse-build", str(tree), "--version", version, "--out",
                          str(out / name), "--compress", "gzip"])
            for name, version in (("N", base), ("N+1", f"{base}.1"), ("N+2", f"{base}.2"),
                                  ("N+3", f"{base}.3"))}
    made["N+2"] = _repack(made["N+2"], out / "broken", _break_binary)
    made["N+3"] = _repack(made["N+3"], out / "tampered", _tamper)
    return made


def _break_binary(root: Path) -> None:
    binary = root / BINARY.lstrip("/")
    binary.write_text("#!/bin/sh\necho 'courtguard-agent: broken on purpose' >&2\nexit 1\n")
    binary.chmod(0o755)


def _tamper(root: Path) -> None:
    notice = root / "opt/courtguard/agent/TAMPERED"
    notice.write_text("bytes the collector's owner never signed\n")


def _repack(package: Path, work: Path, change: Any) -> Path:
    """The package with ``change`` made to its files, packed again by real dpkg-deb."""
    work.mkdir(parents=True)
    tree = work / "tree"
    subprocess.run(["dpkg-deb", "-R", str(package), str(tree)], check=True, timeout=600)
    change(tree)
    out = work / package.name
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(out)],
                   check=True, capture_output=True, timeout=600)
    return out


def _processes_in(root: Path) -> list[int]:
    """Pids of the processes whose root directory is ``root`` (started in that chroot)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(entry / "root") == str(root):
                    found.append(int(entry.name))
    return found


class Workstation:
    """A root with the package installed and its agent under a restarting supervisor."""

    def __init__(self, chroot: Chroot, name: str, log_file: Path) -> None:
        self.chroot, self.name, self.log_file = chroot, name, log_file
        self.agent_id = ""
        self.starts = 0
        self._stop = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._supervise, name=name, daemon=True)

    def _supervise(self) -> None:
        while not self._stop.is_set():
            with self.log_file.open("ab") as log:
                self._process = subprocess.Popen(
                    ["chroot", str(self.chroot.root), BINARY, "run"], env=chroot_env(),
                    stdout=log, stderr=log)
            self.starts += 1
            self._process.wait()
            self._stop.wait(1.0)  # RestartSec

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(30)
        self._thread.join(60)
        # An upgrader this test's agent started in the root (a failed test) must not outlive it.
        for pid in _processes_in(self.chroot.root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def installed(self) -> str:
        return self.chroot.run("dpkg-query", "-W", "-f=${Version}", "courtguard-agent").stdout

    def log(self) -> str:
        return tail(self.log_file.read_text(errors="replace"), 60)


@pytest.fixture
def workstations(minbase: Path, tmp_path: Path, releases: dict[str, Path],  # noqa: F811 (the fixture)
                 collector: Collector) -> Iterator[dict[str, Workstation]]:  # noqa: F811 (the imported fixture, by name)
    made: dict[str, Workstation] = {}
    roots: list[Chroot] = []
    try:
        for name, group in (("ws-canary", "canary"), ("ws-court", "court")):
            root = Chroot(minbase, tmp_path / name)
            roots.append(root)
            for deb in releases.values():
                shutil.copy(deb, root.root / "tmp" / f"{deb.parent.name}-{deb.name}")
            shutil.copy(releases["N"], root.root / "tmp/N.deb")
            root.run("dpkg", "-i", "/tmp/N.deb")
            config = root.root / "etc/courtguard/agent.toml"
            # Long enough for a frozen agent to start on a loaded machine, short enough
            # that the broken release is given up within the test.
            timeout = min(30 * load_scale(), 300)
            config.write_text(config.read_text() + f'\nhostname = "{name}"\n'
                              f"upgrade_health_timeout_s = {timeout:.0f}\n" + TEST_CONFIG)
            shutil.copy(collector.ca_file, root.root / "etc/courtguard/ca.pem")
            root.run("courtguard-agent", "enroll", "--collector", collector.url, "--token",
                     collector.create_token("--group", group), "--ca", "/etc/courtguard/ca.pem")
            station = Workstation(root, name, tmp_path / f"{name}.log")
            station.agent_id = json.loads(
                (root.root / "var/lib/courtguard/credentials.json").read_text())["agent_id"]
            made[name] = station
            station.start()
        yield made
    finally:
        for station in made.values():
            station.stop()
        for root in roots:
            root.close()


def _version(collector: Collector, station: Workstation) -> str | None:  # noqa: F811 (the imported fixture, by name)
    row = collector.agent_row(station.agent_id)
    return None if row is None else row.get("agent_version")


def _on(collector: Collector, station: Workstation, version: str, what: str) -> None:  # noqa: F811 (the imported fixture, by name)
    try:
        wait_until(lambda: _version(collector, station) == version, 300, what, every=0.5)
    except BaseException:
        print(station.log())
        upgrader = station.chroot.root / "var/lib/courtguard/releases/upgrader.log"
        if upgrader.exists():
            print(tail(upgrader.read_text(errors="replace")))
        raise


def _failures(collector: Collector, station: Workstation, code: str) -> list[dict[str, Any]]:  # noqa: F811 (the imported fixture, by name)
    return [e for e in collector.events(agent_id=station.agent_id, kind="agent.upgrade_failed")
            if e["evidence"]["reason_code"] == code]


def _status(collector: Collector, version: str) -> dict[str, Any]:  # noqa: F811 (the imported fixture, by name)
    for entry in collector.api("/api/v1/releases")["versions"]:
        if entry["version"] == version:
            return dict(entry)
    raise AssertionError(f"{version} not in release status")


def test_signed_upgrade_canary_promote_rollback_and_refusals(
    releases: dict[str, Path], workstations: dict[str, Workstation],
    collector: Collector,  # noqa: F811 (the imported fixture, by name)
) -> None:
    canary, court = workstations["ws-canary"], workstations["ws-court"]
    base = _project_version()
    n, n1, n2 = base, f"{base}.1", f"{base}.2"
    for station in (canary, court):
        _on(collector, station, n, f"{station.name} running N from its package")

    # 1. canary first, then promote
    collector.cli("release", "publish", str(releases["N"]))
    collector.cli("release", "publish", str(releases["N+1"]), "--group", "canary")
    _on(collector, canary, n1, "the canary agent on N+1")
    assert canary.installed() == n1
    assert _version(collector, court) == n and court.installed() == n
    status = _status(collector, n1)
    assert (status["target_groups"], status["installed"]) == (["canary"], 1)
    collector.cli("release", "promote", n1)
    _on(collector, court, n1, "the other agent on N+1 after promote")
    assert court.installed() == n1

    # 2. a broken N+2 is installed, found unhealthy, rolled back and reported
    collector.cli("release", "publish", str(releases["N+2"]))
    for station in (canary, court):
        wait_until(lambda s=station: _failures(collector, s, "not_healthy"), 600,
                   f"{station.name} reporting the failed N+2")
        failure = _failures(collector, station, "not_healthy")[0]
        assert failure["evidence"]["version"] == n2 and failure["evidence"]["rolled_back"]
        assert "升级至" in failure["summary"] and failure["severity"] == "high"
        _on(collector, station, n1, f"{station.name} back on N+1")
        assert station.installed() == n1
        # The report reaches /api/v1/release/report on its own request, beside the event.
        wait_until(lambda s=station: ((collector.agent_row(s.agent_id) or {}).get(
            "upgrade_failed") or {}).get("version") == n2, 120,
            f"{station.name} listed with the failed N+2")
    wait_until(lambda: _status(collector, n2)["failed"] == 2, 120,
               "release status counting both failed upgrades to N+2")

    # 3. a rollback never downgrades: the canary agent refuses the older N
    collector.cli("release", "rollback")
    collector.cli("release", "rollback", "--group", "canary")
    wait_until(lambda: _failures(collector, canary, "older_version"), 300,
               "the canary agent refusing the older package")
    assert canary.installed() == n1 and _version(collector, canary) == n1

    # 4. a package signed with another key (tampered bytes) is refused by both
    collector.stop()
    key = collector.data_dir / "policy-signing.key"
    key.unlink()
    subprocess.run(["sqlite3", collector.database_url.removeprefix("sqlite:///"),
                    "DELETE FROM policy_keys"], check=True)
    collector.cli("init")  # a new key: what a rebuilt or compromised collector signs with
    collector.start()
    collector.cli("release", "publish", str(releases["N+3"]))
    for station in (canary, court):
        wait_until(lambda s=station: _failures(collector, s, "bad_signature"), 300,
                   f"{station.name} refusing the package signed with another key")
        assert station.installed() == n1
    assert _status(collector, f"{base}.3")["refused"] == 2
