"""Console users: create, roles, passwords (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from collector.console import users
from collector.console.users import UserError
from collector.store.database import Database
from tests.collector.console.conftest import NOW, PASSWORD


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
