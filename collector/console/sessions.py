"""Console sessions: a random token in an HttpOnly cookie, its SHA-256 in the store.

A session ends after ``console_idle_timeout_s`` without a request, after
``console_session_max_s`` in any case, on sign-out, and when the user is
disabled or gets a new password. Each session has its own CSRF token, which
every form carries and every POST must echo.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import delete, insert, select, update

from collector import credentials
from collector.console.users import User
from collector.store.database import Database
from collector.store.tables import console_sessions, users

#: last_active_at is written at most this often, so reading pages does not write every time.
TOUCH_EVERY: Final = timedelta(seconds=30)


@dataclass(frozen=True)
class Session:
    user: User
    csrf_token: str
    token_hash: str

    def csrf_ok(self, presented: str | None) -> bool:
        return bool(presented) and credentials.same(self.csrf_token, presented or "")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_session(db: Database, user: User, now: datetime, client: str | None) -> str:
    """Start a session; return the token for the cookie (shown nowhere else)."""
    token = secrets.token_urlsafe(32)
    with db.write() as conn:
        conn.execute(
            insert(console_sessions).values(
                token_hash=_digest(token),
                user_id=user.id,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                last_active_at=now,
                client_address=client,
            )
        )
    return token


def load_session(
    db: Database, token: str | None, now: datetime, *, idle: timedelta, maximum: timedelta
) -> Session | None:
    """The live session of ``token``, touched; None (and the row gone) when it expired."""
    if not token or len(token) > 200:
        return None
    token_hash = _digest(token)
    s, u = console_sessions.c, users.c
    with db.read() as conn:
        row = conn.execute(
            select(
                s.csrf_token,
                s.created_at,
                s.last_active_at,
                u.id,
                u.username,
                u.display_name,
                u.role,
                u.disabled_at,
            )
            .join(users, users.c.id == s.user_id)
            .where(s.token_hash == token_hash)
        ).first()
    if row is None:
        return None
    if (
        row.disabled_at is not None
        or now - row.last_active_at > idle
        or now - row.created_at > maximum
    ):
        end_session(db, token)
        return None
    if now - row.last_active_at > TOUCH_EVERY:
        with db.write() as conn:
            conn.execute(
                update(console_sessions)
                .where(s.token_hash == token_hash)
                .values(last_active_at=now)
            )
    return Session(
        User(row.id, row.username, row.display_name, row.role), row.csrf_token, token_hash
    )


def end_session(db: Database, token: str) -> None:
    with db.write() as conn:
        conn.execute(
            delete(console_sessions).where(console_sessions.c.token_hash == _digest(token))
        )
