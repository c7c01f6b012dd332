"""The events pages: hostile event fields are shown escaped."""

from __future__ import annotations

from collector.store.database import Database
from tests.collector.conftest import TestClient, enroll, event, post_events
from tests.collector.console.conftest import login


def test_hostile_event_fields_are_escaped(app_client: TestClient, console_db: Database) -> None:
    agent = enroll(app_client, console_db, hostname='ws"><svg onload=alert(1)>')
    payload = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    hostile = event(agent.agent_id, 1, kind="custom.probe", severity="high",
                    host='ws"><svg onload=alert(1)>', rule_id="custom.x",
                    evidence={"account": payload, payload: {"k": payload}})
    hostile["summary"] = payload
    assert post_events(app_client, agent, [hostile]).status_code == 200
    login(app_client, "admin1")
    for path in (f"/console/events/{hostile['id']}", "/console/events", "/console/alerts",
                 "/console/alerts/1", "/console/reports", "/console/agents"):
        page = app_client.get(path)
        assert page.status_code == 200, path
        assert "<script>alert" not in page.text and "<img src=x" not in page.text, path
        assert "<svg onload" not in page.text, path
    detail = app_client.get(f"/console/events/{hostile['id']}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail
    assert "Content-Security-Policy" in app_client.get("/console/events").headers
