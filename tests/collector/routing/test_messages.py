"""The message about alerts, addressed to whoever holds the position: pure, no store."""

from __future__ import annotations

import urllib.parse
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from agent.events import Severity
from collector.routing.duty import DutyStaff, ShiftSlot
from collector.routing.links import check_link
from collector.routing.messages import Links, compose
from tests.collector.routing.test_matching import context

LINKS = Links("https://collector.court.example/", b"k" * 32)
MOMENT = "2026-11-03T21:00:00+08:00"


def row(alert_id: int = 7) -> Any:
    at = datetime.fromisoformat(MOMENT)
    return SimpleNamespace(
        id=alert_id, fingerprint="ab" * 32, status="new", rule_id="accounts.tamper",
        kind="account.tamper", severity=Severity.HIGH.rank, host="ws-1", host_group="court-a",
        account="wb_zhang", title="外包账号 wb_zhang 清除了登录日志", count=1,
        first_seen=at, last_seen=at)


def staff(on_duty: str | None) -> DutyStaff:
    at = datetime.fromisoformat(MOMENT)
    slot = ShiftSlot("night", "夜班", at.date(), at - timedelta(hours=3), at + timedelta(hours=9))
    return DutyStaff(slot, {"on_duty": on_duty})


def test_the_person_on_duty_is_named_and_gets_a_signed_link() -> None:
    ctx = context(MOMENT)
    message = compose(ctx, LINKS, "duty", "group", [row()], staff("wang_qiang"), "on_duty",
                      "g1", {"rule_id": "accounts.tamper"})
    assert [(p.id, p.name, p.mobile) for p in message.persons] == [
        ("wang_qiang", "王强", "13800000003")]
    [item] = message.alerts
    assert item.labels["host_group"] == "court-a" and "account_class" not in item.labels
    link = urllib.parse.urlsplit(item.ack_url or "")
    assert link.path == "/api/v1/ack/7"
    query = dict(urllib.parse.parse_qsl(link.query))
    assert query["by"] == "wang_qiang"
    assert check_link(LINKS.link_key, 7, "wang_qiang", int(query["exp"]), query["sig"],
                      ctx.now).ok
    assert int(query["exp"]) == int(ctx.now.timestamp()) + ctx.policy.ack_link_valid_s


def test_nobody_on_duty_means_no_person_and_no_link() -> None:
    ctx = context(MOMENT)
    for duty in (None, staff(None)):
        message = compose(ctx, LINKS, "audit", "group", [row()], duty, "on_duty", None, {})
        assert message.persons == [] and message.alerts[0].ack_url is None
    assert message.external_url == LINKS.base_url
