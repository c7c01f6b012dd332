"""The detached upgrader on a machine without systemd: it installs, restarts the agent through
its supervisor (SIGTERM; the supervisor starts the installed version, as Restart=always
does), waits for the new version's health file, and goes back to the previous package when
the new version does not start or does not install. Started exactly as the agent starts it
(``spawn_upgrader``: a new session) so it outlives the agent it restarts."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.upgrade import state
from agent.upgrade.client import spawn_upgrader, upgrader_command
from agent.upgrade.deb import read_control
from agent.upgrade.upgrader import UpgradePlan, systemd_running
from tests.agent.upgrade.debs import make_deb
from tests.e2e.harness import load_scale, wait_until

FAKE = Path(__file__).with_name("fake_system.py")
REPO = Path(__file__).resolve().parents[3]
#: How long a started version has to say it is ready, on a quiet machine.
HEALTH_S = 10.0


class Supervisor:
    """Runs the agent and starts it again whenever it exits, like systemd's Restart=always."""

    def __init__(self, system: Path, data_dir: Path) -> None:
        self.argv = [sys.executable, str(FAKE), "agent", str(system), str(data_dir)]
        self.starts = 0
        self.exits: list[int] = []
        self._stop = threading.Event()
        self.process: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.process = subprocess.Popen(self.argv, cwd=REPO)
            self.starts += 1
            self.exits.append(self.process.wait())
            self._stop.wait(0.2)  # RestartSec

    def __enter__(self) -> Supervisor:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
        self._thread.join(timeout=30)


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[tuple[Path, Path, Supervisor]]:
    if systemd_running():
        pytest.skip("systemd runs here: the upgrader would restart the real unit")
    system, data_dir = tmp_path / "system", tmp_path / "data"
    system.mkdir()
    data_dir.mkdir()
    n1 = tmp_path / "n1.deb"
    n1.write_bytes(make_deb("0.14.0", payload=b"ok"))
    assert subprocess.run([sys.executable, str(FAKE), "install", str(system), str(n1)],
                          cwd=REPO, check=False).returncode == 0
    with Supervisor(system, data_dir) as supervisor:
        wait_until(lambda: _running(data_dir) == "0.14.0", 60, "the agent on 0.14.0")
        yield system, data_dir, supervisor


def _running(data_dir: Path) -> str | None:
    found = state.read_json(data_dir / "releases" / "running.json")
    return None if found is None else str(found["version"])


def _upgrade(tmp_path: Path, data_dir: Path, version: str, payload: bytes) -> dict[str, Any]:
    plan = UpgradePlan(data_dir, (sys.executable, str(FAKE), "install",
                                  str(tmp_path / "system")), "courtguard-agent.service",
                        HEALTH_S * load_scale())
    package = state.releases_dir(data_dir) / "new.deb"
    package.write_bytes(make_deb(version, payload=payload))
    rollback = state.releases_dir(data_dir) / "old.deb"
    rollback.write_bytes(make_deb("0.14.0", payload=b"ok"))
    command = upgrader_command(plan, package, rollback, version, "0.14.0", "ab" * 32)
    spawn_upgrader(command, version, data_dir / "releases" / "upgrader.log")
    result = state.result_path(data_dir)

    def finished() -> dict[str, Any] | None:
        found = state.read_json(result)
        return found if found is not None and found["state"] != "installing" else None

    return wait_until(finished, 120, f"the upgrader's outcome for {version}")


def test_a_healthy_version_replaces_the_old_one(
    tmp_path: Path, machine: tuple[Path, Path, Supervisor],
) -> None:
    _, data_dir, supervisor = machine
    outcome = _upgrade(tmp_path, data_dir, "0.15.0", b"ok")
    assert outcome["state"] == "installed", outcome
    assert _running(data_dir) == "0.15.0"
    assert supervisor.starts >= 2  # restarted by SIGTERM through its supervisor
    # The new package is kept as the way back for the next upgrade; the others go.
    current = data_dir / "releases" / "current.deb"
    assert read_control(current.read_bytes()).version == "0.15.0"
    assert sorted(p.name for p in (data_dir / "releases").glob("*.deb")) == ["current.deb"]


def test_a_version_that_does_not_start_is_rolled_back(
    tmp_path: Path, machine: tuple[Path, Path, Supervisor],
) -> None:
    system, data_dir, supervisor = machine
    outcome = _upgrade(tmp_path, data_dir, "0.16.0", b"broken")
    assert outcome["state"] == "failed", outcome
    assert (outcome["stage"], outcome["reason_code"], outcome["rolled_back"]) == (
        "health", "not_healthy", True)
    assert "0.16.0" in outcome["reason"]
    wait_until(lambda: _running(data_dir) == "0.14.0" and supervisor.process is not None
               and supervisor.process.poll() is None, 60, "the previous version back")
    assert 3 in supervisor.exits  # the broken version did start, and exited
    assert (system / "install.log").read_text().split() == ["0.14.0", "0.16.0", "0.14.0"]


def test_a_failed_install_is_rolled_back(
    tmp_path: Path, machine: tuple[Path, Path, Supervisor],
) -> None:
    _, data_dir, _ = machine
    outcome = _upgrade(tmp_path, data_dir, "0.17.0", b"fail-install")
    assert (outcome["state"], outcome["stage"], outcome["reason_code"]) == (
        "failed", "install", "install_failed")
    assert "dpkg: error processing archive" in outcome["reason"]
    assert outcome["rolled_back"] is True
    wait_until(lambda: _running(data_dir) == "0.14.0", 60, "the previous version running")
