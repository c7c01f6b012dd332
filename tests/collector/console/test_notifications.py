"""Notification delivery in the console: the alert page's 通知记录 and the overview's warning.

One alert of severity high goes, through the real router, to a real webhook
receiver on loopback (which fails once, answering with a ``<script>``, then
accepts) and to an e-mail channel collector.toml does not define.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from agent.events import utcnow
from collector.alerts import service
from collector.app import create_app
from collector.console import notifications, users
from collector.console.pages.overview import OverviewCache
from collector.routing.router import Router
from collector.settings import CollectorSettings
from collector.store import migrate
from collector.store.database import Database
from tests.collector.conftest import POLICIES, TestClient, enroll, event, post_events
from tests.collector.console.conftest import PASSWORD, login
from tests.notify_receivers import RobotReceiver, robot

HOSTILE = "<script>window.__pwned=1</script>"

ALERTING = """\
kind: alerting
schema_version: 1
lists: {}
rules: []
people:
  wang_qiang: {name: 王强, mobile: "13800000003", email: wangqiang@court.example}
duty:
  shifts:
    all_day: {label: 全天, start: "00:00", end: "00:00"}
  rotations:
    - {name: officers, position: on_duty, shifts: [all_day], members: [wang_qiang],
       start: 2026-01-05}
receivers:
  duty-webhook:
    channels: [{channel: webhook}]
%(audit)s
routes:
%(audit_route)s
  - name: duty
    match: {min_severity: high}
    receiver: duty-webhook
    group_by: [rule_id]
    group_wait_s: 0
    escalation: duty-chain
escalations:
  duty-chain:
    steps:
      - {notify: on_duty, wait_s: 3600, key_period_wait_s: 3600}
"""
AUDIT = """\
  audit-mailbox:
    channels: [{channel: email, to: [security-audit@court.example]}]"""
AUDIT_ROUTE = """\
  - name: copy-to-audit
    match: {min_severity: high}
    receiver: audit-mailbox
    group_by: [rule_id]
    group_wait_s: 0
    continue: true"""


def write_alerting(policy_dir: Path, with_audit: bool) -> None:
    text = ALERTING % {"audit": AUDIT if with_audit else "",
                       "audit_route": AUDIT_ROUTE if with_audit else ""}
    (policy_dir / "alerting.yaml").write_text(text, encoding="utf-8")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    app: Any
    client: TestClient
    db: Database
    router: Router
    clock: Clock
    hook: RobotReceiver
    policy_dir: Path

    def tick(self, seconds: float) -> None:
        self.clock.now += timedelta(seconds=seconds)
        self.router.tick()

    def overview(self) -> str:
        # The overview caches its figures (FRESH_S); a new cache is what a restart gives.
        self.app.state.overview_cache = OverviewCache()
        page = self.client.get("/console/overview")
        assert page.status_code == 200
        return page.text


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    policy_dir = tmp_path / "policies"
    shutil.copytree(POLICIES, policy_dir)
    write_alerting(policy_dir, with_audit=True)
    with robot("webhook", script=[500], failure_answer={"error": HOSTILE}) as hook:
        settings = CollectorSettings(
            data_dir=tmp_path / "data", tls=False, policy_dir=policy_dir, alert_router=False,
            silent_check_interval_s=3600, console_login_rate_per_min=1000,
            database_url=f"sqlite:///{tmp_path / 'console.db'}",
            notify_channels={"webhook": {"type": "webhook", "url": hook.url,
                                         "max_attempts": 3, "retry_base_s": 30.0}},
        )
        db = Database.from_settings(settings)
        migrate.upgrade(db)
        users.create_user(db, "zhang", "reviewer", PASSWORD, utcnow())
        app = create_app(settings, db)
        with TestClient(app) as client:
            router: Router = app.state.alert_router
            clock = Clock(utcnow())
            router.clock = clock
            yield World(app, client, db, router, clock, hook, policy_dir)


def post_alert(world: World) -> int:
    agent = enroll(world.client, world.db, "ws-court-01")
    body = event(agent.agent_id, 1, kind="outreach.flow", severity="high", host="ws-court-01",
                 rule_id="outreach.flow-outside", evidence={
                     "first_seen": utcnow().isoformat(), "last_seen": utcnow().isoformat(),
                     "count": 1, "interface": "wwan0", "protocol": "tcp",
                     "local_address": "10.0.0.5", "remote_address": "203.0.113.9",
                     "remote_port": 443})
    assert post_events(world.client, agent, [body]).status_code == 200
    alert_id = service.alert_of_event(world.db, body["id"])
    assert alert_id is not None
    return alert_id


def route(world: World) -> int:
    """A first pass (the router's start), an alert, and passes until both receivers are done."""
    with capture_logs() as logs:
        world.router.tick()
    alert_id = post_alert(world)
    for _ in range(4):
        world.tick(5)
    world.tick(60)  # the webhook's retry is due
    world.tick(1)
    assert len(world.hook.accepted()) == 1
    said = [entry for entry in logs if "does not define" in entry["event"]]
    assert [(entry["channels"], entry["log_level"]) for entry in said] == [(["email"], "error")]
    assert said[0]["receivers"] == {"email": ["audit-mailbox"]}
    return alert_id


def test_start_names_the_channels_collector_toml_lacks_once(world: World) -> None:
    """One line at the first pass naming ``email``; nothing more until the policy changes."""
    with capture_logs() as logs:
        world.router.tick()
        world.tick(1)
    said = [entry for entry in logs if "does not define" in entry["event"]]
    assert len(said) == 1 and said[0]["channels"] == ["email"]
    assert said[0]["undeliverable_receivers"] == ["audit-mailbox"]
    assert "docs/alerting.md" in said[0]["event"]


def test_alert_page_shows_each_attempt_in_chinese_escaped(world: World) -> None:
    """The delivered, retried and undeliverable attempts, each labelled, answers escaped."""
    alert_id = route(world)
    assert login(world.client, "zhang").status_code == 303
    page = world.client.get(f"/console/alerts/{alert_id}")
    assert page.status_code == 200
    text = page.text
    section = text[text.index('<section id="notifications">'):]
    section = section[:section.index("</section>")]
    assert "<h2>通知记录</h2>" in section
    assert "值班员：王强" in section and "固定收件人" in section  # who was addressed
    assert "duty-webhook" in section and "audit-mailbox" in section
    assert section.count("新告警") == 2
    # The webhook: refused once (its answer shown escaped), then delivered.
    assert "<strong>失败</strong>" in section and "<strong>已送达</strong>" in section
    assert "HTTP 500" in section
    assert HOSTILE not in text and "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in section
    # The e-mail channel is not configured: one failed attempt, then nothing left to try.
    assert "channel &#39;email&#39; is not configured (notify_channels)" in section
    assert "<strong>无法送达</strong>" in section and "无可用渠道" in section
    assert section.count('class="notification notify-sent"') == 1
    assert section.count('class="notification notify-failed"') == 1


def test_a_retry_still_due_reads_retrying(world: World) -> None:
    """An attempt that failed with retries left is 重试中, not a final failure."""
    with capture_logs():
        world.router.tick()
    alert_id = post_alert(world)
    world.tick(1)
    world.tick(1)
    [webhook] = [n for n in notifications.for_alert(world.db, alert_id)
                 if n["receiver"] == "duty-webhook"]
    assert [a["outcome"] for a in webhook["attempts"]] == ["retrying"]
    assert webhook["status"] == "pending"


def test_an_alert_without_notifications_says_so(world: World) -> None:
    with capture_logs():
        world.router.tick()
    alert_id = post_alert(world)  # the router has not run since
    assert login(world.client, "zhang").status_code == 303
    page = world.client.get(f"/console/alerts/{alert_id}")
    assert 'id="notification-none"' in page.text and "尚无通知包含此告警" in page.text


def test_overview_warns_while_delivery_fails_and_stops_after(world: World) -> None:
    """The warning names the unconfigured channel and counts failures; it goes once the
    channel is no longer used and the failures are a day old."""
    assert login(world.client, "zhang").status_code == 303
    before = world.overview()
    assert 'id="ov-notify-unconfigured"' in before and "email" in before
    assert 'id="ov-notify-failures"' not in before  # nothing has failed yet
    alert_id = route(world)
    during = world.overview()
    assert "告警通知未能送达值班人员" in during
    assert "近 24 小时：发送失败 2 次，无法送达的通知 1 条。" in during
    assert f'href="/console/alerts/{alert_id}#notifications"' in during

    write_alerting(world.policy_dir, with_audit=False)
    world.tick(25 * 3600)
    after = world.overview()
    assert 'id="ov-notify-warning"' not in after


def test_log_and_health_on_both_stores(db: Database) -> None:
    """An unconfigured channel's attempt and the give-up row, read back per alert and counted
    in the last day only (SQLite and PostgreSQL)."""
    from collector.notify.message import Contact, Message
    from collector.notify.outbox import Outbox, enqueue
    from collector.routing.policy import ChannelUse, Receiver

    now = utcnow()
    message = Message(reason="escalation", receiver="duty-sms", position="backup",
                      persons=[Contact(id="zhang_wei", name="张伟")])
    with db.write() as conn:
        enqueue(conn, message, now, [11, 12])
        enqueue(conn, message, now, [12])
    outbox = Outbox(db, {}, "test")
    receivers = {"duty-sms": Receiver(channels=[ChannelUse(channel="sms")])}
    outbox.send_due(now, receivers)
    outbox.send_due(now, receivers)
    outbox.close()
    [only] = notifications.for_alert(db, 11)
    assert (only["position"], only["persons"], only["alerts"]) == ("backup", ["张伟"], 2)
    assert only["status"] == "failed"
    assert [(a["channel"], a["outcome"]) for a in only["attempts"]] == [
        ("sms", "failed"), ("-", "undeliverable")]
    assert len(notifications.for_alert(db, 12)) == 2 and notifications.for_alert(db, 13) == []
    health = notifications.health(db, now, None, {})
    assert (health["failed"], health["undeliverable"], health["warn"]) == (2, 2, True)
    assert health["newest_failure"]["alert_id"] in (11, 12)
    later = notifications.health(db, now + timedelta(hours=25), None, {})
    assert (later["failed"], later["undeliverable"], later["warn"]) == (0, 0, False)
