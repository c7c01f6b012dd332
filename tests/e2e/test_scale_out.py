"""Several collector processes on one PostgreSQL store behave as one collector."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.harness import (
    POLICIES,
    Agent,
    Collector,
    agent_headers,
    batch_body,
    synthetic_events,
    wait_until,
)
from tests.notify_receivers import RobotReceiver, robot

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database_url", ["postgres"], indirect=True)]


@pytest.fixture
def second_collector(tmp_path: Path, collector: Collector) -> Iterator[Collector]:
    """Another collector process on the same PostgreSQL database, over plain HTTP."""
    other = Collector(home=tmp_path / "second", database_url=collector.database_url, tls=False)
    other.home.mkdir()
    other.admin_key = collector.admin_key
    other.extra_env["COURTGUARD_COLLECTOR_SILENT_CHECK_INTERVAL_S"] = "0.5"
    other.start()
    yield other
    other.stop()


def test_batch_through_one_process_is_read_through_another(
    collector: Collector, second_collector: Collector, make_agent: Callable[..., Agent]
) -> None:
    """An agent's credentials work on every process, and what one stores the other serves."""
    agent = make_agent()
    credentials = json.loads((agent.data_dir / "credentials.json").read_text())
    events = synthetic_events(agent.agent_id, 1, 10)
    with second_collector.http() as client:
        response = client.post(
            "/api/v1/events",
            content=batch_body(agent.agent_id, events),
            headers=agent_headers(credentials),
        )
    assert response.status_code == 200, response.text
    served = collector.events(agent_id=agent.agent_id, kind="agent.test")
    assert sorted(e["id"] for e in served) == sorted(e["id"] for e in events)


def test_two_monitors_report_a_silent_agent_once(
    collector: Collector, second_collector: Collector, make_agent: Callable[..., Agent]
) -> None:
    """Both processes look for silent agents; the agent is still reported silent exactly once."""
    agent = make_agent()
    agent.start()
    collector.wait_online(agent.agent_id)
    agent.stop(signal.SIGKILL)
    wait_until(
        lambda: collector.events(agent_id=agent.agent_id, kind="agent.silent"),
        30,
        "an agent.silent event",
    )
    time.sleep(3)
    rows = collector.query(
        "SELECT COUNT(*) FROM events WHERE agent_id = :a AND kind = 'agent.silent'",
        a=agent.agent_id,
    )
    assert rows[0][0] == 1


# -- three collectors on one address, one killed mid-ingest ------------------------------------

#: Short leases, so the killed collector's singletons move within seconds (min 3 s).
TEST_LEASE_S = 4


def hook_policy(directory: Path) -> Path:
    """The shipped policies plus a first route: every agent.test alert to the webhook, once."""
    target = directory / "policies"
    shutil.copytree(POLICIES, target)
    data = yaml.safe_load((target / "alerting.yaml").read_text())
    data["receivers"]["e2e-hook"] = {"channels": [{"channel": "hook"}]}
    data["routes"][:0] = [
        {"name": "e2e-hook", "match": {"kinds": ["agent.test"]}, "receiver": "e2e-hook",
         "group_by": ["host"], "group_wait_s": 0, "group_interval_s": 3600,
         "repeat_interval_s": 86400},
    ]
    (target / "alerting.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    return target


@dataclass
class Shipper:
    """One enrolled client shipping batches the way the agent does: a batch is resent as it
    was (same ids, same seqs) until a collector acknowledges it with a 200."""

    collector: Collector
    agent_id: str
    secret: str
    host: str
    acknowledged: list[str] = field(default_factory=list)
    retried: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        credentials = {"agent_id": self.agent_id, "secret": self.secret}
        seq = 1
        while not self.stop.is_set():
            events = synthetic_events(self.agent_id, seq, 20, host=self.host)
            body = batch_body(self.agent_id, events)
            while True:
                # A connection per batch: SO_REUSEPORT spreads connections, not requests.
                try:
                    with httpx.Client(base_url=self.collector.url, timeout=30,
                                      verify=self.collector.ssl_context()) as client:
                        response = client.post("/api/v1/events", content=body,
                                               headers=agent_headers(credentials))
                    if response.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                self.retried += 1
                time.sleep(0.2)
            self.acknowledged += [event["id"] for event in events]
            seq += len(events)


def enroll_shipper(collector: Collector, token: str, host: str) -> Shipper:
    with collector.http() as client:
        response = client.post("/api/v1/enroll", json={
            "token": token, "hostname": host, "agent_version": "0.1.0"})
    assert response.status_code == 201, response.text
    body = response.json()
    return Shipper(collector, body["agent_id"], body["secret"], host)


def hook_hosts(hook: RobotReceiver) -> list[str]:
    """Every host named by an accepted webhook message, once per message that named it."""
    return [alert["labels"]["host"] for message in hook.accepted()
            for alert in message.body["alerts"]]


def test_three_collectors_lose_nothing_and_route_once_when_one_is_killed(
    tmp_path: Path, database_url: str,
) -> None:
    with robot("webhook") as hook, contextlib.ExitStack() as stack:
        shared_env = {
            "COURTGUARD_COLLECTOR_POLICY_DIR": str(hook_policy(tmp_path)),
            "COURTGUARD_COLLECTOR_NOTIFY_CHANNELS": json.dumps(
                {"hook": {"type": "webhook", "url": hook.url}}),
            "COURTGUARD_COLLECTOR_REUSE_PORT": "true",
            "COURTGUARD_COLLECTOR_LEASE_S": str(TEST_LEASE_S),
            "COURTGUARD_COLLECTOR_SILENT_CHECK_INTERVAL_S": "0.5",
            "COURTGUARD_COLLECTOR_ACCOUNT_CORRELATION_INTERVAL_S": "1",
        }
        first = Collector(home=tmp_path / "c0", database_url=database_url,
                          extra_env=dict(shared_env))
        first.home.mkdir()
        first.init()
        collectors = [first]
        for index in (1, 2):
            # The same certificate, link key and policy keys: one collector to the agents.
            other = Collector(home=tmp_path / f"c{index}", database_url=database_url,
                              port=first.port, extra_env=dict(shared_env),
                              admin_key=first.admin_key)
            shutil.copytree(first.data_dir, other.data_dir)
            collectors.append(other)
        for instance in collectors:
            stack.callback(instance.stop)
            instance.start()

        # The first to start holds every singleton.
        # (planner-statistics runs on SQLite only.)
        wanted = {"router", "retention", "calendar-monitor",
                  "correlation:silent-agent check", "correlation:account correlation"}

        def holders_when(ok: Callable[[str | None], bool]) -> dict[str, str | None] | None:
            rows = {row.name: row.owner
                    for row in first.query("SELECT name, owner FROM leases")}
            return rows if wanted <= set(rows) and all(ok(rows[n]) for n in wanted) else None

        held = wait_until(lambda: holders_when(lambda owner: owner is not None), 60,
                          "every singleton leased")
        first_owner = held["router"]
        assert {held[name] for name in wanted} == {first_owner}

        token = first.create_token("--uses", "100")
        shippers = [enroll_shipper(first, token, f"ws-scale-{i:02d}") for i in range(12)]
        threads: list[threading.Thread] = []

        def ship(group: list[Shipper]) -> None:
            for shipper in group:
                stack.callback(shipper.stop.set)
                thread = threading.Thread(target=shipper.run, daemon=True)
                thread.start()
                threads.append(thread)

        wave_one, wave_two = shippers[:8], shippers[8:]
        ship(wave_one)
        wait_until(lambda: {s.host for s in wave_one} <= set(hook_hosts(hook)), 60,
                   "the first wave's alerts on the webhook")
        wait_until(lambda: all(len(s.acknowledged) >= 100 for s in wave_one), 120,
                   "the first wave well under way")
        first.stop(signal.SIGKILL)  # mid-ingest: every shipper is posting
        moved_at = time.monotonic()
        # Within the lease (plus a renewal and the test's polling) another process holds
        # every singleton the killed one held.
        wait_until(lambda: holders_when(lambda owner: owner not in (None, first_owner)), 60,
                   "every singleton taken over")
        moved_after_s = time.monotonic() - moved_at

        ship(wave_two)
        wait_until(lambda: {s.host for s in wave_two} <= set(hook_hosts(hook)), 60,
                   "the second wave's alerts on the webhook, routed by the new holder")
        wait_until(lambda: all(len(s.acknowledged) >= 100 for s in shippers), 120,
                   "every shipper acknowledged after the kill")
        for shipper in shippers:
            shipper.stop.set()
        for thread in threads:
            thread.join(120)
        assert not any(thread.is_alive() for thread in threads)

        acknowledged = [event_id for s in shippers for event_id in s.acknowledged]
        stored = first.query(
            "SELECT id, COUNT(*) FROM events WHERE kind = 'agent.test' GROUP BY id")
        counts = {str(row[0]): row[1] for row in stored}
        lost = set(acknowledged) - set(counts)
        duplicated = [event_id for event_id, count in counts.items() if count > 1]
        assert lost == set(), f"{len(lost)} acknowledged events lost"
        assert duplicated == []
        assert len(counts) == len(acknowledged) == len(set(acknowledged))
        assert first.query("SELECT agent_id, seq FROM events WHERE kind = 'agent.test' "
                           "GROUP BY agent_id, seq HAVING COUNT(*) > 1") == []
        # Every shipper's alert went to the webhook exactly once, whichever process routed it.
        time.sleep(2 * TEST_LEASE_S)  # a duplicate sent late would show up within this
        assert sorted(hook_hosts(hook)) == sorted(s.host for s in shippers)
        assert moved_after_s < 60
