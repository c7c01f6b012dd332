"""The agent's upgrade client against a real collector over HTTPS: it fetches its target,
keeps the running version's package to go back to, starts the upgrader for a newer
release, refuses an older one and one signed with another key, and reports an upgrade
the upgrader rolled back, as an event and to the collector."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.cli import build_parser
from agent.events import Finding
from agent.signing import Ed25519Signer
from agent.upgrade import state
from agent.upgrade.client import UpgradeClient
from agent.upgrade.deb import read_control
from agent.upgrade.upgrader import UpgradePlan
from tests.agent.upgrade.debs import make_deb
from tests.e2e.harness import Collector

pytestmark = pytest.mark.e2e
INSTALL = ("dpkg", "--force-confdef", "--force-confold", "-i")


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    instance = Collector(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'c.db'}")
    instance.home.mkdir()
    instance.init()
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


def _enroll(collector: Collector, group: str) -> dict[str, Any]:
    with collector.http() as client:
        answer = client.post("/api/v1/enroll", json={
            "token": collector.create_token("--group", group), "hostname": "ws-client",
            "agent_version": "0.13.0"})
    answer.raise_for_status()
    return dict(answer.json())


def _publish(collector: Collector, tmp_path: Path, version: str, *extra: str) -> None:
    package = tmp_path / f"{version}-{len(extra)}.deb"
    package.write_bytes(make_deb(version))
    collector.cli("release", "publish", str(package), *extra)


def test_the_client_upgrades_refuses_and_reports(collector: Collector, tmp_path: Path) -> None:
    enrolled = _enroll(collector, "canary")
    data_dir = tmp_path / "agent"
    data_dir.mkdir()
    events: list[Finding] = []
    spawned: list[list[str]] = []

    async def emit(finding: Finding) -> None:
        events.append(finding)

    def make(public_key: str) -> UpgradeClient:
        return UpgradeClient(
            plan=UpgradePlan(data_dir, INSTALL, "courtguard-agent.service", 60),
            public_key=public_key, group=lambda: "canary", running_version="0.13.0",
            architecture="amd64", emit=emit, interval_s=60,
            # The detached upgrader has its own test (test_upgrader.py); here only its command.
            spawn=lambda command, version, log: spawned.append(command))

    async def rounds() -> list[str]:
        outcomes = []
        headers = f"Bearer {enrolled['agent_id']}:{enrolled['secret']}"
        verify = ssl.create_default_context(cafile=str(collector.ca_file))
        async with httpx.AsyncClient(base_url=collector.url, verify=verify,
                                     timeout=60) as client:
            upgrades = make(enrolled["policy_key"])
            outcomes.append(await upgrades.check_once(client, headers))  # nothing published
            _publish(collector, tmp_path, "0.13.0")
            outcomes.append(await upgrades.check_once(client, headers))  # the running one
            _publish(collector, tmp_path, "0.12.0", "--group", "canary")
            outcomes.append(await upgrades.check_once(client, headers))  # older: refused
            outcomes.append(await upgrades.check_once(client, headers))  # judged already
            _publish(collector, tmp_path, "0.14.0", "--group", "canary")
            outcomes.append(await upgrades.check_once(client, headers))  # started
            outcomes.append(await upgrades.check_once(client, headers))  # busy
            # Another key than the pinned one: a package from anyone else is refused.
            stranger = make(Ed25519Signer().public_key.text)
            outcomes.append(await stranger.check_once(client, headers))
            # The upgrader rolled 0.14.0 back: the restored agent reports it, once.
            state.write_json(state.result_path(data_dir), {
                "state": "failed", "stage": "health", "reason_code": "not_healthy",
                "reason": "新版本 0.14.0 未在 60 秒内报告正常", "rolled_back": True,
                "version": "0.14.0", "sha256": "ab" * 32})
            restored = make(enrolled["policy_key"])
            await restored.report_result(client, headers)
            await restored.report_result(client, headers)
        return outcomes

    outcomes = asyncio.run(rounds())
    assert outcomes == ["none", "current", "refused:older_version", "judged", "started", "busy",
                        "refused:bad_signature"]
    # The upgrader is handed the verified 0.14.0 and the running 0.13.0 to go back to.
    command = spawned[0]
    package = Path(command[command.index("--package") + 1])
    rollback = Path(command[command.index("--rollback") + 1])
    assert read_control(package.read_bytes()).version == "0.14.0"
    assert read_control(rollback.read_bytes()).version == "0.13.0"
    assert command[command.index("--running") + 1] == "0.13.0"
    # The command line the upgrader parses, dashes in the install command included.
    parsed = build_parser().parse_args(command[command.index("upgrade-apply"):])
    assert tuple(parsed.install) == INSTALL and parsed.version == "0.14.0"
    assert package.stat().st_mode & 0o777 == 0o600
    codes = [(f.kind, f.evidence["reason_code"]) for f in events]
    assert codes == [("agent.upgrade_failed", "older_version"),
                     ("agent.upgrade_failed", "bad_signature"),
                     ("agent.upgrade_failed", "not_healthy")]
    assert "已回退至版本 0.13.0" in events[-1].summary
    status = {v["version"]: v for v in collector.api("/api/v1/releases")["versions"]}
    assert status["0.14.0"]["failed"] == 1 and status["0.14.0"]["downloaded"] == 1
    assert status["0.12.0"]["refused"] == 0  # no longer targeted: counted where it is
    listed = collector.agent_row(enrolled["agent_id"])
    assert listed is not None and listed["upgrade_failed"]["version"] == "0.14.0"
