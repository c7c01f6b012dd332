"""Notification messages the channel and outbox tests send."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from collector.notify.message import AlertItem, Contact, Message

T0 = datetime(2026, 10, 1, 19, 0, tzinfo=UTC)  # 03:00 on 2 October in Beijing
ZHANG = Contact(id="zhang_wei", name="张伟", mobile="13800000001", email="zw@court.example",
                dingtalk_user_id="zhangwei", wecom_user_id="ZhangWei")


def alert(n: int = 1, **extra: Any) -> AlertItem:
    values: dict[str, Any] = {
        "id": n, "fingerprint": f"{n:064x}", "status": "new", "rule_id": "accounts.tamper",
        "kind": "account.tamper", "severity": "high", "host": f"ws-it-{n:03d}",
        "account": "wb_zhang", "title": f"外包账号 wb_zhang 清除了登录日志（{n}）", "count": 2,
        "first_seen": T0, "last_seen": T0, "ack_url": f"http://collector.test/api/v1/ack/{n}",
    }
    values.update(extra)
    return AlertItem(**values)


def message(n: int = 1, receiver: str = "duty", persons: list[Contact] | None = None) -> Message:
    return Message(reason="group", receiver=receiver, group_key=f"g{n}",
                   group_labels={"rule_id": "accounts.tamper"},
                   persons=[ZHANG] if persons is None else persons, alerts=[alert(n)],
                   external_url="http://collector.test")

