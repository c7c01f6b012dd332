"""Signed policy bundles in the store: publish (version, sign, insert), find, list, count.

A version comes from ``UPDATE policy_counter SET value = value + 1 RETURNING
value`` inside the publishing transaction: the row lock orders collector
processes on PostgreSQL (SQLite has one writer anyway), so versions are
unique and increasing, and a failed publish leaves no bundle behind (the
counter rolls back with it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, insert, or_, select, update

from agent.policy.bundle import build_bundle_bytes, sha256_hex
from agent.policy.models import PolicyDocument
from collector.errors import NotFoundError
from collector.policy.signing import public_key_b64, register_public_key, sign
from collector.store.database import Database
from collector.store.tables import agents, policy_bundles, policy_counter

_META = (
    policy_bundles.c.version,
    policy_bundles.c.group,
    policy_bundles.c.action,
    policy_bundles.c.source_version,
    policy_bundles.c.created_at,
    policy_bundles.c.author,
    policy_bundles.c.note,
    policy_bundles.c.sha256,
)


@dataclass(frozen=True)
class StoredBundle:
    """A bundle as served: the signed bytes, their signature and what the console shows."""

    version: int
    group: str | None
    action: str
    source_version: int | None
    created_at: datetime
    author: str
    note: str
    sha256: str
    body: bytes = b""
    signature: str = ""
    public_key: str = ""

    @property
    def etag(self) -> str:
        return f'"{self.version}-{self.sha256[:16]}"'


def publish_bundle(
    db: Database,
    documents: Mapping[str, PolicyDocument],
    key: Ed25519PrivateKey,
    *,
    group: str | None,
    author: str,
    note: str,
    created_at: datetime,
    action: str = "publish",
    source_version: int | None = None,
) -> StoredBundle:
    """Number, build, sign and store one bundle in one transaction."""
    public = public_key_b64(key)
    register_public_key(db, public)
    with db.write() as conn:
        version = conn.execute(
            update(policy_counter)
            .where(policy_counter.c.id == 1)
            .values(value=policy_counter.c.value + 1)
            .returning(policy_counter.c.value)
        ).scalar_one()
        body = build_bundle_bytes(
            documents,
            version=version,
            group=group,
            created_at=created_at,
            author=author,
            note=note,
            action=action,
            source_version=source_version,
        )
        stored = StoredBundle(
            version=version,
            group=group,
            action=action,
            source_version=source_version,
            created_at=created_at,
            author=author,
            note=note,
            sha256=sha256_hex(body),
            body=body,
            signature=sign(key, body),
            public_key=public,
        )
        conn.execute(insert(policy_bundles).values(**dataclasses.asdict(stored)))
    return stored


def _stored(row: Any) -> StoredBundle:
    return StoredBundle(**dict(row._mapping))


def get_bundle(db: Database, version: int) -> StoredBundle:
    with db.read() as conn:
        row = conn.execute(
            select(policy_bundles).where(policy_bundles.c.version == version)
        ).first()
    if row is None:
        raise NotFoundError(f"no policy version {version}; see `policy status`")
    return _stored(row)


def latest_for_group(db: Database, group: str | None) -> StoredBundle | None:
    """The newest bundle meant for ``group``: aimed at it, or at every group (None: only those)."""
    only_all = policy_bundles.c.group.is_(None)
    query = (
        select(policy_bundles)
        .where(only_all if group is None else or_(only_all, policy_bundles.c.group == group))
        .order_by(policy_bundles.c.version.desc())
        .limit(1)
    )
    with db.read() as conn:
        row = conn.execute(query).first()
    return None if row is None else _stored(row)


def latest_version(db: Database) -> int:
    """The last version handed out (0 before the first publish): one primary-key read."""
    with db.read() as conn:
        value = conn.execute(
            select(policy_counter.c.value).where(policy_counter.c.id == 1)
        ).scalar_one_or_none()
    return int(value or 0)


def list_bundles(db: Database) -> list[StoredBundle]:
    """Every bundle's metadata, newest first (no bodies)."""
    with db.read() as conn:
        rows = conn.execute(select(*_META).order_by(policy_bundles.c.version.desc())).all()
    return [_stored(row) for row in rows]


def agents_by_policy_version(db: Database) -> list[tuple[str, str | None, int]]:
    """(group, applied policy version, agents) over unrevoked agents."""
    query = (
        select(agents.c.group, agents.c.policy_version, func.count())
        .where(agents.c.revoked_at.is_(None))
        .group_by(agents.c.group, agents.c.policy_version)
        .order_by(agents.c.group, agents.c.policy_version)
    )
    with db.read() as conn:
        return [(row[0], row[1], int(row[2])) for row in conn.execute(query)]


def set_agent_group(db: Database, agent_id: str, group: str) -> str:
    """Move an agent to ``group``; return its previous group."""
    with db.write() as conn:
        previous = conn.execute(
            select(agents.c.group).where(agents.c.id == agent_id).with_for_update()
        ).scalar_one_or_none()
        if previous is None:
            raise NotFoundError(f"no agent with id {agent_id}; see `agent list`")
        conn.execute(update(agents).where(agents.c.id == agent_id).values(group=group))
    return str(previous)
