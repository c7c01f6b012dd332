"""The router with a fake clock, real ingest, real receivers on loopback, SQLite and PostgreSQL.

The walk through a key period: an alert at 03:00 on 2 October (国庆, a statutory
holiday inside the key period 国庆假期重点时期) reaches the night shift's duty
officer on the DingTalk robot after the group wait, goes to SMS and then to
the backup after the key-period waits, and stops when the backup acknowledges
through the signed link in the robot's message. Left acknowledged but not
worked on, it escalates again.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from structlog.testing import capture_logs

from agent.events import Event, Severity, utcnow
from collector.alerts import service
from collector.alerts.grouping import group_events
from collector.app import create_app
from collector.console import users
from collector.routing.links import LOOPBACK_NAMES
from collector.routing.router import Router
from collector.settings import CollectorSettings
from collector.store.database import Database
from collector.store.tables import agents, audit_log, deliveries, notifications
from tests.collector.conftest import POLICIES, TestClient, enroll, event, post_events
from tests.collector.console.conftest import PASSWORD, login
from tests.notify_receivers import RobotReceiver, SmtpRelay, robot, smtp_relay

#: 03:00 on 2 October 2026 in Beijing: National Day holiday, in the key period, night shift.
T0 = datetime(2026, 10, 1, 19, 0, tzinfo=UTC)
#: 21:00 on Tuesday 3 November 2026: an ordinary working day, evening, no key period.
WEEKDAY_NIGHT = datetime(2026, 11, 3, 13, 0, tzinfo=UTC)
#: A wildcard listener, as an administrator writes it; the tests never bind it outside a
#: network namespace of their own.
WILDCARD = "0.0.0.0"  # noqa: S104 (a settings value under test, bound only in a namespace)
NIGHT_OFFICER, BACKUP = "13800000003", "13800000001"  # wang_qiang, zhang_wei (weekly turns)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def to(self, when: datetime) -> datetime:
        self.now = when
        return when


@dataclass
class Receivers:
    dingtalk: RobotReceiver
    sms: RobotReceiver
    mail: SmtpRelay


@pytest.fixture
def receivers(tmp_path: Path) -> Iterator[Receivers]:
    with robot("dingtalk") as dingtalk, robot("sms") as sms, smtp_relay(tmp_path) as mail:
        yield Receivers(dingtalk, sms, mail)


@pytest.fixture
def settings(tmp_path: Path, database_url: str, receivers: Receivers) -> CollectorSettings:
    return CollectorSettings(
        data_dir=tmp_path / "data", database_url=database_url, tls=False, policy_dir=POLICIES,
        silent_check_interval_s=3600, alert_router=False,
        notify_channels={
            "dingtalk": {"type": "dingtalk", "url": receivers.dingtalk.url,
                         "secret": receivers.dingtalk.secret, "rate_per_minute": 600,
                         "burst": 20},
            "sms": {"type": "sms", "url": receivers.sms.url},
            "email": {"type": "email", "smtp_host": receivers.mail.host,
                      "smtp_port": receivers.mail.port, "ca_file": str(receivers.mail.ca_file),
                      "sender": "courtguard@court.example"},
        },
    )


@dataclass
class World:
    client: TestClient
    db: Database
    router: Router
    clock: Clock
    receivers: Receivers
    agent: Any
    seq: int = 0

    def post(self, kind: str, rule_id: str, severity: str = "high", **evidence: Any) -> int:
        self.seq += 1
        body = event(self.agent.agent_id, self.seq, kind=kind, rule_id=rule_id,
                     severity=severity, host=self.agent.hostname, evidence=evidence)
        response = post_events(self.client, self.agent, [body])
        assert response.status_code == 200, response.text
        alert_id = service.alert_of_event(self.db, body["id"])
        assert alert_id is not None
        return alert_id

    def tick(self, when: datetime) -> None:
        self.router.tick(self.clock.to(when))

    def robot_texts(self) -> list[str]:
        return [r.body["markdown"]["text"] for r in self.receivers.dingtalk.accepted()]


@pytest.fixture
def world(settings: CollectorSettings, db: Database, receivers: Receivers) -> Iterator[World]:
    app = create_app(settings, db)
    with TestClient(app) as client:
        router: Router = app.state.alert_router
        clock = Clock(T0)
        router.clock = clock
        router.tick(T0 - timedelta(days=60))  # first start: routes what happens from now on
        agent = enroll(client, db, "ws-it-001")
        yield World(client, db, router, clock, receivers, agent)


def service_actor() -> Any:
    from collector.store.audit import Actor

    return Actor("test-officer", via="console")


def ack_link(text: str) -> str:
    match = re.search(r"\[确认\]\((http[^)]+)\)", text)
    assert match, text
    return match.group(1)


def ack_path(link: str) -> str:
    split = urllib.parse.urlsplit(link)
    return f"{split.path}?{split.query}"


def test_key_period_night_walk(world: World) -> None:
    s = timedelta(seconds=1)
    alert_id = world.post("account.tamper", "accounts.tamper", account="wb_zhang",
                          what="auth_log_cleared")
    world.tick(T0)
    assert world.receivers.dingtalk.received == []  # group wait (10 s on this route)
    world.tick(T0 + 10 * s)
    [first] = world.receivers.dingtalk.accepted()
    assert first.body["at"]["atMobiles"] == [NIGHT_OFFICER]
    assert first.body["markdown"]["title"].startswith("【高危】新告警")
    world.tick(T0 + 60 * s)  # the audit mailbox's copy
    [(envelope, _mail)] = world.receivers.mail.inbox.messages
    assert envelope.rcpt_tos == ["security-audit@court.example"]

    world.tick(T0 + 309 * s)  # key-period wait is 5 minutes, not yet over
    assert world.receivers.sms.received == []
    world.tick(T0 + 310 * s)  # step 2: SMS to the same officer
    [sms] = world.receivers.sms.accepted()
    assert sms.body["mobiles"] == NIGHT_OFFICER
    world.tick(T0 + 610 * s)  # step 3: the backup on the robot
    texts = world.robot_texts()
    assert len(texts) == 2
    escalation = world.receivers.dingtalk.accepted()[1]
    assert escalation.body["at"]["atMobiles"] == [BACKUP]
    assert "现通知备班" in texts[1]
    assert "升级：王强 未在 5 分钟内确认" in texts[1]  # the SMS step went to the night officer
    assert texts[1].endswith(f"值班人员：张伟（@{BACKUP}）")

    link = ack_link(texts[1])
    assert "by=zhang_wei" in link
    page = world.client.get(ack_path(link))
    assert page.status_code == 200 and "我已知悉" in page.text
    assert service.get_alert(world.db, alert_id)["status"] == "new"  # GET changes nothing
    forged = ack_path(link).replace("by=zhang_wei", "by=li_na")
    assert world.client.post(forged.split("?")[0], content=forged.split("?")[1],
                             headers={"Content-Type": "application/x-www-form-urlencoded"}
                             ).status_code == 403
    confirm = world.client.post(ack_path(link).split("?")[0], content=ack_path(link).split("?")[1],
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert confirm.status_code == 200 and "已确认" in confirm.text
    alert = service.get_alert(world.db, alert_id)
    assert (alert["status"], alert["assignee"]) == ("acknowledged", "zhang_wei")
    with world.db.read() as conn:
        entry = conn.execute(select(audit_log).where(audit_log.c.action == "alert.acknowledge")
                             ).one()
    assert (entry.actor, entry.via) == ("zhang_wei", "signed-link")

    world.tick(T0 + 611 * s)  # the router sees the acknowledgement
    world.tick(T0 + 910 * s)  # the duty leader would have been next: nobody is called
    world.tick(T0 + 1300 * s)
    assert len(world.robot_texts()) == 2 and len(world.receivers.sms.received) == 1

    # Acknowledged but not worked on for the key-period 15 minutes: it escalates again.
    world.tick(T0 + 1512 * s)  # unacknowledged by the router (audited)
    world.tick(T0 + 1513 * s)  # the change comes back through the feed: the chain restarts
    assert service.get_alert(world.db, alert_id)["status"] == "new"
    again = world.receivers.dingtalk.accepted()[-1]
    assert len(world.robot_texts()) == 3 and again.body["at"]["atMobiles"] == [NIGHT_OFFICER]

    # The signed link expires (24 h).
    world.clock.to(T0 + timedelta(hours=25))
    expired = world.client.post(ack_path(link).split("?")[0],
                                content=ack_path(link).split("?")[1],
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert expired.status_code == 403 and "过期" in expired.text


def test_expired_contract_mutes_the_off_hours_alert(world: World) -> None:
    world.clock.to(WEEKDAY_NIGHT)
    common = {"local_time": "21:00", "day_kind": "workday", "account": "wb_li"}
    off_hours = world.post("account.login", "accounts.login-outside-hours", "medium", **common)
    contract = world.post("account.login", "accounts.login-outside-contract", "medium", **common)
    world.tick(WEEKDAY_NIGHT)
    world.tick(WEEKDAY_NIGHT + timedelta(seconds=30))
    assert len(world.robot_texts()) == 1
    with world.db.read() as conn:
        sent = [r.alert_ids for r in conn.execute(select(notifications))]
    assert sent == [[contract]]
    # Once the contract alert is closed, the off-hours alert is no longer muted.
    service.close(world.db, contract, service_actor(), "true_positive", "合同已续签")
    world.tick(WEEKDAY_NIGHT + timedelta(seconds=31))
    world.tick(WEEKDAY_NIGHT + timedelta(hours=4, seconds=30))  # the group's next repeat (4 h)
    with world.db.read() as conn:
        sent = [r.alert_ids for r in conn.execute(select(notifications).order_by(
            notifications.c.id))]
    assert sent[-1] == [off_hours]


def test_silent_agent_mutes_content_alerts_from_its_host(world: World) -> None:
    world.clock.to(WEEKDAY_NIGHT)
    world.post("document.block", "documents.resident-id", "high", file_name="判决书.docx",
               sha256="0" * 64, size=1000, verdict="do_not_publish", profile="spc-2024",
               action="block", basis="法释〔2016〕19号 第十条", occurrences=[],
               occurrences_total=0)
    with world.db.write() as conn:
        conn.execute(update(agents).values(last_seen_at=WEEKDAY_NIGHT - timedelta(hours=1),
                                           heartbeat_interval_s=60))
    # TestClient types its app as a bare ASGI callable, without the FastAPI app's state.
    made = world.client.app.state.monitor.check(WEEKDAY_NIGHT)  # type: ignore[attr-defined]  # TestClient types .app as a bare ASGI app
    assert [e.kind for e in made] == ["agent.silent"]
    for second in (0, 30, 60):
        world.tick(WEEKDAY_NIGHT + timedelta(seconds=second))
    texts = world.robot_texts()
    assert len(texts) == 1 and "终端代理已失联" in texts[0]


def test_silences_are_validated_audited_and_mute(world: World, admin: dict[str, str]) -> None:
    world.clock.to(WEEKDAY_NIGHT)
    missing = world.client.post("/api/v1/silences", headers=admin, json={
        "matchers": [{"label": "account", "value": "wb_*"}],
        "ends_at": (WEEKDAY_NIGHT + timedelta(hours=2)).isoformat()})
    assert missing.status_code == 422 and "comment" in missing.text
    too_long = world.client.post("/api/v1/silences", headers=admin, json={
        "matchers": [{"label": "account", "value": "wb_*"}], "comment": "维护窗口，厂商升级",
        "ends_at": (WEEKDAY_NIGHT + timedelta(days=31)).isoformat()})
    assert too_long.status_code == 422 and "30 days" in too_long.text
    made = world.client.post("/api/v1/silences", headers=admin, json={
        "matchers": [{"label": "account", "value": "wb_*"}], "comment": "维护窗口，厂商升级",
        "ends_at": (WEEKDAY_NIGHT + timedelta(hours=2)).isoformat()})
    assert made.status_code == 201, made.text
    world.post("account.tamper", "accounts.tamper", account="wb_zhang", what="history")
    for second in (0, 60, 120):
        world.tick(WEEKDAY_NIGHT + timedelta(seconds=second))
    assert world.robot_texts() == [] and world.receivers.mail.inbox.messages == []
    listed = world.client.get("/api/v1/silences", headers=admin).json()["silences"]
    assert [s["active"] for s in listed] == [True]
    ended = world.client.delete(f"/api/v1/silences/{made.json()['id']}", headers=admin,
                                params={"reason": "维护提前结束"})
    assert ended.status_code == 200
    with world.db.read() as conn:
        actions = [r.action for r in conn.execute(
            select(audit_log).where(audit_log.c.object_type == "silence").order_by(audit_log.c.id))]
    assert actions == ["silence.create", "silence.expire"]
    world.post("account.tamper", "accounts.tamper", account="wb_wang", what="history")
    for second in (200, 260):
        world.tick(WEEKDAY_NIGHT + timedelta(seconds=second))
    assert len(world.robot_texts()) == 1 and "wb_wang" in world.robot_texts()[0]


def test_duty_api(world: World, admin: dict[str, str]) -> None:
    answer = world.client.get("/api/v1/duty", headers=admin).json()
    assert answer["current"]["shift"] == "night"
    assert answer["current"]["positions"]["on_duty"]["id"] == "wang_qiang"
    assert answer["current"]["key_period"] == "国庆假期重点时期"
    assert answer["next"]["shift"] == "day"
    later = world.client.get("/api/v1/duty", headers=admin,
                             params={"at": "2026-11-03T10:00:00+08:00"}).json()
    assert later["current"]["shift"] == "day" and later["current"]["key_period"] is None
    assert world.client.get("/api/v1/duty").status_code == 401


def test_two_routers_never_both_send(world: World, settings: CollectorSettings) -> None:
    other = Router(world.db, world.router.policies, settings.notify_channels,
                   world.router.link_key, "http://testserver", clock=world.clock)
    world.post("account.tamper", "accounts.tamper", account="wb_zhang", what="history")
    for second in (0, 10, 11, 12):
        world.tick(T0 + timedelta(seconds=second))
        other.tick(T0 + timedelta(seconds=second))
    assert len(world.robot_texts()) == 1
    # The holder stops; after its lease runs out the other takes over and carries on.
    world.router.release()
    other.tick(T0 + timedelta(seconds=320))
    assert len(world.receivers.sms.accepted()) == 1
    other.close()


def test_every_delivery_attempt_is_listed(world: World, admin: dict[str, str]) -> None:
    world.post("account.tamper", "accounts.tamper", account="wb_zhang", what="history")
    world.tick(T0)
    world.tick(T0 + timedelta(seconds=10))
    listed = world.client.get("/api/v1/notifications", headers=admin).json()["notifications"]
    assert listed[0]["status"] == "sent" and listed[0]["deliveries"][0]["ok"]
    assert listed[0]["deliveries"][0]["response"].startswith('{"errcode": 0')
    with world.db.read() as conn:
        assert len(conn.execute(select(deliveries)).all()) == 1


def test_reopened_alert_escalates_again(world: World) -> None:
    alert_id = world.post("account.tamper", "accounts.tamper", account="wb_zhang", what="history")
    world.tick(T0)
    world.tick(T0 + timedelta(seconds=10))
    assert len(world.robot_texts()) == 1
    service.close(world.db, alert_id, service_actor(), "false_positive", "初判误报")
    world.tick(T0 + timedelta(seconds=20))
    world.tick(T0 + timedelta(seconds=400))  # a closed alert's chain does not go on
    assert len(world.robot_texts()) == 1 and world.receivers.sms.received == []
    service.reopen(world.db, alert_id, service_actor(), "复核后确认不是误报")
    world.tick(T0 + timedelta(seconds=410))
    texts = world.robot_texts()
    assert len(texts) == 2 and "告警升级" in world.receivers.dingtalk.accepted()[-1].body[
        "markdown"]["title"]
    assert world.receivers.dingtalk.accepted()[-1].body["at"]["atMobiles"] == [NIGHT_OFFICER]


def test_alerts_keep_opening_after_the_upsert_is_prepared(db: Database) -> None:
    """psycopg prepares a statement on its sixth run on a connection: the upsert survives it."""
    agent_id = uuid.uuid4()
    with db.engine.connect() as conn:
        for n in range(12):
            made = Event(id=uuid.uuid4(), seq=None, time=T0, agent_id=agent_id, host="ws-1",
                         kind="account.tamper", severity=Severity.HIGH, rule_id="accounts.tamper",
                         policy_version=None, summary="外包账号清除了历史记录",
                         evidence={"account": f"wb_{n}", "what": "history"})
            with conn.begin():
                [change] = group_events(conn, str(agent_id), [made], T0)
            assert change.change == "opened"


def test_500_alerts_in_a_minute_bounded_messages_none_lost(world: World,
                                                           settings: CollectorSettings) -> None:
    """One group per account, 500 accounts in a minute: the robot's 20 a minute, as digests."""
    robot_rate = {**settings.notify_channels,
                  "dingtalk": settings.notify_channels["dingtalk"].model_copy(
                      update={"rate_per_minute": 18, "burst": 2})}
    router = Router(world.db, world.router.policies, robot_rate, world.router.link_key,
                    "http://testserver", clock=world.clock)
    world.router.release()
    start = WEEKDAY_NIGHT
    router.tick(start - timedelta(seconds=1))
    posted: set[int] = set()
    for second in range(60):
        batch = [event(world.agent.agent_id, world.seq + i + 1, kind="account.tamper",
                       rule_id="accounts.tamper", severity="medium", host=world.agent.hostname,
                       evidence={"account": f"wb_{world.seq + i}", "what": "history"})
                 for i in range(9 if second < 55 else 1)][: 500 - len(posted)]
        if batch:
            assert post_events(world.client, world.agent, batch).status_code == 200
            world.seq += len(batch)
            posted |= {service.alert_of_event(world.db, e["id"]) for e in batch}
        router.tick(world.clock.to(start + timedelta(seconds=second)))
    for second in range(60, 240):
        router.tick(world.clock.to(start + timedelta(seconds=second)))
    router.close()
    assert len(posted) == 500
    requests = world.receivers.dingtalk.received
    with world.db.read() as conn:
        rows = {r.id: r for r in conn.execute(select(notifications))}
        attempts = conn.execute(select(deliveries)).all()
    robot_attempts = sorted(a.at for a in attempts if a.channel == "dingtalk")
    for first in robot_attempts:  # any 60 s of the collector's clock: 20 at most
        assert len([t for t in robot_attempts if first <= t < first + timedelta(seconds=60)]) <= 20
    assert len(robot_attempts) < 100  # 500 alerts, a few dozen messages
    sent_ok = {a.notification_id for a in attempts if a.ok}
    shown: set[int] = set()
    for row in rows.values():
        final = row
        while final.status == "digested":
            final = rows[final.digest_id]
        assert final.id in sent_ok, f"notification {row.id} ended {final.status}"
        shown |= {a["id"] for a in final.message["alerts"]}
    assert posted <= shown
    assert len(attempts) == len(requests)  # every request the robot saw is in the log


def test_escalations_folded_into_a_digest_keep_their_wording(
        world: World, settings: CollectorSettings) -> None:
    """Two alerts reach the backup at once over a robot with one token: one digest says why."""
    robot_rate = {**settings.notify_channels,
                  "dingtalk": settings.notify_channels["dingtalk"].model_copy(
                      update={"rate_per_minute": 1, "burst": 1})}
    router = Router(world.db, world.router.policies, robot_rate, world.router.link_key,
                    "http://testserver", clock=world.clock)
    world.router.release()
    first = world.post("account.tamper", "accounts.tamper", account="wb_zhang", what="history")
    second = world.post("account.tamper", "accounts.tamper", account="wb_li", what="history")
    for second_ in (0, 10, 310, 610):
        router.tick(world.clock.to(T0 + timedelta(seconds=second_)))
    router.close()
    last = world.receivers.dingtalk.accepted()[-1]
    text = last.body["markdown"]["text"]
    assert "告警汇总" in last.body["markdown"]["title"]
    assert last.body["at"]["atMobiles"] == [BACKUP]
    assert f"告警 #{first}" in text and f"告警 #{second}" in text
    assert text.count("升级：王强 未在 5 分钟内确认") == 2, text
    with world.db.read() as conn:
        folded = conn.execute(select(notifications).where(
            notifications.c.status == "digested", notifications.c.reason == "escalation")).all()
    assert len(folded) == 2


def test_console_link_in_the_message_opens_the_alert(world: World) -> None:
    alert_id = world.post("account.tamper", "accounts.tamper", account="wb_zhang", what="history")
    world.tick(T0)
    world.tick(T0 + timedelta(seconds=10))
    [text] = world.robot_texts()
    [link] = re.findall(r"\[查看\]\((http[^)]+)\)", text)
    path = urllib.parse.urlsplit(link).path
    assert path == f"/console/alerts/{alert_id}"
    users.create_user(world.db, "duty1", "reviewer", PASSWORD, utcnow())
    assert login(world.client, "duty1").status_code == 303
    page = world.client.get(path)
    assert page.status_code == 200 and "wb_zhang" in page.text


def test_links_from_a_wildcard_listener_use_the_host_name(
        settings: CollectorSettings, db: Database) -> None:
    """``https://0.0.0.0:8443/...`` opens nothing: the links use this host's name instead."""
    wildcard = settings.model_copy(update={"listen_host": WILDCARD, "tls": True,
                                           "alert_router": True})
    with capture_logs() as logs:
        router = create_app(wildcard, db).state.alert_router
    router.close()
    base = router.base_url
    name = socket.getfqdn()
    if name in LOOPBACK_NAMES:
        name = socket.gethostname()
    assert base == f"https://{name}:8443"
    [warning] = [e for e in logs if e["event"] == "alert links may not open for the duty officers"]
    assert base in warning["detail"] and "public_url" in warning["detail"]


def test_public_url_is_the_base_of_every_link(settings: CollectorSettings, db: Database) -> None:
    public = settings.model_copy(update={
        "listen_host": WILDCARD, "public_url": "https://courtguard.court.example/",
        "alert_router": True})
    with capture_logs() as logs:
        router = create_app(public, db).state.alert_router
    router.close()
    assert router.base_url == "https://courtguard.court.example"
    assert not [e for e in logs if e["event"] == "alert links may not open for the duty officers"]


def test_wildcard_listener_on_a_host_named_localhost_refuses_to_start(tmp_path: Path) -> None:
    """A host named only localhost can form no link: serve refuses and asks for public_url.

    The collector runs in UTS and network namespaces of its own (its name is
    localhost there, and nothing it could bind is reachable from outside).
    """
    environment = {**os.environ, "COURTGUARD_COLLECTOR_DATA_DIR": str(tmp_path / "data"),
                   "COURTGUARD_COLLECTOR_TLS": "false",
                   "COURTGUARD_COLLECTOR_CONFIG": str(tmp_path / "none.toml")}
    (tmp_path / "none.toml").write_text("")
    cli = str(Path(sys.executable).with_name("courtguard-collector"))
    subprocess.run([cli, "init"], env=environment, check=True, capture_output=True)
    done = subprocess.run(
        ["unshare", "--uts", "--net", "sh", "-c", 'hostname localhost && exec "$@"', "sh",
         cli, "serve", "--host", WILDCARD, "--port", "0"],
        env=environment, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "set public_url" in done.stderr and "only localhost" in done.stderr, done.stderr
