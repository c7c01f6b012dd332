"""Signed policy bundles in the store: publish (version, sign, insert), find, list, count.

Each version is stored as two signed bodies with the same version, group and
metadata: the full bundle, which the collector acts on (``CurrentPolicy``,
promote, rollback), and the agent bundle, which holds only the kinds agents
read (``PolicyDocument.AGENT_READS``) and is what agents are served, so
collector-only data (the duty roster's contacts) never reaches a workstation.

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
from agent.policy.models import PolicyDocument, agent_documents
from collector.errors import CollectorError, NotFoundError
from collector.policy.signing import public_key_b64, register_public_key, sign
from collector.store import audit
from collector.store.audit import Actor
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
    actor: Actor | None = None,
) -> StoredBundle:
    """Number, build, sign and store one bundle (full and agent bodies) in one transaction.

    With ``actor``, the audit log gets ``policy.<action>`` in the same transaction.
    """
    for_agents = agent_documents(documents)
    if not for_agents:
        raise CollectorError(
            f"策略只包含收集端读取的类型（{'、'.join(sorted(documents))}），没有代理读取的类型，"
            "代理无法使用；请与 agent.yaml 等代理策略文件一起发布"
        )
    public = public_key_b64(key)
    register_public_key(db, public)
    with db.write() as conn:
        version = conn.execute(
            update(policy_counter)
            .where(policy_counter.c.id == 1)
            .values(value=policy_counter.c.value + 1)
            .returning(policy_counter.c.value)
        ).scalar_one()
        meta: dict[str, Any] = {
            "version": version,
            "group": group,
            "created_at": created_at,
            "author": author,
            "note": note,
            "action": action,
            "source_version": source_version,
        }
        body = build_bundle_bytes(documents, **meta)
        agent_body = build_bundle_bytes(for_agents, with_cases=False, **meta)
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
            agent_sha256=sha256_hex(agent_body),
            agent_body=agent_body,
            agent_signature=sign(key, agent_body),
        )
        conn.execute(insert(policy_bundles).values(**dataclasses.asdict(stored)))
        if actor is not None:
            audit.record(
                conn, actor, f"policy.{action}", "policy", str(version), created_at,
                from_value=None if source_version is None else str(source_version),
                to_value=group or "*", reason=note or None,
            )
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
            raise NotFoundError(f"no agent with id {agent_id}; see `agent list`")
        conn.execute(update(agents).where(agents.c.id == agent_id).values(group=group))
    return str(previous)
