"""The account correlation pass over a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from collector.correlation.account_pass import AccountPass, window_start
from collector.metrics import Metrics
from collector.settings import CollectorSettings
from collector.store.database import Database
from tests.collector.conftest import POLICIES, EnrolledAgent, enroll, event, post_events

NOW = datetime.now(UTC).replace(microsecond=0)


def session(agent: EnrolledAgent, seq: int, at: datetime, action: str, sid: str) -> dict[str, Any]:
    return event(
        agent.agent_id,
        seq,
        kind="account.session",
        severity="info",
        host=agent.hostname,
        time=at,
        rule_id="accounts.session",
        evidence={
            "account": "wb_zhang",
            "role": "maintenance",
            "sponsor": "王强",
            "action": action,
            "session_id": sid,
            "source": "logind",
        },
    )


def _rules(db: Database) -> list[tuple[str, str]]:
    with db.read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT rule_id, host FROM events WHERE kind IN "
                "('account.shared', 'account.first_seen', 'account.daily_score') "
                "ORDER BY rule_id, host"
            )
        ).all()
    return [(r[0], r[1]) for r in rows]


def test_shared_account_and_first_sightings_once_across_passes_and_processes(
    client: Any, db: Database, settings: CollectorSettings
) -> None:
    """Two hosts, overlapping 10 minutes: one shared-account event, however many passes run."""
    first, second = enroll(client, db, "ws-it-01"), enroll(client, db, "ws-it-02")
    start = NOW - timedelta(minutes=12)
    assert post_events(client, first, [session(first, 1, start, "open", "3")]).status_code == 200
    assert (
        post_events(
            client, second, [session(second, 1, start + timedelta(minutes=1), "open", "9")]
        ).status_code
        == 200
    )
    one = AccountPass(db, Metrics(), POLICIES, 60)
    other = AccountPass(db, Metrics(), POLICIES, 60)  # a second collector process
    made = one.check(NOW)
    assert sorted(e.rule_id or "" for e in made) == [
        "accounts.first-seen-host",
        "accounts.first-seen-host",
        "accounts.shared-account",
    ]
    shared = next(e for e in made if e.rule_id == "accounts.shared-account")
    assert shared.evidence["hosts"] == ["ws-it-01", "ws-it-02"]
    assert "共用" in shared.summary
    assert other.check(NOW) == [] and one.check(NOW + timedelta(minutes=1)) == []
    assert _rules(db) == [
        ("accounts.first-seen-host", "ws-it-01"),
        ("accounts.first-seen-host", "ws-it-02"),
        ("accounts.shared-account", "ws-it-02"),
    ]


def test_closed_overlap_is_not_shared(client: Any, db: Database) -> None:
    """A session closed two minutes after the other host's opened is not sharing."""
    first, second = enroll(client, db, "ws-it-01"), enroll(client, db, "ws-it-02")
    start = NOW - timedelta(minutes=12)
    post_events(client, first, [session(first, 1, start, "open", "3")])
    post_events(
        client,
        second,
        [
            session(second, 1, start + timedelta(minutes=1), "open", "9"),
            session(second, 2, start + timedelta(minutes=3), "close", "9"),
        ],
    )
    made = AccountPass(db, Metrics(), POLICIES, 60).check(NOW)
    assert "accounts.shared-account" not in {e.rule_id for e in made}


def test_daily_score_from_stored_findings(client: Any, db: Database) -> None:
    """An evening login on a strange host plus a first sighting crosses the threshold once."""
    host = enroll(client, db, "ws-judge-07")
    at = NOW - timedelta(minutes=5)
    evidence = {"account": "wb_li", "local_time": "x", "day_kind": "workday"}
    post_events(
        client,
        host,
        [
            event(
                host.agent_id,
                1,
                kind="account.login",
                severity="medium",
                host=host.hostname,
                time=at,
                rule_id="accounts.login-outside-hours",
                evidence=evidence,
            ),
            event(
                host.agent_id,
                2,
                kind="account.login",
                severity="high",
                host=host.hostname,
                time=at,
                rule_id="accounts.login-unassigned-host",
                evidence=evidence,
            ),
        ],
    )
    pass_ = AccountPass(db, Metrics(), POLICIES, 60)
    made = pass_.check(NOW)
    (score,) = [e for e in made if e.rule_id == "accounts.daily-score"]
    assert score.evidence["score"] == 5
    assert pass_.check(NOW) == []


def test_window_reaches_back_to_shanghai_midnight() -> None:
    """At 06:00 in Shanghai the window starts 12 h back; at 20:00 at local midnight."""
    early = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)  # 06:00 Shanghai
    assert window_start(early) == early - timedelta(hours=12)
    late = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # 20:00 Shanghai
    assert window_start(late) == datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
