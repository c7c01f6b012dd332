"""The console's route table: every route's access rules and CSRF, pages and JSON API alike."""

from __future__ import annotations

import pytest
from starlette.routing import Route

from collector.alerts import service
from collector.console import users, web
from collector.store import apikeys
from collector.store.database import Database
from tests.collector.conftest import TestClient, enroll, event, post_events
from tests.collector.console.conftest import NOW, PASSWORD, csrf_of, login


def console_routes(_client: TestClient) -> list[tuple[str, str]]:
    """Every console route (method, concrete path) except the public ones."""
    public = {"/console", "/console/", "/console/login", "/console/lang/{lang}",
              "/console/static/{name}"}
    found = []
    for route in web.router.routes:
        if isinstance(route, Route) and route.path.startswith("/console") \
                and route.path not in public:
            path = (route.path.replace("{event_id}", "0190a0a0-0000-7000-8000-000000000000")
                    .replace("{alert_id}", "1").replace("{filter_id}", "1")
                    .replace("{token}", "x"))
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    found.append((method, path))
    return found


def test_every_route_needs_a_session(app_client: TestClient) -> None:
    routes = console_routes(app_client)
    assert len(routes) >= 15
    for method, path in routes:
        response = app_client.request(method, path, follow_redirects=False)
        if method == "GET":
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/console/login?next="), path
        else:
            assert response.status_code in (401, 403), (method, path)


#: Which roles may use which route; everything not listed is open to every role.


RESTRICTED = {
    ("GET", "/console/audit"): {"admin", "auditor"},
    ("GET", "/console/policies"): {"admin", "auditor"},
    ("GET", "/console/users"): {"admin"},
    ("POST", "/console/users"): {"admin"},
    ("POST", "/console/hosts/{agent_id}/isolation"): {"admin"},
    ("POST", "/console/alerts/action"): {"admin", "reviewer"},
    ("GET", "/console/doccheck"): {"admin", "reviewer", "clerk"},
    ("POST", "/console/doccheck"): {"admin", "reviewer", "clerk"},
    ("GET", "/console/doccheck/result"): {"admin", "reviewer", "clerk"},
    ("POST", "/console/doccheck/decide"): {"admin", "reviewer", "clerk"},
    ("GET", "/console/doccheck/download/x"): {"admin", "reviewer", "clerk"},
}


@pytest.mark.parametrize("username,role", [("zhang", "reviewer"), ("li", "auditor")])
def test_roles_are_checked_on_every_route(app_client: TestClient, username: str,
                                          role: str) -> None:
    assert login(app_client, username).status_code == 303
    csrf = csrf_of(app_client)
    for method, path in console_routes(app_client):
        allowed = RESTRICTED.get((method, path))
        if allowed is None or role in allowed or path == "/console/logout":
            continue
        response = app_client.request(method, path, data={"csrf": csrf},
                                      follow_redirects=False)
        assert response.status_code == 403, (role, method, path)


def test_posts_without_the_csrf_token_are_refused(app_client: TestClient,
                                                  console_db: Database) -> None:
    agent = enroll(app_client, console_db)
    post_events(app_client, agent, [event(agent.agent_id, 1, severity="high")])
    (alert,) = service.list_alerts(console_db, service.AlertFilter(), 10)
    login(app_client, "admin1")
    for path, data in (
        ("/console/alerts/action", {"ids": str(alert["id"]), "action": "acknowledge"}),
        ("/console/users", {"op": "create", "username": "x1", "role": "admin",
                            "password": PASSWORD}),
        ("/console/filters", {"scope": "events", "name": "n", "query": "host=a"}),
        ("/console/logout", {}),
    ):
        for token in (None, "forged-token"):
            body = dict(data) if token is None else {**data, "csrf": token}
            response = app_client.post(path, data=body, follow_redirects=False)
            assert response.status_code == 403, (path, token)
    assert (service.get_alert(console_db, alert["id"]) or {}).get("status") == "new"
    assert [u["username"] for u in users.list_users(console_db)] == ["admin1", "li", "zhang"]
    # the session still works: logout was refused too
    assert app_client.get("/console/events").status_code == 200
    # with the token, the same action goes through
    response = app_client.post("/console/alerts/action", data={
        "ids": str(alert["id"]), "action": "acknowledge", "csrf": csrf_of(app_client),
        "back": "/console/alerts"}, follow_redirects=False)
    assert response.status_code == 303
    assert (service.get_alert(console_db, alert["id"]) or {}).get("status") == "acknowledged"


def test_json_api_roles_and_csrf(app_client: TestClient, console_db: Database) -> None:
    keys = {role: apikeys.create_api_key(console_db, name=role, role=role, now=NOW)[1]
            for role in apikeys.ROLES}
    agent = enroll(app_client, console_db)
    post_events(app_client, agent, [event(agent.agent_id, 1, severity="high")])
    (alert,) = service.list_alerts(console_db, service.AlertFilter(), 10)

    def bearer(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {keys[role]}"}

    assert app_client.get("/api/v1/alerts").status_code == 401
    assert app_client.get("/api/v1/alerts", headers={"Authorization": "Bearer nope"}
                          ).status_code == 401
    for role in apikeys.ROLES:
        expected = 403 if role == "clerk" else 200  # a clerk only checks documents
        assert app_client.get("/api/v1/events", headers=bearer(role)).status_code == expected
    assert app_client.get("/api/v1/audit", headers=bearer("reviewer")).status_code == 403
    assert app_client.get("/api/v1/audit", headers=bearer("auditor")).status_code == 200
    refused = app_client.post("/api/v1/alerts/acknowledge", json={"ids": [alert["id"]]},
                              headers=bearer("auditor"))
    assert refused.status_code == 403
    # a session needs X-CSRF-Token on the JSON API too
    login(app_client, "zhang")
    assert app_client.post("/api/v1/alerts/acknowledge", json={"ids": [alert["id"]]}
                           ).status_code == 403
    done = app_client.post("/api/v1/alerts/acknowledge", json={"ids": [alert["id"]]},
                           headers={"X-CSRF-Token": csrf_of(app_client)})
    assert done.status_code == 200 and done.json()["outcomes"][0]["ok"]
    entries = app_client.get("/api/v1/audit", headers=bearer("auditor")).json()["entries"]
    assert entries[0]["actor"] == "zhang" and entries[0]["action"] == "alert.acknowledge"
