"""Joining a pass's alerts to their groups, all at once, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
import yaml

from collector.routing.grouping import group_key, join_groups
from collector.routing.matching import Context
from collector.routing.policy import AlertingPolicy, Route
from collector.store.database import Database
from collector.store.tables import notify_group_alerts, notify_groups

SHIPPED = Path(__file__).resolve().parents[3] / "policies" / "alerting.yaml"
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def context(now: datetime) -> Context:
    policy = AlertingPolicy.model_validate(yaml.safe_load(SHIPPED.read_text()))
    return Context(policy, policy.calendar.work_calendar(), now)


def test_a_pass_creates_each_group_once_and_brings_flushes_forward(db: Database) -> None:
    route = Route.model_validate({"name": "duty", "receiver": "duty", "group_by": ["rule_id"],
                                  "group_wait_s": 30, "group_interval_s": 300})
    audit = Route.model_validate({"name": "audit", "receiver": "audit",
                                  "group_by": ["rule_id"], "group_wait_s": 60})
    tamper = {"rule_id": "accounts.tamper"}
    flow = {"rule_id": "outreach.flow"}
    with db.write() as conn:
        # One pass: two alerts of one new group, one alert on two routes.
        join_groups(conn, context(T0), [(route, tamper, 1), (route, tamper, 2),
                                        (audit, tamper, 2), (route, flow, 3)])
    with db.read() as conn:
        groups = {row.key: row for row in conn.execute(sa.select(notify_groups))}
        members = sorted((row.group_key, row.alert_id) for row in
                         conn.execute(sa.select(notify_group_alerts)))
    tamper_key, flow_key = group_key(route, tamper)[0], group_key(route, flow)[0]
    audit_key = group_key(audit, tamper)[0]
    assert set(groups) == {tamper_key, flow_key, audit_key}
    assert groups[tamper_key].flush_at == T0 + timedelta(seconds=30)
    assert groups[audit_key].flush_at == T0 + timedelta(seconds=60)
    assert members == sorted([(tamper_key, 1), (tamper_key, 2), (audit_key, 2), (flow_key, 3)])
    # The tamper group flushed at +40 s; a later pass's alert waits the group interval
    # from that flush, the flow group (never flushed, due at +30 s) keeps its earlier time.
    with db.write() as conn:
        conn.execute(sa.update(notify_groups).where(notify_groups.c.key == tamper_key)
                     .values(last_flush_at=T0 + timedelta(seconds=40), flush_at=None))
        join_groups(conn, context(T0 + timedelta(seconds=50)),
                    [(route, tamper, 4), (route, flow, 5), (route, tamper, 6)])
    with db.read() as conn:
        groups = {row.key: row for row in conn.execute(sa.select(notify_groups))}
        count = conn.execute(sa.select(sa.func.count()).select_from(notify_group_alerts)).scalar()
    assert groups[tamper_key].flush_at == T0 + timedelta(seconds=340)
    assert groups[flow_key].flush_at == T0 + timedelta(seconds=30)
    assert count == 7
