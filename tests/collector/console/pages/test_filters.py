"""Saved filters: saved, listed on their page, deleted."""

from __future__ import annotations

from tests.collector.conftest import TestClient
from tests.collector.console.conftest import csrf_of, login


def test_saved_filters(app_client: TestClient) -> None:
    login(app_client, "li")
    response = app_client.post("/console/filters", data={
        "scope": "events", "name": "夜间高危", "query": "min_severity=high&cursor=abc",
        "csrf": csrf_of(app_client)}, follow_redirects=False)
    assert response.status_code == 303
    page = app_client.get("/console/events").text
    assert "夜间高危" in page and "cursor=abc" not in page
