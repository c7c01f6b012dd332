"""Console users: argon2 password hashes, roles, lockout after repeated failures.

Roles: ``admin`` (users, policies, settings, and everything a reviewer does),
``reviewer`` (triage), ``auditor`` (read-only, sees the audit trail), ``clerk``
(书记员: the document check page and its own history, nothing else). Every
change to a user and every sign-in attempt is written to the audit log.

Users are ``local`` (a password kept here; the break-glass admin) or ``ldap``:
a name with no local row is asked of the directory (``[console.ldap]``), and a
directory user gets a row at first sign-in (source ``ldap``, a password hash
that never verifies) whose role and name are set again from the directory at
every sign-in.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import insert, select, update

from collector.errors import CollectorError
from collector.messages import _
from collector.store import audit
from collector.store.audit import Actor
from collector.store.database import Database
from collector.store.tables import console_sessions, users

if TYPE_CHECKING:
    from collector.console.directory import Directory, DirectoryAnswer

ROLES: Final = ("admin", "reviewer", "auditor", "clerk")
USERNAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MIN_PASSWORD: Final = 10
_HASHER: Final = PasswordHasher()
CLI: Final = Actor("cli", via="cli")
#: Stored as the password hash of directory users: not an argon2 hash, so it never verifies.
NO_LOCAL_PASSWORD: Final = "!directory"  # noqa: S105 (a marker, not a password)
#: Verified against when the user does not exist, so both answers take as long.
_DUMMY_HASH: Final = _HASHER.hash(secrets.token_urlsafe(16))


class UserError(CollectorError):
    """A refused user command: unknown user, bad name, weak password."""


@dataclass(frozen=True)
class User:
    id: str
    username: str
    display_name: str
    role: str

    @property
    def label(self) -> str:
        return self.display_name or self.username


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(_("the password must have at least {count} characters")
                        .format(count=MIN_PASSWORD))
    if len(password) > 1024:
        raise UserError(_("the password is longer than {count} characters").format(count=1024))


def create_user(
    db: Database,
    username: str,
    role: str,
    password: str,
    now: datetime,
    *,
    display_name: str = "",
    actor: Actor = CLI,
) -> User:
    if not USERNAME.match(username):
        raise UserError(_("user name {username!r} must be 1-64 letters, digits, '.', '_' or '-'")
                        .format(username=username))
    if role not in ROLES:
        raise UserError(_("role {role!r} is not one of {roles}")
                        .format(role=role, roles=", ".join(ROLES)))
    _check_password(password)
    user = User(str(uuid.uuid4()), username, display_name[:100], role)
    with db.write() as conn:
        if conn.execute(select(users.c.id).where(users.c.username == username)).first():
            raise UserError(_("user {username!r} already exists").format(username=username))
        conn.execute(
            insert(users).values(
                id=user.id,
                username=username,
                display_name=user.display_name,
                role=role,
                password_hash=_HASHER.hash(password),
                created_at=now,
                password_changed_at=now,
            )
        )
        audit.record(conn, actor, "user.create", "user", username, now, to_value=role)
    return user


def list_users(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(select(users).order_by(users.c.username))
        return [
            {
                key: row._mapping[key]
                for key in (
                    "username",
                    "display_name",
                    "role",
                    "created_at",
                    "disabled_at",
                    "failed_logins",
                    "locked_until",
                    "last_login_at",
                    "source",
                )
            }
            for row in rows
        ]


def _require(conn: Any, username: str) -> Any:
    row = conn.execute(select(users).where(users.c.username == username).with_for_update()).first()
    if row is None:
        raise UserError(_("no user {username!r}").format(username=username))
    return row


def set_disabled(
    db: Database,
    username: str,
    disabled: bool,
    now: datetime,
    actor: Actor = CLI,
) -> None:
    """Disable (and sign out) or re-enable a user."""
    with db.write() as conn:
        row = _require(conn, username)
        conn.execute(
            update(users)
            .where(users.c.id == row.id)
            .values(disabled_at=now if disabled else None, failed_logins=0, locked_until=None)
        )
        if disabled:
            conn.execute(console_sessions.delete().where(console_sessions.c.user_id == row.id))
        audit.record(
            conn, actor, "user.disable" if disabled else "user.enable", "user", username, now
        )


def set_password(
    db: Database,
    username: str,
    password: str,
    now: datetime,
    actor: Actor = CLI,
) -> None:
    """Set a new password, clear any lockout and end the user's sessions."""
    _check_password(password)
    with db.write() as conn:
        row = _require(conn, username)
        if row.source != "local":
            raise UserError(_("user {username!r} signs in through the directory: change the "
                              "password there").format(username=username))
        conn.execute(
            update(users)
            .where(users.c.id == row.id)
            .values(
                password_hash=_HASHER.hash(password),
                password_changed_at=now,
                failed_logins=0,
                locked_until=None,
            )
        )
        conn.execute(console_sessions.delete().where(console_sessions.c.user_id == row.id))
        audit.record(conn, actor, "user.password", "user", username, now)


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    #: None on success; else ``invalid`` (unknown user or wrong password), ``locked``,
    #: ``disabled``, and for directory users ``no_role`` and ``unavailable``.
    refusal: str | None = None
    locked_until: datetime | None = None


def authenticate(
    db: Database,
    username: str,
    password: str,
    now: datetime,
    client: str | None,
    *,
    lockout_failures: int,
    lockout: timedelta,
    directory: Directory | None = None,
) -> LoginResult:
    """Check a sign-in; count failures, lock after ``lockout_failures`` in a row, audit each.

    A local row is checked here and never in the directory, so the break-glass admin
    signs in while the directory is down; any other name goes to ``directory``.
    """
    actor = Actor(username[:100] or "-", via="console", client_address=client)
    with db.read() as conn:
        row = conn.execute(select(users).where(users.c.username == username)).first()
    if directory is not None and (row is None or row.source == "ldap"):
        # Directories match names case-insensitively: one row per person, however typed.
        folded = username.lower()
        if folded != username:
            with db.read() as conn:
                row = conn.execute(select(users).where(users.c.username == folded)).first()
        if (row is not None and row.source != "ldap") or not USERNAME.match(folded):
            _audit_login(db, actor, username, now, "invalid")
            return LoginResult(None, "invalid")
        return _directory_sign_in(db, directory, row, folded, password, now, actor)
    if row is not None and row.source == "ldap":  # the directory was configured, and is no more
        _audit_login(db, actor, username, now, "unavailable", "no [console.ldap]")
        return LoginResult(None, "unavailable")
    if row is None:
        _verify(_DUMMY_HASH, password)
        _audit_login(db, actor, username, now, "invalid")
        return LoginResult(None, "invalid")
    if row.disabled_at is not None:
        _audit_login(db, actor, username, now, "disabled")
        return LoginResult(None, "disabled")
    if row.locked_until is not None and row.locked_until > now:
        _audit_login(db, actor, username, now, "locked")
        return LoginResult(None, "locked", row.locked_until)
    if not _verify(row.password_hash, password):
        with db.write() as conn:
            failures = (
                conn.execute(
                    select(users.c.failed_logins).where(users.c.id == row.id).with_for_update()
                ).scalar_one()
                or 0
            ) + 1
            locked_until = now + lockout if failures >= lockout_failures else None
            conn.execute(
                update(users)
                .where(users.c.id == row.id)
                .values(failed_logins=0 if locked_until else failures, locked_until=locked_until)
            )
            audit.record(
                conn,
                actor,
                "user.login_failed",
                "user",
                username,
                now,
                to_value="locked" if locked_until else None,
            )
        if locked_until is not None:
            return LoginResult(None, "locked", locked_until)
        return LoginResult(None, "invalid")
    with db.write() as conn:
        conn.execute(
            update(users)
            .where(users.c.id == row.id)
            .values(failed_logins=0, locked_until=None, last_login_at=now)
        )
        audit.record(conn, actor, "user.login", "user", username, now)
    return LoginResult(User(row.id, row.username, row.display_name, row.role))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _audit_login(db: Database, actor: Actor, username: str, now: datetime, why: str,
                 detail: str | None = None) -> None:
    with db.write() as conn:
        audit.record(
            conn, actor, "user.login_failed", "user", username[:64] or "-", now, reason=why,
            to_value=detail[:200] if detail else None,
        )


def _directory_sign_in(
    db: Database, directory: Directory, row: Any, username: str, password: str,
    now: datetime, actor: Actor,
) -> LoginResult:
    """Ask the directory; on success make or refresh the user's ``ldap`` row and audit it."""
    if row is not None and row.disabled_at is not None:  # disabled in the console
        _audit_login(db, actor, username, now, "disabled")
        return LoginResult(None, "disabled")
    answer = directory.authenticate(username, password)
    if answer.outcome != "ok" or answer.role is None:
        _audit_login(db, actor, username, now, answer.outcome, answer.detail)
        if row is not None and answer.outcome in ("disabled", "no_role"):
            # The directory took the access away: sessions still open end with it.
            with db.write() as conn:
                conn.execute(console_sessions.delete().where(console_sessions.c.user_id == row.id))
        return LoginResult(None, answer.outcome if answer.outcome != "ok" else "no_role")
    return LoginResult(_store_directory_user(db, row, username, answer, now, actor))


def _store_directory_user(db: Database, row: Any, username: str, answer: DirectoryAnswer,
                          now: datetime, actor: Actor) -> User:
    role = answer.role or ""
    display_name = answer.display_name[:100]
    with db.write() as conn:
        if row is None:
            user = User(str(uuid.uuid4()), username, display_name, role)
            conn.execute(insert(users).values(
                id=user.id, username=username, display_name=display_name, role=role,
                password_hash=NO_LOCAL_PASSWORD, created_at=now, source="ldap",
                directory_dn=answer.dn[:500], last_login_at=now,
            ))
            audit.record(conn, actor, "user.create", "user", username, now, to_value=role,
                         reason="ldap")
        else:
            user = User(row.id, username, display_name, role)
            conn.execute(update(users).where(users.c.id == row.id).values(
                display_name=display_name, role=role, directory_dn=answer.dn[:500],
                last_login_at=now, failed_logins=0, locked_until=None,
            ))
            if row.role != role:
                audit.record(conn, actor, "user.role", "user", username, now,
                             from_value=row.role, to_value=role, reason="ldap groups")
        audit.record(conn, actor, "user.login", "user", username, now, reason="ldap")
    return user


def generate_password() -> str:
    return secrets.token_urlsafe(15)
