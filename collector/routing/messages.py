"""The alerts a router pass reads, and the notification it writes about them.

A message names the person on duty for its position, if the roster has one,
and gives each alert an acknowledgement link signed for that person.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, select

from agent.events import Severity
from collector.notify.message import AlertItem, Contact, Escalated, Message
from collector.routing.duty import DutyStaff
from collector.routing.links import ack_url
from collector.routing.matching import Context, alert_labels
from collector.store.tables import agents, alerts


@dataclass(frozen=True)
class Links:
    """Where a message's links point, and the key that signs acknowledgement links."""

    base_url: str
    link_key: bytes


def alert_rows(conn: Connection, ids: Iterable[int]) -> dict[int, Any]:
    """The alerts with these ids, each with its agent's group as ``host_group``."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    query = (
        select(alerts, agents.c.group.label("host_group"))
        .select_from(alerts.outerjoin(agents, agents.c.id == alerts.c.agent_id))
        .where(alerts.c.id.in_(wanted))
    )
    return {row.id: row for row in conn.execute(query)}


def compose(ctx: Context, links: Links, receiver: str, reason: str, rows: list[Any],
            staff: DutyStaff | None, position: str | None, key: str | None,
            labels: dict[str, str], escalated: Escalated | None = None) -> Message:
    """The message to ``receiver`` about ``rows``, addressed to who holds ``position`` now."""
    person = staff.person(position) if staff is not None and position else None
    persons = []
    if person is not None and person in ctx.policy.people:
        p = ctx.policy.people[person]
        persons.append(Contact(id=person, name=p.name, mobile=p.mobile, email=p.email,
                               dingtalk_user_id=p.dingtalk_user_id,
                               wecom_user_id=p.wecom_user_id))
    valid = timedelta(seconds=ctx.policy.ack_link_valid_s)
    items = [
        AlertItem(
            id=row.id, fingerprint=row.fingerprint, status=row.status, rule_id=row.rule_id,
            kind=row.kind, severity=Severity.from_rank(row.severity).value, host=row.host,
            account=row.account, title=row.title, count=row.count,
            first_seen=row.first_seen, last_seen=row.last_seen,
            labels={k: v for k, v in alert_labels(row, ctx).items() if v},
            ack_url=(ack_url(links.base_url, links.link_key, row.id, person, ctx.now, valid)
                     if person is not None else None),
            escalated=escalated,
        )
        for row in rows
    ]
    return Message(reason=reason, receiver=receiver, group_key=key, group_labels=labels,
                   position=position, persons=persons, alerts=items,
                   external_url=links.base_url)
