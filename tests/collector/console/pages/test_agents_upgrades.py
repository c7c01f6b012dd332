"""The agents page shows each agent's version and a failed signed upgrade, escaped."""

from __future__ import annotations

from datetime import UTC, datetime

from collector.releases import store
from collector.store.database import Database
from tests.collector.conftest import TestClient, enroll, heartbeat, post_events
from tests.collector.console.conftest import login


def test_a_failed_upgrade_shows_until_the_agent_runs_that_version(
    app_client: TestClient, console_db: Database,
) -> None:
    agent = enroll(app_client, console_db, hostname="ws-upgrade")
    post_events(app_client, agent, [heartbeat(agent.agent_id, 1, agent_version="0.13.0")])
    store.record_progress(console_db, agent.agent_id, "0.14.0", "failed", datetime.now(UTC),
                          reason_code="not_healthy", reason='<b>新版本未在 120 秒内报告正常</b>')
    login(app_client, "admin1")
    page = app_client.get("/console/agents").text
    assert "0.13.0" in page and "升级至 0.14.0 失败" in page
    assert "<b>新版本" not in page and "&lt;b&gt;新版本" in page
    post_events(app_client, agent, [heartbeat(agent.agent_id, 2, agent_version="0.14.0")])
    page = app_client.get("/console/agents").text
    assert "升级至 0.14.0 失败" not in page and "0.14.0" in page
