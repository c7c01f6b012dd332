"""The console over TestClient: every route's access rules, CSRF, sign-in, escaping, filters.

Route and session tests run on SQLite; the data-layer tests (filters that
must not inject SQL, reports, users) run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.routing import Route

from collector.alerts import service
from collector.app import create_app
from collector.console import i18n, reports, users, web
from collector.console.users import UserError
from collector.settings import CollectorSettings
from collector.store import apikeys, migrate
from collector.store.audit import Actor
from collector.store.database import Database
from collector.store.events import EventFilter, query_events
from tests.collector.conftest import POLICIES, TestClient, enroll, event, post_events

PASSWORD = "correct horse battery"  # noqa: S105 (test data)
TEMPLATES = Path(__file__).resolve().parents[2] / "collector" / "console" / "templates"
NOW = datetime.now(UTC)


@pytest.fixture
def console_settings(tmp_path: Path) -> CollectorSettings:
    return CollectorSettings(data_dir=tmp_path / "data", tls=False, policy_dir=POLICIES,
                             silent_check_interval_s=3600, console_login_rate_per_min=1000,
                             database_url=f"sqlite:///{tmp_path / 'console.db'}")


@pytest.fixture
def console_db(console_settings: CollectorSettings) -> Iterator[Database]:
    database = Database.from_settings(console_settings)
    migrate.upgrade(database)
    for name, role in (("admin1", "admin"), ("zhang", "reviewer"), ("li", "auditor")):
        users.create_user(database, name, role, PASSWORD, NOW)
    yield database
    database.dispose()


@pytest.fixture
def app_client(console_settings: CollectorSettings, console_db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(console_settings, console_db)) as test_client:
        yield test_client


def login(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    page = client.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    return client.post("/console/login", data={"username": username, "password": password,
                                               "csrf": token.group(1)}, follow_redirects=False)


def csrf_of(client: TestClient, path: str = "/console/events") -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert match is not None
    return match.group(1)


def console_routes(_client: TestClient) -> list[tuple[str, str]]:
    """Every console route (method, concrete path) except the public ones."""
    public = {"/console", "/console/", "/console/login", "/console/lang/{lang}",
              "/console/static/{name}"}
    found = []
    for route in web.router.routes:
        if isinstance(route, Route) and route.path.startswith("/console") \
                and route.path not in public:
            path = (route.path.replace("{event_id}", "0190a0a0-0000-7000-8000-000000000000")
                    .replace("{alert_id}", "1").replace("{filter_id}", "1"))
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    found.append((method, path))
    return found


# -- access -------------------------------------------------------------------------------------


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
    ("POST", "/console/alerts/action"): {"admin", "reviewer"},
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
    assert service.get_alert(console_db, alert["id"])["status"] == "new"  # type: ignore[index]
    assert [u["username"] for u in users.list_users(console_db)] == ["admin1", "li", "zhang"]
    # the session still works: logout was refused too
    assert app_client.get("/console/events").status_code == 200
    # with the token, the same action goes through
    response = app_client.post("/console/alerts/action", data={
        "ids": str(alert["id"]), "action": "acknowledge", "csrf": csrf_of(app_client),
        "back": "/console/alerts"}, follow_redirects=False)
    assert response.status_code == 303
    assert service.get_alert(console_db, alert["id"])["status"] == "acknowledged"  # type: ignore[index]


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
        assert app_client.get("/api/v1/events", headers=bearer(role)).status_code == 200
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


# -- sign-in --------------------------------------------------------------------------------


def test_lockout_after_repeated_failures(app_client: TestClient, console_db: Database) -> None:
    codes = [login(app_client, "zhang", "wrong password!").status_code for _ in range(5)]
    assert codes == [401, 401, 401, 401, 403]  # the fifth failure locks the account
    locked = login(app_client, "zhang")  # now even the right password is refused
    assert locked.status_code == 403 and "锁定" in locked.text
    users.set_password(console_db, "zhang", PASSWORD, NOW)  # an admin unlocks
    assert login(app_client, "zhang").status_code == 303


def test_login_throttle(console_settings: CollectorSettings, console_db: Database) -> None:
    settings = console_settings.model_copy(update={"console_login_rate_per_min": 3})
    with TestClient(create_app(settings, console_db)) as client:
        codes = [login(client, "nobody", "x" * 12).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]


def test_idle_session_ends(app_client: TestClient, console_db: Database) -> None:
    login(app_client, "zhang")
    assert app_client.get("/console/events").status_code == 200
    with console_db.write() as conn:
        conn.execute(sa.text("UPDATE console_sessions SET last_active_at = :old"),
                     {"old": "2020-01-01 00:00:00.000000"})
    response = app_client.get("/console/events", follow_redirects=False)
    assert response.status_code == 303


def test_disabling_a_user_ends_their_session(app_client: TestClient,
                                             console_db: Database) -> None:
    login(app_client, "zhang")
    users.set_disabled(console_db, "zhang", True, NOW)
    assert app_client.get("/console/events", follow_redirects=False).status_code == 303
    assert login(app_client, "zhang").status_code == 401


def test_open_redirect_refused(app_client: TestClient) -> None:
    page = app_client.get("/console/login?next=https://evil.example/")
    assert 'value="/console/alerts"' in page.text
    response = app_client.get("/console/lang/en?next=//evil.example/", follow_redirects=False)
    assert response.headers["location"] == "/console/alerts"


# -- what pages show --------------------------------------------------------------------------


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


def test_every_template_word_is_translated() -> None:
    used: set[str] = set()
    for path in TEMPLATES.glob("*.html"):
        used.update(re.findall(r'\bt\("([^"]+)"\)', path.read_text()))
    for source in (Path(__file__).resolve().parents[2] / "collector" / "console").glob("*.py"):
        if source.name == "i18n.py":  # its docstring shows the call as an example
            continue
        used.update(re.findall(r'\bt\("([^"]+)"\)', source.read_text()))
    missing = sorted(key for key in used if not i18n.has(key))
    assert missing == []


def test_english_is_available(app_client: TestClient) -> None:
    login(app_client, "zhang")
    assert "<h1>告警</h1>" in app_client.get("/console/alerts").text
    app_client.get("/console/lang/en?next=/console/alerts")
    assert "<h1>Alerts</h1>" in app_client.get("/console/alerts").text


def test_saved_filters(app_client: TestClient) -> None:
    login(app_client, "li")
    response = app_client.post("/console/filters", data={
        "scope": "events", "name": "夜间高危", "query": "min_severity=high&cursor=abc",
        "csrf": csrf_of(app_client)}, follow_redirects=False)
    assert response.status_code == 303
    page = app_client.get("/console/events").text
    assert "夜间高危" in page and "cursor=abc" not in page


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


# -- data layer on both backends ----------------------------------------------------------------


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


def test_report_counts(client: Any, db: Database) -> None:
    agent = enroll(client, db)
    doc = {"file_name": "a.docx", "sha256": "b" * 64, "size": 1, "verdict": "do_not_publish",
           "profile": "p", "action": "block", "basis": "b", "occurrences": [],
           "occurrences_total": 0}
    post_events(client, agent, [
        event(agent.agent_id, 1, kind="document.block", severity="high", evidence=doc),
        event(agent.agent_id, 2, kind="document.block", severity="high", evidence=doc),
        event(agent.agent_id, 3, kind="custom.thing", severity="low", host="=cmd|calc"),
        event(agent.agent_id, 4, severity="info"),
    ])
    alert = service.list_alerts(db, service.AlertFilter(kinds=["document.block"]), 10)[0]
    service.acknowledge(db, alert["id"], Actor("t"))
    today = datetime.now(UTC).date()
    summary = reports.summary(db, reports.period("day", today))
    summary_month = reports.summary(db, reports.period("month", today))
    if summary["events_by_family"]["document"] == 0:  # the events fell on the next Shanghai day
        summary = reports.summary(db, reports.period("day", today + timedelta(days=1)))
    assert summary["documents_blocked"] == 2 and summary["documents_with_findings"] == 1
    assert summary["alerts_opened"] == 2 and summary["alerts_by_status"]["acknowledged"] == 1
    assert summary["acknowledged"] == 1 and summary["ack_minutes_median"] is not None
    assert sum(summary["events_per_day"]["document"]) == 2
    assert summary_month["alerts_opened"] == 2
    text = reports.to_csv(summary)
    assert "top_hosts,'=cmd|calc,1" in text  # a formula from a workstation stays text


def test_users(db: Database) -> None:
    users.create_user(db, "wang", "reviewer", PASSWORD, NOW)
    with pytest.raises(UserError, match="exists"):
        users.create_user(db, "wang", "reviewer", PASSWORD, NOW)
    with pytest.raises(UserError, match="role"):
        users.create_user(db, "zhao", "root", PASSWORD, NOW)
    with pytest.raises(UserError, match="characters"):
        users.create_user(db, "zhao", "admin", "short", NOW)
    with pytest.raises(UserError, match="user name"):
        users.create_user(db, "'; DROP TABLE users; --", "admin", PASSWORD, NOW)
    with db.read() as conn:
        stored = conn.execute(sa.text("SELECT password_hash FROM users")).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    ok = users.authenticate(db, "wang", PASSWORD, NOW, "192.0.2.1", lockout_failures=3,
                            lockout=timedelta(minutes=5))
    assert ok.user is not None and ok.user.role == "reviewer"
