"""Console fixtures: a SQLite collector with one user per role; sign-in and CSRF helpers.

Route and session tests run on SQLite; the data-layer tests use the
``client``/``db`` fixtures and so run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from collector.app import create_app
from collector.console import users
from collector.settings import CollectorSettings
from collector.store import migrate
from collector.store.database import Database
from tests.collector.conftest import POLICIES, TestClient

PASSWORD = "correct horse battery"  # noqa: S105 (test data)
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


