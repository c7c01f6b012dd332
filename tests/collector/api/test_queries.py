"""The admin API: the event listing with filters and keyset pagination, and the agent list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from collector.store.database import Database
from tests.collector.conftest import EnrolledAgent, enroll, event, heartbeat, post_events

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _seed(client: Any, who: EnrolledAgent, count: int) -> list[dict[str, Any]]:
    """Events with repeated times (so ties need the id) and alternating kinds and severities."""
    made = [
        event(who.agent_id, seq, time=T0 + timedelta(seconds=seq // 3), host=who.hostname,
              kind="outreach.connection" if seq % 2 else "agent.test",
              severity="high" if seq % 3 == 0 else "low")
        for seq in range(1, count + 1)
    ]
    assert post_events(client, who, made).status_code == 200
    return made


def _walk(client: Any, admin: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get("/api/v1/events", params=query, headers=admin)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += body["events"]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen


def test_pagination_walks_everything_once(client: Any, db: Database, agent: EnrolledAgent,
                                          admin: dict[str, str]) -> None:
    """Pages of 7 return every event exactly once, newest first."""
    made = _seed(client, agent, 50)
    seen = _walk(client, admin, limit=7)
    assert sorted(e["id"] for e in seen) == sorted(e["id"] for e in made)
    keys = [(e["time"], e["id"]) for e in seen]
    assert keys == sorted(keys, reverse=True)


def test_pagination_with_filters(client: Any, db: Database, agent: EnrolledAgent,
                                 admin: dict[str, str]) -> None:
    """Filters hold across pages: kind, min_severity, host and a time window."""
    made = _seed(client, agent, 60)
    other = enroll(client, db, hostname="ws-002")
    _seed(client, other, 10)
    since, until = T0 + timedelta(seconds=2), T0 + timedelta(seconds=15)
    seen = _walk(client, admin, limit=3, kind="outreach.connection", min_severity="high",
                 host=agent.hostname, since=since.isoformat(), until=until.isoformat())
    expected = {
        e["id"] for e in made
        if e["kind"] == "outreach.connection" and e["severity"] == "high"
        and since <= datetime.fromisoformat(e["time"]) < until
    }
    assert expected and {e["id"] for e in seen} == expected and len(seen) == len(expected)


def test_kind_list_and_severity_list(client: Any, db: Database, agent: EnrolledAgent,
                                     admin: dict[str, str]) -> None:
    """kind takes a comma list and severity repeats."""
    _seed(client, agent, 12)
    seen = _walk(client, admin, kind="agent.test,outreach.connection",
                 severity=["low", "high"], agent_id=agent.agent_id)
    assert len(seen) == 12 and "received_at" in seen[0]


def test_hostile_filter_is_just_a_value(client: Any, db: Database, agent: EnrolledAgent,
                                        admin: dict[str, str]) -> None:
    """A host filter with SQL in it matches nothing and breaks nothing."""
    _seed(client, agent, 3)
    response = client.get("/api/v1/events", params={"host": "x' OR '1'='1"}, headers=admin)
    assert response.status_code == 200 and response.json()["events"] == []


def test_invalid_filter_value(client: Any, admin: dict[str, str]) -> None:
    """An unknown severity is refused with 422."""
    response = client.get("/api/v1/events", params={"severity": "urgent"}, headers=admin)
    assert (response.status_code, response.json()["error"]) == (422, "invalid_request")


def test_invalid_cursor(client: Any, admin: dict[str, str]) -> None:
    """A cursor this API did not make is refused with 422."""
    response = client.get("/api/v1/events", params={"cursor": "bm9wZQ"}, headers=admin)
    assert response.status_code == 422


def test_limit_bounded(client: Any, admin: dict[str, str]) -> None:
    """limit above 1000 is refused with 422."""
    assert client.get("/api/v1/events", params={"limit": 1001}, headers=admin).status_code == 422


def test_listing_needs_api_key(client: Any) -> None:
    """Without an API key the listing is refused with 401 missing_credentials."""
    response = client.get("/api/v1/events")
    assert (response.status_code, response.json()["error"]) == (401, "missing_credentials")


def test_listing_refuses_wrong_key(client: Any) -> None:
    """A wrong API key is refused with 401 invalid_credentials."""
    response = client.get("/api/v1/agents", headers={"Authorization": "Bearer cgk_wrong"})
    assert (response.status_code, response.json()["error"]) == (401, "invalid_credentials")


def test_agent_credentials_are_not_an_api_key(client: Any, agent: EnrolledAgent) -> None:
    """An agent's own credentials do not open the admin API."""
    response = client.get("/api/v1/events", headers=agent.headers())
    assert response.status_code == 401


def test_agent_list(client: Any, db: Database, agent: EnrolledAgent,
                    admin: dict[str, str]) -> None:
    """The agent list shows status, heartbeat health and open gaps."""
    never = enroll(client, db, hostname="ws-000")
    post_events(client, agent, [heartbeat(agent.agent_id, 1, spool_depth=9),
                                event(agent.agent_id, 4)])
    views = {a["id"]: a for a in client.get("/api/v1/agents", headers=admin).json()["agents"]}
    mine = views[agent.agent_id]
    assert (mine["status"], mine["spool_depth"], mine["max_seq"], mine["open_gaps"]) == (
        "online", 9, 4, 1)
    assert mine["detectors"] == {"outreach": {"state": "ok"}}
    assert views[never.agent_id]["status"] == "never_seen"
