"""/metrics: who may read it, the agents' health aggregates, and the notification counters.

Runs on SQLite and PostgreSQL (the ``client``/``db`` fixtures). The separate
listener (``[metrics] listen``) is tested with a real collector process in
tests/e2e/test_metrics_listener.py.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from collector.app import create_app
from collector.metrics import Metrics
from collector.notify.config import ChannelSettings
from collector.notify.message import Message
from collector.notify.outbox import Outbox, enqueue
from collector.routing.policy import ChannelUse, Receiver
from collector.settings import CollectorSettings, MetricsSettings
from collector.store import agents as agent_store
from collector.store import apikeys
from collector.store.database import Database
from collector.store.tables import alerts
from tests.collector.conftest import (
    EnrolledAgent,
    TestClient,
    enroll,
    event,
    heartbeat,
    post_events,
)
from tests.collector.notify.messages import alert, message
from tests.notify_receivers import robot


def scrape(client: Any, headers: dict[str, str]) -> str:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return str(response.text)


# -- who may read it ---------------------------------------------------------------------


def test_metrics_need_an_api_key_by_default(client: Any, db: Database) -> None:
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "courtguard_" not in response.text
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    # a key of any role will do, the read-only auditor's included
    auditor = apikeys.create_api_key(db, name="prometheus", role="auditor",
                                     now=datetime.now(UTC))[1]
    assert "courtguard_agents" in scrape(client, {"Authorization": f"Bearer {auditor}"})


def test_metrics_open_when_configured(settings: CollectorSettings, db: Database) -> None:
    """``[metrics] auth = "none"`` keeps the old behaviour: anyone reaching the port reads it."""
    open_settings = settings.model_copy(update={"metrics": MetricsSettings(auth="none")})
    with TestClient(create_app(open_settings, db)) as open_client:
        assert "courtguard_agents" in scrape(open_client, {})


def test_main_port_refuses_metrics_when_they_have_a_listener(
    settings: CollectorSettings, db: Database, admin: dict[str, str]
) -> None:
    moved = settings.model_copy(
        update={"metrics": MetricsSettings(listen="127.0.0.1:9464")})
    with TestClient(create_app(moved, db)) as moved_client:
        response = moved_client.get("/metrics", headers=admin)
    assert response.status_code == 404
    assert "127.0.0.1:9464" in response.json()["detail"]


# -- the agents' health ------------------------------------------------------------------


def test_agent_health_aggregates(client: Any, db: Database, admin: dict[str, str]) -> None:
    """Agents by status, by version, by policy version, and those with a degraded detector."""
    fleet = [enroll(client, db, f"ws-{n:03d}") for n in range(4)]
    beats = [
        {"agent_version": "0.3.0", "policy_version": "p-7"},
        {"agent_version": "0.3.0", "policy_version": "p-7",
         "detectors": {"outreach": {"state": "degraded", "reason": "no CAP_NET_ADMIN"},
                       "documents": {"state": "ok"}}},
        {"agent_version": "0.2.0", "policy_version": "p-6",
         "detectors": {"outreach": {"state": "disabled"}, "accounts": {"state": "failed"}}},
    ]
    for agent, beat in zip(fleet, beats, strict=False):
        assert post_events(client, agent, [heartbeat(agent.agent_id, 1, **beat)]).status_code \
            == 200
    assert agent_store.revoke(db, fleet[0].agent_id, "reimaged", datetime.now(UTC))

    text = scrape(client, admin)
    assert 'courtguard_agents{status="online"} 2.0' in text
    assert 'courtguard_agents{status="revoked"} 1.0' in text
    assert 'courtguard_agents{status="never_seen"} 1.0' in text  # enrolled, never reported
    assert "courtguard_agents_degraded 2.0" in text
    assert 'courtguard_agents_degraded_detector{detector="outreach"} 1.0' in text
    assert 'courtguard_agents_degraded_detector{detector="accounts"} 1.0' in text
    assert 'detector="documents"' not in text
    # revoked agents are left out; the one never seen reports the enrolment's version
    assert 'courtguard_agents_by_version{version="0.3.0"} 1.0' in text
    assert 'courtguard_agents_by_version{version="0.2.0"} 1.0' in text
    assert 'courtguard_agents_by_version{version="0.1.0"} 1.0' in text
    assert 'courtguard_agents_by_policy_version{policy_version="p-7"} 1.0' in text
    assert 'courtguard_agents_by_policy_version{policy_version="p-6"} 1.0' in text
    assert 'courtguard_agents_by_policy_version{policy_version="none"} 1.0' in text
    assert "ws-00" not in text  # never a host name in a label


# -- notifications -----------------------------------------------------------------------


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def queue(db: Database, *messages: Message) -> list[int]:
    now = datetime.now(UTC)
    with db.write() as conn:
        return [enqueue(conn, m, now, [a.id for a in m.alerts]) for m in messages]


def drain(outbox: Outbox, receivers: dict[str, Receiver], passes: int = 30) -> None:
    """Pass after pass a minute apart, so every retry falls due and buckets refill."""
    start = datetime.now(UTC)
    for n in range(passes):
        outbox.send_due(start + timedelta(minutes=n), receivers)


def test_sent_failed_retried_and_fallback_per_channel(db: Database) -> None:
    metrics = Metrics()
    with robot("dingtalk", script=[500, 500]) as flaky, robot("wecom", script=[500] * 5) as dead, \
            robot("sms") as sms:
        outbox = Outbox(db, {
            "flaky": ChannelSettings(type="dingtalk", url=flaky.url, secret=flaky.secret,
                                     retry_base_s=0, max_attempts=3),
            "dead": ChannelSettings(type="wecom", url=dead.url, retry_base_s=0, max_attempts=2),
            "sms": ChannelSettings(type="sms", url=sms.url),
        }, "test", metrics=metrics)
        receivers = {
            "duty": Receiver(channels=[ChannelUse(channel="flaky")]),
            "backup": Receiver(channels=[ChannelUse(channel="dead"), ChannelUse(channel="sms")]),
        }
        queue(db, message(1), message(2, receiver="backup"))
        drain(outbox, receivers)
        outbox.close()
    assert sample(metrics, "courtguard_notifications_sent_total", channel="flaky") == 1
    assert sample(metrics, "courtguard_notification_failures_total", channel="flaky") == 2
    assert sample(metrics, "courtguard_notification_retries_total", channel="flaky") == 2
    assert sample(metrics, "courtguard_notification_failures_total", channel="dead") == 2
    assert sample(metrics, "courtguard_notification_retries_total", channel="dead") == 1
    assert sample(metrics, "courtguard_notification_fallbacks_total", channel="dead") == 1
    assert sample(metrics, "courtguard_notifications_sent_total", channel="sms") == 1
    assert sample(metrics, "courtguard_notifications_undeliverable_total") == 0


def test_undeliverable_is_counted(db: Database) -> None:
    metrics = Metrics()
    with robot("wecom", script=[500] * 5) as dead:
        outbox = Outbox(db, {"dead": ChannelSettings(type="wecom", url=dead.url,
                                                     retry_base_s=0, max_attempts=1)},
                        "test", metrics=metrics)
        queue(db, message(1))
        drain(outbox, {"duty": Receiver(channels=[ChannelUse(channel="dead")])})
        outbox.close()
    assert sample(metrics, "courtguard_notifications_undeliverable_total") == 1


def test_digest_size_is_observed(db: Database) -> None:
    """30 due for one robot with 5 tokens: one digest of all 30 (none lost, one observation)."""
    metrics = Metrics()
    with robot("dingtalk") as receiver:
        outbox = Outbox(db, {"robot": ChannelSettings(
            type="dingtalk", url=receiver.url, secret=receiver.secret, rate_per_minute=20,
            burst=5)}, "test", metrics=metrics)
        queue(db, *(message(n) for n in range(1, 31)))
        outbox.send_due(datetime.now(UTC), {"duty": Receiver(channels=[ChannelUse(
            channel="robot")])})
        outbox.close()
    assert sample(metrics, "courtguard_notification_digest_size_count") == 1
    assert sample(metrics, "courtguard_notification_digest_size_sum") == 30
    assert sample(metrics, "courtguard_notifications_sent_total", channel="robot") == 1


def test_ingest_to_send_runs_from_the_event_received_to_the_send(
    client: Any, db: Database, agent: EnrolledAgent
) -> None:
    """An event stored through ingest opens an alert; its notification's send is timed."""
    started = time.time()
    response = post_events(client, agent, [event(agent.agent_id, 1, severity="high")])
    assert response.status_code == 200
    with db.read() as conn:
        [(alert_id,)] = conn.execute(select(alerts.c.id)).all()
    metrics = Metrics()
    with robot("dingtalk") as receiver:
        outbox = Outbox(db, {"robot": ChannelSettings(
            type="dingtalk", url=receiver.url, secret=receiver.secret)}, "test",
            metrics=metrics)
        note = message(1).model_copy(update={"alerts": [alert(alert_id)]})
        queue(db, note)
        outbox.send_due(datetime.now(UTC), {"duty": Receiver(channels=[ChannelUse(
            channel="robot")])})
        outbox.close()
    elapsed = time.time() - started
    count = sample(metrics, "courtguard_notification_ingest_to_send_seconds_count",
                   reason="group")
    seconds = sample(metrics, "courtguard_notification_ingest_to_send_seconds_sum",
                     reason="group")
    assert count == 1
    assert 0 < seconds <= elapsed  # measured from the stored event, not from queueing
