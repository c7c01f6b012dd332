"""国密 end to end: a collector initialised with SM2 signs, a real agent pins SM2 and applies.

A real collector process over HTTPS, ``init --signature-algorithm sm2``; a
real agent process enrolls, pins the SM2 key, and applies a publish and then a
rollback (which the collector re-verifies with its SM2 key before re-signing);
the served bundle names SM2. One store (SQLite) keeps it short: the SM2 paths
through the store run on SQLite and PostgreSQL in tests/collector/policy.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.policy.bundle import open_bundle
from agent.signing import PublicKey
from tests.e2e.harness import POLICIES, Agent, Collector, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def sm2_collector(tmp_path: Path) -> Iterator[Collector]:
    instance = Collector(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'collector.db'}")
    made = instance.cli("init", "--signature-algorithm", "sm2", "--print-key-only")
    instance.admin_key = made.stdout.strip().splitlines()[-1]
    instance.start()
    yield instance
    instance.stop()


def test_sm2_collector_and_agent_apply_publish_and_rollback(
    sm2_collector: Collector, tmp_path: Path
) -> None:
    collector = sm2_collector
    agent = Agent(home=tmp_path / "ws", collector=collector, settings={"policy_poll_s": "1"})
    agent.home.mkdir(parents=True)
    agent.enroll()
    try:
        pinned = json.loads((agent.data_dir / "credentials.json").read_text())["policy_key"]
        assert PublicKey.parse(pinned).algorithm == "sm2"
        agent.start()
        collector.cli("policy", "publish", str(POLICIES), "--note", "国密签名", "--author", "e2e")

        def on_version(version: str) -> bool:
            row = collector.agent_row(agent.agent_id) or {}
            return row.get("policy_version") == version

        wait_until(lambda: on_version("1"), 30, "the agent to apply the SM2-signed version 1")
        collector.cli("policy", "rollback", "1", "--author", "e2e")
        wait_until(lambda: on_version("2"), 30, "the agent to apply the rollback, version 2")
        applied = collector.events(kind="agent.policy_applied", agent_id=agent.agent_id)
        assert sorted(e["evidence"]["version"] for e in applied) == ["1", "2"]
        assert not collector.events(kind="agent.policy_rejected", agent_id=agent.agent_id)

        credentials = json.loads((agent.data_dir / "credentials.json").read_text())
        with collector.http() as http:
            fetched = http.get("/api/v1/policy", headers={
                "Authorization": f"Bearer {credentials['agent_id']}:{credentials['secret']}"})
        assert fetched.headers["X-Courtguard-Signature-Algorithm"] == "sm2"
        bundle, _ = open_bundle(fetched.content, fetched.headers["X-Courtguard-Signature"],
                                pinned, group=credentials["group"], applied_version=None,
                                claimed_algorithm="sm2")
        assert (bundle.version, bundle.action) == (2, "rollback")
    finally:
        agent.stop()
