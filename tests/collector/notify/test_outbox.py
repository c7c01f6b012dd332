"""The outbox against real loopback receivers: retries, fallback, digests, durability."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from collector.notify import channels
from collector.notify.config import ChannelSettings
from collector.notify.message import Escalated, Message
from collector.notify.outbox import Outbox, enqueue
from collector.notify.transport import HttpClients
from collector.routing.policy import ChannelUse, Receiver
from collector.store.database import Database
from collector.store.tables import deliveries, notifications
from tests.collector.notify.messages import T0, ZHANG, alert, message
from tests.notify_receivers import robot

# -- the outbox ------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def queue(db: Database, *messages: Message, now: datetime = T0) -> list[int]:
    with db.write() as conn:
        return [enqueue(conn, m, now, [a.id for a in m.alerts]) for m in messages]


def rows(db: Database) -> dict[int, Any]:
    with db.read() as conn:
        return {r.id: r for r in conn.execute(select(notifications))}


def attempts(db: Database, notification_id: int) -> list[Any]:
    with db.read() as conn:
        return list(conn.execute(select(deliveries).where(
            deliveries.c.notification_id == notification_id).order_by(deliveries.c.id)))


def test_500_three_times_then_200_delivers_once(db: Database) -> None:
    with robot("dingtalk", script=[500, 500, 500]) as receiver:
        settings = ChannelSettings(type="dingtalk", url=receiver.url, secret=receiver.secret,
                                   retry_base_s=1, max_attempts=4, rate_per_minute=600, burst=5)
        outbox = Outbox(db, {"robot": settings}, "test")
        receivers = {"duty": Receiver(channels=[ChannelUse(channel="robot")])}
        [nid] = queue(db, message())
        clock = Clock(T0)
        for _ in range(20):
            outbox.send_due(clock.now, receivers)
            clock.advance(1)
        outbox.close()
        assert len(receiver.received) == 4
        assert len(receiver.accepted()) == 1
        log = attempts(db, nid)
        assert [(a.ok, a.status_code) for a in log] == [(False, 500)] * 3 + [(True, 200)]
        assert "scripted failure" in log[0].response
        # backoff: 1 s, 2 s, 4 s between the attempts
        gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(log)]
        assert gaps == [1, 2, 4]
        assert rows(db)[nid].status == "sent"


def test_falls_back_to_the_next_channel(db: Database) -> None:
    with robot("wecom", script=[500] * 10) as broken, robot("sms") as sms:
        outbox = Outbox(db, {
            "robot": ChannelSettings(type="wecom", url=broken.url, max_attempts=2,
                                     retry_base_s=0),
            "sms": ChannelSettings(type="sms", url=sms.url),
        }, "test")
        receivers = {"duty": Receiver(channels=[ChannelUse(channel="robot"),
                                                ChannelUse(channel="sms")])}
        [nid] = queue(db, message())
        for step in range(5):
            outbox.send_due(T0 + timedelta(seconds=step), receivers)
        outbox.close()
        assert len(broken.received) == 2
        assert len(sms.accepted()) == 1
        assert [a.channel for a in attempts(db, nid)] == ["robot", "robot", "sms"]
        assert rows(db)[nid].sent_channel == "sms"


def test_every_channel_failing_ends_failed_and_logged(db: Database) -> None:
    outbox = Outbox(db, {"dead": ChannelSettings(type="webhook", url="http://127.0.0.1:9/x",
                                                 max_attempts=1, timeout_s=1)}, "test")
    receivers = {"duty": Receiver(channels=[ChannelUse(channel="dead")])}
    [nid] = queue(db, message())
    for step in range(3):
        outbox.send_due(T0 + timedelta(seconds=step), receivers)
    outbox.close()
    assert rows(db)[nid].status == "failed"
    log = attempts(db, nid)
    assert "ConnectError" in (log[0].error or "")
    assert "all 1 channels of receiver 'duty' failed" in (log[-1].error or "")


def test_pending_notifications_survive_a_restart(db: Database, settings: Any) -> None:
    with robot("webhook") as receiver:
        [nid] = queue(db, message())
        db.dispose()  # the collector stopped before sending
        again = Database.from_settings(settings)
        outbox = Outbox(again, {"hook": ChannelSettings(type="webhook", url=receiver.url)}, "b")
        outbox.send_due(T0, {"duty": Receiver(channels=[ChannelUse(channel="hook")])})
        outbox.close()
        assert len(receiver.accepted()) == 1
        assert rows(again)[nid].status == "sent"
        again.dispose()


def test_500_in_a_minute_are_digested_none_lost(db: Database) -> None:
    with robot("dingtalk") as receiver:
        settings = ChannelSettings(type="dingtalk", url=receiver.url, secret=receiver.secret,
                                   rate_per_minute=18, burst=2)
        outbox = Outbox(db, {"robot": settings}, "test")
        receivers = {"duty": Receiver(channels=[ChannelUse(channel="robot")])}
        clock = Clock(T0)
        ids: list[int] = []
        for _second in range(60):  # 500 notifications over one minute, sent as they come
            count = min(9, 500 - len(ids))
            ids += queue(db, *(message(len(ids) + i) for i in range(count)), now=clock.now)
            outbox.send_due(clock.now, receivers)
            clock.advance(1)
        for _ in range(30):
            outbox.send_due(clock.advance(1), receivers)
        outbox.close()
        accepted = receiver.accepted()
        in_first_minute = [r for r in accepted if r.at - accepted[0].at < 60]
        assert len(in_first_minute) <= 20, len(in_first_minute)
        everything = rows(db)
        sent = {i for i, r in everything.items() if r.status == "sent"}
        for nid in ids:
            row = everything[nid]
            while row.status == "digested":
                row = everything[row.digest_id]
            assert row.id in sent, f"notification {nid} ended {row.status}"
            assert any(a.ok for a in attempts(db, row.id))
        shown = {a["id"] for r in everything.values() if r.id in sent
                 for a in r.message["alerts"]}
        assert len(shown) == 500
        with db.read() as conn:
            assert conn.execute(select(func.count()).select_from(deliveries)).scalar() == len(
                receiver.received)


# -- a channel's own CA ----------------------------------------------------------------------


def deliver_once(db: Database, settings: ChannelSettings) -> list[Any]:
    """Queue one message, give the outbox one pass, return the delivery log of that message."""
    outbox = Outbox(db, {"relay": settings}, "test")
    [nid] = queue(db, message())
    outbox.send_due(T0, {"duty": Receiver(channels=[ChannelUse(channel="relay")])})
    outbox.close()
    return attempts(db, nid)


@pytest.mark.parametrize("flavour", ["dingtalk", "wecom", "webhook", "sms"])
def test_https_receiver_signed_by_a_private_ca_is_trusted_through_ca_file(
        db: Database, tmp_path: Path, flavour: str) -> None:
    """专有钉钉 or a DMZ relay with the court's own CA: ``ca_file`` makes delivery work."""
    with robot(flavour, tls_dir=tmp_path / "court-ca") as receiver:
        assert receiver.url.startswith("https://") and receiver.ca_file is not None
        settings = ChannelSettings(type=flavour, url=receiver.url, secret=receiver.secret,
                                   ca_file=receiver.ca_file, max_attempts=1)
        [delivery] = deliver_once(db, settings)
        assert delivery.ok, delivery.error
        assert len(receiver.accepted()) == 1


@pytest.mark.parametrize("flavour", ["dingtalk", "webhook", "sms"])
def test_https_receiver_with_a_private_ca_fails_clearly_without_ca_file(
        db: Database, tmp_path: Path, flavour: str) -> None:
    with robot(flavour, tls_dir=tmp_path / "court-ca") as receiver:
        settings = ChannelSettings(type=flavour, url=receiver.url, secret=receiver.secret,
                                   max_attempts=1)
        [delivery] = deliver_once(db, settings)
        assert not delivery.ok
        assert "CERTIFICATE_VERIFY_FAILED" in (delivery.error or ""), delivery.error
        assert receiver.received == []


def test_unreadable_ca_file_is_a_clear_delivery_error(db: Database, tmp_path: Path) -> None:
    not_a_ca = tmp_path / "not-a-ca.pem"
    not_a_ca.write_text("this is not a certificate\n")
    with robot("webhook", tls_dir=tmp_path / "court-ca") as receiver:
        for ca_file in (not_a_ca, tmp_path / "missing.pem"):
            settings = ChannelSettings(type="webhook", url=receiver.url, ca_file=ca_file,
                                       max_attempts=1)
            [delivery] = deliver_once(db, settings)
            assert not delivery.ok
            assert f"ca_file {ca_file} cannot be used as a CA bundle" in (delivery.error or "")
        assert receiver.received == []


def test_a_ca_file_replaced_in_place_is_read_again(db: Database, tmp_path: Path) -> None:
    """A court renewing its CA replaces the file; the next delivery trusts the new one."""
    with robot("webhook", tls_dir=tmp_path / "old-ca") as old, \
            robot("webhook", tls_dir=tmp_path / "new-ca") as new:
        assert old.ca_file is not None and new.ca_file is not None
        trusted = tmp_path / "court-ca.pem"
        trusted.write_bytes(old.ca_file.read_bytes())
        clients = HttpClients()
        settings = ChannelSettings(type="webhook", url=new.url, ca_file=trusted)
        assert not channels.send(message(), settings, clients.for_channel(settings), []).ok
        trusted.write_bytes(new.ca_file.read_bytes() + b"\n")
        assert channels.send(message(), settings, clients.for_channel(settings), []).ok
        clients.close()


def test_a_digest_keeps_the_escalation_wording(db: Database) -> None:
    """Folded into a digest, an escalated alert still says who did not acknowledge in time."""
    escalated = Message(
        reason="escalation", receiver="duty", position="backup", persons=[ZHANG],
        alerts=[alert(1, escalated=Escalated(previous="王强", waited_s=900))],
        external_url="http://collector.test")
    with robot("dingtalk") as receiver:
        settings = ChannelSettings(type="dingtalk", url=receiver.url, secret=receiver.secret,
                                   burst=1)
        outbox = Outbox(db, {"robot": settings}, "test")
        queue(db, message(1), escalated, message(2))
        outbox.send_due(T0, {"duty": Receiver(channels=[ChannelUse(channel="robot")])})
        outbox.close()
        [got] = receiver.accepted()
        text = got.body["markdown"]["text"]
        assert "告警汇总" in got.body["markdown"]["title"]
        assert text.count("升级：王强 未在 15 分钟内确认") == 1, text
