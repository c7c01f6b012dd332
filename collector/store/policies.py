"""Policy bundle rows: number, insert, find, list, count.

A row holds two signed bodies of one version (the full bundle and the agent
bundle); ``collector.policy.publish`` builds and signs them, this module only
stores and reads them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, or_, select, update

from collector.errors import NotFoundError
from collector.messages import _
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
    #: The agent bundle; None for a bundle stored before migration 0006 (see ``for_agents``).
    agent_sha256: str | None = None
    agent_body: bytes | None = None
    agent_signature: str | None = None

    @property
    def has_agent_body(self) -> bool:
        return self.agent_body is not None

    def for_agents(self) -> AgentBundle:
        """What ``GET /api/v1/policy`` serves: the agent body, or the full one when none."""
        if self.agent_body is None or self.agent_signature is None or self.agent_sha256 is None:
            return AgentBundle(self.version, self.body, self.signature, self.sha256)
        return AgentBundle(self.version, self.agent_body, self.agent_signature, self.agent_sha256)


@dataclass(frozen=True)
class AgentBundle:
    """The signed bytes an agent is served, their signature, and the ETag from their digest."""

    version: int
    body: bytes
    signature: str
    sha256: str

    @property
    def etag(self) -> str:
        return f'"{self.version}-{self.sha256[:16]}"'


def next_version(conn: Connection) -> int:
    """Hand out the next version inside the caller's publishing transaction.

    ``UPDATE ... RETURNING`` takes the counter's row lock, which orders collector
    processes on PostgreSQL (SQLite has one writer anyway); a failed publish
    rolls the counter back with it.
    """
    return int(
        conn.execute(
            update(policy_counter)
            .where(policy_counter.c.id == 1)
            .values(value=policy_counter.c.value + 1)
            .returning(policy_counter.c.value)
        ).scalar_one()
    )


def insert_bundle(conn: Connection, bundle: StoredBundle) -> None:
    """Store one built and signed bundle (``collector.policy.publish`` makes them)."""
    conn.execute(insert(policy_bundles).values(**dataclasses.asdict(bundle)))


def _stored(row: Any) -> StoredBundle:
    return StoredBundle(**dict(row._mapping))


def get_bundle(db: Database, version: int) -> StoredBundle:
    with db.read() as conn:
        row = conn.execute(
            select(policy_bundles).where(policy_bundles.c.version == version)
        ).first()
    if row is None:
        raise NotFoundError(_("no policy version {version}; see `policy status`")
                            .format(version=version))
    return _stored(row)


def latest_for_group(
    db: Database, group: str | None, *, below: int | None = None
) -> StoredBundle | None:
    """The newest bundle meant for ``group``: aimed at it, or at every group (None: only those).

    With ``below``, the newest of those with a lower version.
    """
    only_all = policy_bundles.c.group.is_(None)
    conditions = [only_all if group is None else or_(only_all, policy_bundles.c.group == group)]
    if below is not None:
        conditions.append(policy_bundles.c.version < below)
    query = (
        select(policy_bundles)
        .where(*conditions)
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
            raise NotFoundError(_("no agent with id {id}; see `agent list`").format(id=agent_id))
        conn.execute(update(agents).where(agents.c.id == agent_id).values(group=group))
    return str(previous)
