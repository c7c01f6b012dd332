"""Enrollment tokens: made by an operator, spent by agents when they enroll.

A token is shown once, when made; the table keeps its SHA-256 and a short
prefix so listings can tell tokens apart. Spending is one conditional UPDATE,
so two agents racing for a single-use token cannot both win.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, case, insert, or_, select, update

from collector import credentials
from collector.errors import NotFoundError, RefusedError
from collector.messages import _
from collector.store.database import Database
from collector.store.tables import enrollment_tokens as t


@dataclass(frozen=True)
class NewToken:
    id: str
    token: str  # shown once, never stored
    expires_at: datetime | None


@dataclass(frozen=True)
class TokenInfo:
    id: str
    prefix: str
    group: str
    created_at: datetime
    expires_at: datetime | None
    uses: int
    uses_left: int | None
    revoked_at: datetime | None
    note: str

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        if self.uses_left is not None and self.uses_left <= 0:
            return "exhausted"
        return "active"


def create_token(
    db: Database,
    *,
    group: str,
    now: datetime,
    expires_at: datetime | None,
    uses: int | None,
    note: str = "",
) -> NewToken:
    token = credentials.new_enrollment_token()
    token_id = str(uuid.uuid4())
    with db.write() as conn:
        conn.execute(
            insert(t).values(
                id=token_id, token_hash=credentials.digest(token),
                prefix=credentials.display_prefix(token), group=group, created_at=now,
                expires_at=expires_at, uses_left=uses, uses=0, note=note,
            )
        )
    return NewToken(token_id, token, expires_at)


def list_tokens(db: Database) -> list[TokenInfo]:
    with db.read() as conn:
        rows = conn.execute(
            select(t.c.id, t.c.prefix, t.c.group, t.c.created_at, t.c.expires_at, t.c.uses,
                   t.c.uses_left, t.c.revoked_at, t.c.note).order_by(t.c.created_at)
        )
        return [TokenInfo(*row) for row in rows]


def revoke_token(db: Database, token_id: str, now: datetime) -> None:
    with db.write() as conn:
        result = conn.execute(
            update(t).where(t.c.id == token_id, t.c.revoked_at.is_(None)).values(revoked_at=now)
        )
        if result.rowcount == 0:
            exists = conn.execute(select(t.c.id).where(t.c.id == token_id)).first()
            if exists is None:
                raise NotFoundError(_("no enrollment token with id {id}; see `token list`")
                                    .format(id=token_id))


def spend_token(conn: Connection, token: str, now: datetime) -> tuple[str, str]:
    """Use the token once inside the caller's transaction; return (token id, group).

    Raises RefusedError with invalid_token, token_revoked, token_expired or token_exhausted.
    """
    hashed = credentials.digest(token)
    row = conn.execute(
        select(t.c.id, t.c.token_hash, t.c.group, t.c.expires_at, t.c.uses_left, t.c.revoked_at)
        .where(t.c.token_hash == hashed)
    ).first()
    if row is None or not credentials.matches(token, row.token_hash):
        raise RefusedError("invalid_token", "the enrollment token is not known to this collector")
    if row.revoked_at is not None:
        raise RefusedError("token_revoked", "the enrollment token was revoked; ask for a new one")
    if row.expires_at is not None and row.expires_at <= now:
        raise RefusedError("token_expired", "the enrollment token has expired; ask for a new one")
    spent = conn.execute(
        update(t)
        .where(
            t.c.id == row.id,
            t.c.revoked_at.is_(None),
            or_(t.c.expires_at.is_(None), t.c.expires_at > now),
            or_(t.c.uses_left.is_(None), t.c.uses_left > 0),
        )
        .values(
            uses=t.c.uses + 1,
            uses_left=case((t.c.uses_left.is_(None), None), else_=t.c.uses_left - 1),
        )
    )
    if spent.rowcount != 1:
        raise RefusedError(
            "token_exhausted", "the enrollment token has been used up; ask for a new one"
        )
    return row.id, row.group
