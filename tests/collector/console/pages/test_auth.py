"""Signing in and out: lockout, throttle, idle sessions, disabled users, no open redirect."""

from __future__ import annotations

import sqlalchemy as sa

from collector.app import create_app
from collector.console import users
from collector.settings import CollectorSettings
from collector.store.database import Database
from tests.collector.conftest import TestClient
from tests.collector.console.conftest import NOW, PASSWORD, login


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
    assert 'value="/console/overview"' in page.text
    response = app_client.get("/console/lang/en?next=//evil.example/", follow_redirects=False)
    assert response.headers["location"] == "/console/overview"
