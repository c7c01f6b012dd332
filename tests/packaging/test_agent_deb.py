"""The agent .deb carries its own runtime: installed into a Debian root with no Python, it runs.

A minimal Debian bookworm (``debootstrap --variant=minbase``, cached under
``COURTGUARD_TEST_CACHE``; the test writes to an overlay of it, see debian_root.py)
gets the package with ``dpkg -i`` in a chroot; the
agent is enrolled and run from it (the chroot shares the network namespace, so
the real collector outside listens on loopback), its heartbeat and an
``agent.test`` event arrive; the package is then upgraded in place (an edited
``agent.toml`` is kept, the agent reports the new version) and purged (nothing
of it is left). The one-folder build is made once per source digest and cached
too (while it runs, the Debian root is made beside it); the two versions are packed
from it in seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.events import MAX_CAPTURE_PACKETS
from tests.e2e.harness import (
    Collector,
    policies_watching,
    spawn,
    stop_process,
    tail,
    wait_until,
)
from tests.packaging.debian_root import (
    CACHE,
    Chroot,
    MinbaseUnavailable,
    cached_minbase,
    chroot_env,
    start_minbase_in_background,
)

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "packaging" / "build_agent_deb.py"
BINARY = "/opt/courtguard/agent/courtguard-agent"

pytestmark = [pytest.mark.root, pytest.mark.e2e, pytest.mark.timeout(3600)]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the agent package test must run on CI: {reason}")
    pytest.skip(reason)


def _project_version() -> str:
    sys.path.insert(0, str(BUILD.parent))
    import build_agent_deb

    return build_agent_deb.project_version()


@pytest.fixture(scope="session")
def agent_tree(request: pytest.FixtureRequest) -> Path:
    """The one-folder build, made once per source digest and kept in the cache."""
    if os.geteuid() != 0:
        _unavailable("needs root (dpkg and chroot)")
    if shutil.which("dpkg-deb") is None:
        _unavailable("dpkg-deb is missing (scripts/test.sh installs dpkg-dev)")
    return build_tree(request, CACHE / "agent-onefolder")


def build_tree(request: pytest.FixtureRequest, build_dir: Path) -> Path:
    """The one-folder tree in ``build_dir``; meanwhile the Debian root, if a test wants it."""
    if any("minbase" in getattr(item, "fixturenames", ()) for item in request.session.items):
        start_minbase_in_background()
    return _build(["--build-dir", str(build_dir), "--print-tree"])


@pytest.fixture(scope="session")
def packages(agent_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Release N and N+1 of the package, packed from the one cached build."""
    out = tmp_path_factory.mktemp("debs")
    base = _project_version()
    versions = {"N": base, "N+1": f"{base}.1"}
    return {
        name: _build(["--reuse-build", str(agent_tree), "--version", version, "--out", str(out),
                      "--compress", "gzip"])
        for name, version in versions.items()
    }


def _build(arguments: list[str]) -> Path:
    done = subprocess.run(
        [sys.executable, str(BUILD), *arguments], capture_output=True, text=True,
        timeout=3000, check=False,
    )
    assert done.returncode == 0, tail(done.stdout + done.stderr, 60)
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def minbase() -> Path:
    """A debootstrapped minimal bookworm, made once and kept in the cache."""
    if os.geteuid() != 0:
        _unavailable("needs root (debootstrap)")
    if shutil.which("debootstrap") is None:
        _unavailable("debootstrap is missing (scripts/test.sh installs it)")
    try:
        return cached_minbase()
    except MinbaseUnavailable as exc:
        _unavailable(str(exc))
        raise


@pytest.fixture
def chroot(minbase: Path, tmp_path: Path) -> Iterator[Chroot]:
    root = Chroot(minbase, tmp_path / "root")
    try:
        yield root
    finally:
        root.close()


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    instance = Collector(home=tmp_path / "collector-home",
                         database_url=f"sqlite:///{tmp_path / 'collector.db'}")
    instance.home.mkdir()
    instance.init()
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


#: Test pacing, as the e2e harness gives its agents; the outreach detector stays off
#: because it would install its nftables table in the host's namespace.
TEST_CONFIG = """
heartbeat_interval_s = 1
batch_max_age_s = 0.2
backoff_initial_s = 0.2
backoff_max_s = 1
drain_start_jitter_s = 0
log_format = "json"

[detectors]
outreach = false
"""


@contextlib.contextmanager
def running_agent(root: Chroot, log_file: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The packaged agent started in the chroot as systemd would: until it says READY=1."""
    notify_path = root.root / "run" / "cg-notify"
    notify_path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    env = {**chroot_env(), "NOTIFY_SOCKET": "/run/cg-notify"}
    process = spawn("packaged agent", ["chroot", str(root.root), BINARY, "run"], env, log_file)
    try:
        exited = os.pidfd_open(process.pid)
        try:
            while True:
                readable, _, _ = select.select([sock, exited], [], [], 600)
                assert readable, "the packaged agent neither got ready nor exited in 600 s"
                if exited in readable:
                    raise AssertionError(f"the packaged agent exited with {process.wait()}:\n"
                                         f"{tail(log_file.read_text(errors='replace'))}")
                if "READY=1" in sock.recv(4096).decode(errors="replace").splitlines():
                    break
        finally:
            os.close(exited)
            sock.close()
        yield process
    finally:
        stop_process(process, signal.SIGTERM)
        notify_path.unlink(missing_ok=True)


def test_package_installs_runs_upgrades_and_purges_in_a_root_without_python(
    packages: dict[str, Path], chroot: Chroot, collector: Collector, tmp_path: Path,
) -> None:
    root = chroot.root
    assert not list(root.glob("usr/bin/python*")), "the minimal root must have no Python"
    assert not list(root.glob("usr/lib/python3*"))

    # -- install --
    for deb in packages.values():
        shutil.copy(deb, root / "tmp" / deb.name)
    installed = chroot.run("dpkg", "-i", f"/tmp/{packages['N'].name}")
    # Not enrolled, not preseeded: the unit's conditions skip it and the admin is told.
    assert "尚未注册" in installed.stdout and "courtguard-agent enroll" in installed.stdout
    assert not list(root.glob("usr/bin/python*")), "the package must not pull in a Python"
    assert (root / "var/lib/courtguard").stat().st_mode & 0o777 == 0o700
    assert (root / "etc/courtguard").stat().st_mode & 0o777 == 0o755
    assert (root / "etc/courtguard/agent.toml").stat().st_mode & 0o777 == 0o640
    assert (root / "etc/systemd/system/multi-user.target.wants/courtguard-agent.service"
            ).is_symlink(), "the unit is enabled for the next boot"
    unit = (root / "lib/systemd/system/courtguard-agent.service").read_text()
    assert f"ExecStart={BINARY} run" in unit
    base = _project_version()
    assert chroot.run("courtguard-agent", "--help").returncode == 0
    # A settings mistake names the commented example the package installed.
    example = "/usr/share/doc/courtguard-agent/examples/agent.toml"
    assert (root / example.lstrip("/")).read_text(encoding="utf-8") == (
        REPO / "packaging/examples/agent.toml").read_text(encoding="utf-8")
    (root / "tmp/bad.toml").write_text("heartbeat_interval_s = -1\nno_such_setting = 1\n")
    bad = chroot.run("courtguard-agent", "run", "--config", "/tmp/bad.toml", check=False)
    assert bad.returncode == 2 and example in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr

    # Heavy children run from the frozen executable, not from a python that is not there.
    document = root / "tmp" / "判决书.txt"
    document.write_text("民事判决书\n被告钱某的手机号码13812345678。\n", encoding="utf-8")
    child = chroot.run(BINARY, "--courtguard-run-module",
                       "agent.detectors.documents.checker.child", "/tmp/判决书.txt", "1000000")
    assert "13812345678" in json.loads(child.stdout)["parts"][0]["text"]
    # Programs the agent runs load the system's libraries, not the package's copies.
    converter = root / "usr/local/bin/antiword"
    converter.write_text('#!/bin/sh\necho "library path [${LD_LIBRARY_PATH-unset}]"\n')
    converter.chmod(0o755)
    (root / "tmp/old.doc").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    legacy = chroot.run(BINARY, "--courtguard-run-module",
                        "agent.detectors.documents.checker.child", "/tmp/old.doc", "1000000")
    assert "library path [unset]" in json.loads(legacy.stdout)["parts"][0]["text"], legacy.stdout
    converter.unlink()
    # The largest packet bound: the host's loopback, shared with whatever else runs on the
    # machine, can carry the default 1000 packets in less than the duration.
    capture = chroot.run(BINARY, "--courtguard-run-module", "agent.evidence.capture",
                         json.dumps({"interface": "lo", "duration_s": 0.5,
                                     "max_packets": MAX_CAPTURE_PACKETS}), "/tmp/lo.pcap")
    assert json.loads(capture.stdout.splitlines()[-1])["stopped_by"] == "duration"
    assert (root / "tmp/lo.pcap").read_bytes()[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4")
    # scan's worker pool is spawned multiprocessing: the frozen entry runs the workers too.
    scanned = chroot.run("courtguard-agent", "scan", "--jobs", "2", "--json", "/tmp/判决书.txt",
                         check=False)
    assert scanned.returncode == 1, scanned.stdout + scanned.stderr
    assert "documents.mobile-phone" in scanned.stdout

    # -- enroll and run against the real collector outside the chroot --
    config = root / "etc/courtguard/agent.toml"
    config.write_text(config.read_text() + TEST_CONFIG)
    shutil.copy(collector.ca_file, root / "etc/courtguard/ca.pem")
    token = collector.create_token()
    chroot.run("courtguard-agent", "enroll", "--collector", collector.url, "--token", token,
               "--ca", "/etc/courtguard/ca.pem")
    agent_id = json.loads((root / "var/lib/courtguard/credentials.json").read_text())["agent_id"]
    chroot.run("courtguard-agent", "emit-test", "--note", "packaged")
    # The running agent's own extraction child (a frozen executable started by the frozen
    # agent) checks a document dropped into a watched publication folder.
    (root / "srv/publish").mkdir(parents=True)
    policies_watching(root / "etc/courtguard/policies", [Path("/srv/publish")])
    with running_agent(chroot, tmp_path / "agent-N.log"):
        row = collector.wait_online(agent_id, timeout=30)
        assert row["agent_version"] == base
        wait_until(lambda: collector.events(agent_id=agent_id, kind="agent.test"), 30,
                   "the packaged agent's agent.test event")
        shutil.copy(document, root / "srv/publish/判决书.txt")

        def document_events() -> list[dict[str, object]]:
            return [e for e in collector.events(agent_id=agent_id)
                    if str(e["kind"]).startswith("document.")]

        wait_until(document_events, 60, "the packaged agent's document finding")
        found = document_events()
        assert "document.unreadable" not in {e["kind"] for e in found}, found
        assert "documents.mobile-phone" in {e["rule_id"] for e in found}, found

    # -- upgrade in place: the edited configuration is kept, the new version reports --
    upgraded = chroot.run("dpkg", "-i", f"/tmp/{packages['N+1'].name}")
    assert "尚未注册" not in upgraded.stdout, "an enrolled agent is not told to enroll"
    assert config.read_text().endswith(TEST_CONFIG), "dpkg replaced the edited agent.toml"
    status = chroot.run("dpkg-query", "-W", "-f=${Version}", "courtguard-agent").stdout
    assert status == f"{base}.1"
    with running_agent(chroot, tmp_path / "agent-N+1.log"):
        wait_until(
            lambda: (collector.agent_row(agent_id) or {}).get("agent_version") == f"{base}.1",
            30, "the upgraded agent reporting its new version",
        )

    # -- purge removes everything the package and the agent made --
    chroot.run("dpkg", "--purge", "courtguard-agent")
    for left in ("opt/courtguard", "etc/courtguard", "var/lib/courtguard",
                 "usr/bin/courtguard-agent", "lib/systemd/system/courtguard-agent.service",
                 "etc/systemd/system/multi-user.target.wants/courtguard-agent.service"):
        assert not (root / left).exists() and not (root / left).is_symlink(), left


def test_preseeded_package_ships_enroll_toml_for_root_only(
    agent_tree: Path, tmp_path: Path,
) -> None:
    """--preseed puts the file at /etc/courtguard/enroll.toml, mode 0600, kept as a conffile."""
    preseed = tmp_path / "enroll.toml"
    preseed.write_text('collector = "https://198.18.0.10:8443"\ntoken = "group-token"\n')
    deb = _build(["--reuse-build", str(agent_tree), "--out", str(tmp_path / "out"),
                  "--preseed", str(preseed), "--compress", "none"])
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True,
                             check=True).stdout
    line = next(x for x in listing.splitlines() if x.endswith("./etc/courtguard/enroll.toml"))
    assert line.startswith("-rw------- root/root"), line
    unpacked = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", str(deb), str(unpacked)], check=True)
    assert "/etc/courtguard/enroll.toml" in (unpacked / "conffiles").read_text().split()
    bad = subprocess.run([sys.executable, str(BUILD), "--reuse-build", str(agent_tree),
                          "--version", "1.0~rc1"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "1.2.3" in bad.stderr and "Traceback" not in bad.stderr
