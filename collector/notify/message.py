"""What a notification says, stored as JSON in the outbox and rendered per channel."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from collector.routing.policy import POSITION_NAMES

#: People on duty read Beijing time.
BEIJING: Final = timezone(timedelta(hours=8), "北京时间")
SEVERITY_LABELS: Final = {
    "info": "提示", "low": "低危", "medium": "中危", "high": "高危", "critical": "严重",
}
REASON_LABELS: Final = {
    "group": "新告警", "repeat": "告警仍未处理", "escalation": "告警升级", "digest": "告警汇总",
}
#: A digest lists this many alerts and counts the rest.
DIGEST_LINES: Final = 20


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Contact(_Data):
    id: str
    name: str
    mobile: str | None = None
    email: str | None = None
    dingtalk_user_id: str | None = None
    wecom_user_id: str | None = None


class Escalated(_Data):
    """Why an alert reaches the next position: who did not acknowledge it, and within how long.

    Kept on the alert, not on the message, so it survives being folded into a digest.
    """

    previous: str  # the person's name, or the position's when nobody held it
    waited_s: int

    def text(self) -> str:
        return f"升级：{self.previous} 未在 {duration(self.waited_s)}内确认"


class AlertItem(_Data):
    id: int
    fingerprint: str
    status: str
    rule_id: str | None
    kind: str
    severity: str
    host: str
    account: str | None = None
    title: str
    count: int
    first_seen: datetime
    last_seen: datetime
    labels: dict[str, str] = Field(default_factory=dict)
    ack_url: str | None = None
    escalated: Escalated | None = None


class Message(_Data):
    """One notification: who it is for (``persons``, ``extra_to``) and which alerts it carries."""

    reason: str
    receiver: str
    group_key: str | None = None
    group_labels: dict[str, str] = Field(default_factory=dict)
    position: str | None = None  # the duty position addressed (escalation)
    persons: list[Contact] = Field(default_factory=list)
    extra_to: list[str] = Field(default_factory=list)
    alerts: list[AlertItem] = Field(default_factory=list)
    #: In a digest, how many notifications it replaces.
    replaces: int = 0
    external_url: str = ""

    @property
    def severity(self) -> str:
        order = list(SEVERITY_LABELS)
        worst = max((order.index(a.severity) for a in self.alerts if a.severity in order),
                    default=0)
        return order[worst]

    def title(self) -> str:
        label = REASON_LABELS.get(self.reason, "告警")
        first = self.alerts[0].title if self.alerts else ""
        more = f" 等 {len(self.alerts)} 条" if len(self.alerts) > 1 else ""
        return f"【{SEVERITY_LABELS[self.severity]}】{label}：{first[:60]}{more}"

    def lines(self) -> list[str]:
        """Markdown lines common to the chat channels and e-mail."""
        out: list[str] = []
        if self.reason == "escalation" and self.position:
            out.append(f"> 告警升级，现通知{position_label(self.position)}。")
        if self.reason == "digest":
            out.append(f"> 发送频率已达上限，合并 {self.replaces} 条通知为一条汇总。")
        for alert in self.alerts[:DIGEST_LINES]:
            when = alert.first_seen.astimezone(BEIJING).strftime("%m-%d %H:%M")
            who = f"，账号 {alert.account}" if alert.account else ""
            links = f" [确认]({alert.ack_url})" if alert.ack_url else ""
            if self.external_url:
                links += f" [查看]({self.console_url(alert.id)})"
            out.append(
                f"- **{SEVERITY_LABELS.get(alert.severity, alert.severity)}** {alert.title}"
                f"（规则 {alert.rule_id or alert.kind}，主机 {alert.host}{who}，"
                f"{alert.count} 次，首次 {when}，告警 #{alert.id}）{links}"
            )
            if alert.escalated is not None:
                out.append(f"  - {alert.escalated.text()}")
        if len(self.alerts) > DIGEST_LINES:
            rest = f"- ……另有 {len(self.alerts) - DIGEST_LINES} 条，请在控制台查看"
            out.append(f"{rest}：{self.console_url()}" if self.external_url else rest)
        return out

    def console_url(self, alert_id: int | None = None) -> str:
        """The console page of one alert (the alert list without an id)."""
        base = f"{self.external_url.rstrip('/')}/console/alerts"
        return base if alert_id is None else f"{base}/{alert_id}"

    def duty_line(self, mention: Callable[[Contact], str | None] = lambda _p: None) -> str:
        """``值班人员：张伟（@13800000001）``: every addressed person by name, with a mention."""
        if not self.persons:
            return ""
        named = []
        for person in self.persons:
            handle = mention(person)
            named.append(f"{person.name}（{handle}）" if handle else person.name)
        return f"值班人员：{'、'.join(named)}"

    def mobiles(self) -> list[str]:
        return [p.mobile for p in self.persons if p.mobile]

    def emails(self) -> list[str]:
        return [p.email for p in self.persons if p.email]

    def names(self) -> str:
        return "、".join(p.name for p in self.persons)


def position_label(position: str) -> str:
    """The Chinese name of a duty position (``backup``: 备班)."""
    return POSITION_NAMES.get(position, position)


def duration(seconds: int) -> str:
    """``15 分钟``, or ``90 秒`` for waits that are not whole minutes."""
    return f"{seconds // 60} 分钟" if seconds % 60 == 0 and seconds else f"{seconds} 秒"
