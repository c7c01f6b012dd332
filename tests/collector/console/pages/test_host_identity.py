"""The host and agents pages show one identity per host and link its earlier identities."""

from __future__ import annotations

import hashlib

from collector.store.database import Database
from tests.collector.conftest import TestClient, make_token
from tests.collector.console.conftest import login

FINGERPRINT = hashlib.sha256(b"ws-001 board").hexdigest()


def _enroll(client: TestClient, token: str) -> str:
    response = client.post("/api/v1/enroll", json={
        "token": token, "hostname": "ws-001", "agent_version": "0.1.0",
        "host_fingerprint": FINGERPRINT})
    assert response.status_code == 201, response.text
    agent_id: str = response.json()["agent_id"]
    return agent_id


def test_host_pages_link_both_identities(app_client: TestClient, console_db: Database) -> None:
    """The current host page lists the earlier identity; the earlier one says it was replaced."""
    token = make_token(console_db)
    old = _enroll(app_client, token)
    new = _enroll(app_client, token)
    login(app_client, "li")
    current = app_client.get(f"/console/hosts/{new}").text
    assert 'id="host-identities"' in current and f'href="/console/hosts/{old}"' in current
    assert "旧身份" in current
    earlier = app_client.get(f"/console/hosts/{old}").text
    assert 'id="host-superseded"' in earlier and f'href="/console/hosts/{new}"' in earlier
    assert "已被取代" in earlier


def test_agents_page_lists_the_host_once(app_client: TestClient, console_db: Database) -> None:
    """The agents page has one row for the host, marked with its earlier identity."""
    token = make_token(console_db)
    old = _enroll(app_client, token)
    new = _enroll(app_client, token)
    login(app_client, "li")
    page = app_client.get("/console/agents").text
    assert page.count(">ws-001</a>") == 1
    assert f"agent_id={new}" in page and f"agent_id={old}" not in page
    assert "另有 1 个旧身份" in page
