"""What pages show (``collector.console.data``): the same as the JSON API; filters, both stores."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from collector.alerts import service
from collector.store import apikeys
from collector.store.audit import Actor
from collector.store.database import Database
from collector.store.events import EventFilter, query_events
from tests.collector.conftest import TestClient, enroll, event, post_events
from tests.collector.console.conftest import NOW, login


def test_pages_and_api_show_the_same(app_client: TestClient, console_db: Database) -> None:
    agent = enroll(app_client, console_db)
    post_events(app_client, agent, [event(agent.agent_id, i, severity="high") for i in
                                    range(1, 4)])
    key = apikeys.create_api_key(console_db, name="r", role="reviewer", now=NOW)[1]
    api = app_client.get("/api/v1/events?min_severity=high&limit=2",
                         headers={"Authorization": f"Bearer {key}"}).json()
    assert len(api["events"]) == 2 and api["counts"]["high"] == 3 and api["next_cursor"]
    login(app_client, "zhang")
    page = app_client.get("/console/events?min_severity=high&limit=2").text
    for row in api["events"]:
        assert row["id"] in page
    assert "cursor=" in page


@pytest.mark.parametrize("params", [
    {"host": "x' OR '1'='1"}, {"q": "%' UNION SELECT id FROM users --"},
    {"account": "a\"; DROP TABLE events; --"}, {"q": "_"}, {"q": "%"},
])
def test_filters_cannot_inject_sql(client: Any, db: Database, admin: dict[str, str],
                                   params: dict[str, str]) -> None:
    agent = enroll(client, db)
    post_events(client, agent, [event(agent.agent_id, 1, severity="high")])
    for path in ("/api/v1/events", "/api/v1/alerts"):
        response = client.get(path, params=params, headers=admin)
        assert response.status_code == 200, response.text
        assert response.json().get("events", response.json().get("alerts")) == []
    with db.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one() == 1


@pytest.mark.parametrize("params", [
    {"kind": "a;DROP TABLE events"}, {"severity": "1 OR 1=1"}, {"status": "new' --"},
    {"rule_id": "x' OR 1=1"}, {"since": "2026-01-01'; --"}, {"cursor": "e30"},
    {"limit": "0"}, {"agent_id": "1 OR 1=1"},
])
def test_bad_filter_values_are_refused(client: Any, admin: dict[str, str],
                                       params: dict[str, str]) -> None:
    response = client.get("/api/v1/events", params=params, headers=admin)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_request"


def test_event_filters(client: Any, db: Database) -> None:
    agent = enroll(client, db)
    post_events(client, agent, [
        event(agent.agent_id, 1, severity="high", evidence={"note": "a"}),
        event(agent.agent_id, 2, severity="info"),
        event(agent.agent_id, 3, kind="custom.thing", severity="low",
              evidence={"account": "wb_zhang"}),
    ])
    def found(**where: Any) -> int:
        return len(query_events(db, EventFilter(**where), 100, None))

    assert found() == 3
    assert found(account="wb_zhang") == 1
    assert found(statuses=["new"]) == 2  # the info event has no alert
    assert found(text="测试") == 3 and found(text="WS-001") == 3 and found(text="nothing") == 0
    (alert,) = [a for a in service.list_alerts(db, service.AlertFilter(), 10)
                if a["kind"] == "custom.thing"]
    service.close(db, alert["id"], Actor("t"), "other", "x")
    assert found(statuses=["closed"]) == 1
