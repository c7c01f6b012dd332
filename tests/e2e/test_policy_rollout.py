"""Central policy end to end: a real collector process over HTTPS, on SQLite and PostgreSQL.

100 simulated agents (each the real ``PolicyClient``, verifying and keeping
bundles, and heartbeating its applied version over HTTP) converge on a
publish, a canary stays confined to its group until promoted, and a rollback
reaches everyone as a new version; one real agent process applies a publish.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.collector_http import IDEMPOTENT, collector_http_client
from agent.events import HeartbeatEvidence, utcnow, uuid7
from agent.policy.client import PolicyClient, Rejected, Verified
from agent.settings import AgentSettings
from tests.alerting_contacts import alerting_contacts
from tests.e2e.harness import POLICIES, Agent, Collector, wait_until

pytestmark = pytest.mark.e2e

FLEET = 100
CANARIES = 10


@dataclass
class SimulatedAgent:
    """An agent reduced to its policy client and its heartbeats, speaking real HTTP."""

    agent_id: str
    secret: str
    group: str
    client: PolicyClient
    seq: int = 0
    hints: list[str | None] = field(default_factory=list)
    rejections: list[Rejected] = field(default_factory=list)

    @property
    def authorization(self) -> str:
        return f"Bearer {self.agent_id}:{self.secret}"

    @property
    def version(self) -> str | None:
        return None if self.client.applied is None else str(self.client.applied.version)

    async def poll(self, http: httpx.AsyncClient) -> None:
        outcome = await self.client.fetch_once(http, self.authorization)
        if isinstance(outcome, Verified):
            await asyncio.to_thread(self.client.keep, outcome)
        elif isinstance(outcome, Rejected):
            self.rejections.append(outcome)

    async def heartbeat(self, http: httpx.AsyncClient) -> None:
        self.seq += 1
        evidence = HeartbeatEvidence(
            agent_version="0.1.0", uptime_s=1, interval_s=60, policy_version=self.version,
            spool_depth=0, spool_bytes=0, events_dropped=0, rss_bytes=1, cpu_percent=0,
        )
        event = {"id": str(uuid7()), "seq": self.seq, "time": utcnow().isoformat(),
                 "agent_id": self.agent_id, "host": f"sim-{self.agent_id[:8]}",
                 "kind": "agent.heartbeat", "severity": "info", "summary": "心跳",
                 "policy_version": self.version,
                 "evidence": evidence.model_dump(mode="json", exclude_none=True)}
        for _ in range(50):  # like the shipper: a busy collector (503) is asked again later
            response = await http.post(
                "/api/v1/events", json={"agent_id": self.agent_id,
                                        "sent_at": utcnow().isoformat(), "events": [event]},
                headers={"Authorization": self.authorization}, extensions={IDEMPOTENT: True})
            if response.status_code != 503:
                break
            await asyncio.sleep(0.1)
        response.raise_for_status()
        hint = response.json()["policy_version"]
        self.hints.append(hint)
        self.client.hint(hint)


def enroll_fleet(collector: Collector, home: Path) -> list[SimulatedAgent]:
    tokens = {"court": collector.create_token("--group", "court", "--uses", str(FLEET)),
              "canary": collector.create_token("--group", "canary", "--uses", str(CANARIES))}
    fleet = []
    with collector.http() as http:
        for index in range(FLEET):
            group = "canary" if index < CANARIES else "court"
            answer = http.post("/api/v1/enroll", json={
                "token": tokens[group], "hostname": f"sim-{index:03d}", "agent_version": "0.1.0",
            })
            assert answer.status_code == 201, answer.text
            body = answer.json()
            assert body["policy_key"], "enrollment must hand out the policy key"
            data_dir = home / f"sim-{index:03d}"
            data_dir.mkdir(parents=True)
            fleet.append(SimulatedAgent(body["agent_id"], body["secret"], group, PolicyClient(
                data_dir=data_dir, public_key=body["policy_key"], group=group,
                required=frozenset({"agent"}), interval_s=60)))
    return fleet


async def rounds(collector: Collector, fleet: list[SimulatedAgent],
                 done: Callable[[], bool], within_s: float = 60) -> int:
    """Poll and heartbeat, all agents at once, until ``done()``; return the rounds taken."""
    # The shipper's own client: its keep-alive expiry and its retry on a reused connection.
    async with collector_http_client(collector.url, collector.ssl_context(), AgentSettings(),
                                     max_connections=50) as http:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        count = 0
        while True:
            count += 1
            await asyncio.gather(*(agent.poll(http) for agent in fleet))
            await asyncio.gather(*(agent.heartbeat(http) for agent in fleet))
            if done():
                return count
            assert loop.time() < deadline, "the fleet did not converge"
            await asyncio.sleep(0.3)


def versions(fleet: list[SimulatedAgent]) -> dict[str, set[str | None]]:
    seen: dict[str, set[str | None]] = {}
    for agent in fleet:
        seen.setdefault(agent.group, set()).add(agent.version)
    return seen


def publish(collector: Collector, *args: str) -> None:
    collector.cli("policy", *args, "--author", "e2e")


def converged_in_store(collector: Collector, expected: dict[str, int]) -> bool:
    status = collector.api("/api/v1/policies")
    groups = {g["group"]: g for g in status["groups"]}
    return all(groups[name]["converged"] and groups[name]["target_version"] == version
               for name, version in expected.items())


def test_fleet_converges_through_canary_promote_and_rollback(
    collector: Collector, tmp_path: Path
) -> None:
    """100 agents: publish, canary, promote, rollback; the store counts every agent's version."""
    fleet = enroll_fleet(collector, tmp_path / "fleet")

    publish(collector, "publish", str(POLICIES), "--note", "首次发布")
    asyncio.run(rounds(collector, fleet, lambda: versions(fleet) == {
        "canary": {"1"}, "court": {"1"}}))
    wait_until(lambda: converged_in_store(collector, {"canary": 1, "court": 1}), 10,
               "the store to count every agent on version 1")

    publish(collector, "publish", str(POLICIES), "--group", "canary", "--note", "试点")
    asyncio.run(rounds(collector, fleet, lambda: versions(fleet)["canary"] == {"2"}))
    assert versions(fleet)["court"] == {"1"}, "a canary bundle leaked to another group"
    assert all(hint == "1" for agent in fleet if agent.group == "court"
               for hint in agent.hints[-1:])

    publish(collector, "promote", "2")
    asyncio.run(rounds(collector, fleet, lambda: versions(fleet) == {
        "canary": {"3"}, "court": {"3"}}))

    publish(collector, "rollback", "1", "--note", "回滚")
    taken = asyncio.run(rounds(collector, fleet, lambda: versions(fleet) == {
        "canary": {"4"}, "court": {"4"}}))
    assert taken <= 10
    wait_until(lambda: converged_in_store(collector, {"canary": 4, "court": 4}), 10,
               "the store to count every agent on version 4")
    status = collector.api("/api/v1/policies")
    assert [(v["version"], v["action"], v["agents"]) for v in status["versions"]] == [
        (4, "rollback", FLEET), (3, "promote", 0), (2, "publish", 0), (1, "publish", 0)]
    assert all(not agent.rejections for agent in fleet)
    text = collector.cli("policy", "status").stdout
    assert "group canary: 10 agents, should run version 4, converged" in text


def test_real_agent_applies_a_publish_and_the_store_records_it(
    collector: Collector, make_agent: Callable[..., Agent]
) -> None:
    """A real agent process pins the key, applies a publish, reports it and its version."""
    agent = make_agent("ws", policy_poll_s="1")
    credentials = (agent.data_dir / "credentials.json").read_text()
    assert '"policy_key"' in credentials
    agent.start()
    publish(collector, "publish", str(POLICIES), "--note", "e2e")

    def applied() -> Any:
        row = collector.agent_row(agent.agent_id)
        return row if row and row["policy_version"] == "1" else None

    wait_until(applied, 30, "the agent to report policy version 1")
    events = collector.events(kind="agent.policy_applied", agent_id=agent.agent_id)
    assert events and events[0]["evidence"]["version"] == "1"
    assert events[0]["summary"].startswith("已应用策略版本 1")
    assert (agent.data_dir / "policy-bundle.signed").exists()


def test_agents_fetch_no_duty_roster_and_the_collector_keeps_it(collector: Collector) -> None:
    """Over HTTPS, after publishing the shipped policies: the bundle an agent fetches has no
    ``alerting`` document and none of its numbers or addresses, and verifies with the pinned
    key; the collector's own policy (what routing reads) still has the published roster."""
    from agent.policy.bundle import open_bundle
    from agent.policy.loader import load_policy_dir
    from agent.registry import DETECTORS
    from collector.policy.current import CurrentPolicy
    from collector.settings import CollectorSettings
    from collector.store.database import Database

    publish(collector, "publish", str(POLICIES), "--note", "不含值班名册")
    token = collector.create_token("--group", "court")
    with collector.http() as http:
        enrolled = http.post("/api/v1/enroll", json={
            "token": token, "hostname": "ws-roster", "agent_version": "0.1.0"}).json()
        fetched = http.get("/api/v1/policy", headers={
            "Authorization": f"Bearer {enrolled['agent_id']}:{enrolled['secret']}"})
    assert fetched.status_code == 200, fetched.text
    for contact in alerting_contacts():
        assert contact.encode() not in fetched.content, contact
    bundle, policies = open_bundle(
        fetched.content, fetched.headers["X-Courtguard-Signature"], enrolled["policy_key"],
        group="court", applied_version=None,
        required=frozenset({"agent", *(spec.policy_section for spec in DETECTORS)}))
    assert bundle.version == 1 and "alerting" not in bundle.documents
    assert set(policies.documents) == {"agent", "accounts", "documents", "networks"}

    store = Database.from_settings(CollectorSettings(database_url=collector.database_url))
    try:
        # No files: only the published bundle, verified with the key the agent pinned.
        current = CurrentPolicy(store, None, enrolled["policy_key"]).get()
    finally:
        store.dispose()
    assert current is not None and current.version == "1"
    assert current.section("alerting") == load_policy_dir(POLICIES).section("alerting")


def test_a_forged_row_is_neither_acted_on_served_nor_re_signed(
    collector: Collector, make_agent: Callable[..., Agent]
) -> None:
    """A version inserted by SQL (version 1's signatures over an edited duty mobile number):
    the running collector reports it once and keeps serving and acting on version 1, the agent
    stays on version 1 without a rejection, and ``policy rollback 2`` is refused."""
    import sqlalchemy as sa

    from collector.store.tables import policy_bundles, policy_counter

    agent = make_agent("ws", policy_poll_s="1")
    agent.start()
    publish(collector, "publish", str(POLICIES), "--note", "真实版本")
    wait_until(lambda: (collector.agent_row(agent.agent_id) or {}).get("policy_version") == "1",
               30, "the agent to apply version 1")
    engine = collector.engine()
    try:
        with engine.begin() as conn:
            row = dict(conn.execute(sa.select(policy_bundles)).one()._mapping)
            genuine = alerting_contacts()[0].encode()
            assert genuine in row["body"]
            row.update(version=2, body=row["body"].replace(genuine, b"13999999999"))
            conn.execute(sa.insert(policy_bundles).values(**row))
            conn.execute(sa.update(policy_counter).values(value=2))
    finally:
        engine.dispose()

    rejected = wait_until(lambda: collector.events(kind="collector.policy_rejected"), 30,
                          "the collector to report the forged version")
    assert len(rejected) == 1 and rejected[0]["severity"] == "high"
    assert rejected[0]["evidence"]["version"] == "2"
    assert rejected[0]["evidence"]["applied_version"] == "1"
    served = collector.api("/api/v1/policies")
    assert [(v["version"], v["verified"]) for v in served["versions"]] == [(2, False), (1, True)]
    refused = collector.cli("policy", "rollback", "2", check=False)
    assert refused.returncode == 1 and "策略版本 2 未通过验证" in refused.stderr
    assert "Traceback" not in refused.stderr
    def heartbeats() -> int:
        return int(collector.query(
            "SELECT count(*) FROM events WHERE agent_id = :a AND kind = 'agent.heartbeat'",
            a=agent.agent_id)[0][0])

    # Two more heartbeats: their answers hint version 1, and the agent polls every second.
    seen = heartbeats()
    wait_until(lambda: heartbeats() >= seen + 2, 120, "two more heartbeats from the agent")
    assert collector.agent_row(agent.agent_id)["policy_version"] == "1"
    assert not collector.events(kind="agent.policy_rejected", agent_id=agent.agent_id)
    assert len(collector.events(kind="collector.policy_rejected")) == 1
    assert [v["version"] for v in collector.api("/api/v1/policies")["versions"]] == [2, 1]
