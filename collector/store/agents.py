"""Enrolled agents: enrollment, authentication, revocation and the listing the console shows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from agent.events import EnrollRequest, EnrollResponse
from collector import credentials
from collector.errors import NotFoundError
from collector.messages import _
from collector.store.database import Database
from collector.store.tables import agents, sequence_gaps
from collector.store.tokens import spend_token

#: The row the collector's own events (``collector.*``) belong to, since every event names an
#: agent. It can never sign in (its secret digest is not a SHA-256 hex digest) and is revoked
#: from the start, so ingest, the silent monitor and the rollout counts leave it alone.
COLLECTOR_SOURCE_ID: Final = str(uuid.uuid5(uuid.NAMESPACE_URL, "courtguard:collector"))
COLLECTOR_SOURCE_HOST: Final = "courtguard-collector"
#: No SHA-256 hex digest equals this, so no secret authenticates as the collector's row.
_UNMATCHABLE_DIGEST: Final = "-"
_COLLECTOR_SOURCE_REASON: Final = "收集端自身事件（collector.*）的来源，不是终端代理，不能登录"


def ensure_collector_source(conn: Connection, dialect: str, now: datetime) -> str:
    """Make the collector's own row when missing (once across processes); its id."""
    module: Any = postgresql if dialect == "postgresql" else sqlite
    conn.execute(
        module.insert(agents)
        .values(
            id=COLLECTOR_SOURCE_ID, hostname=COLLECTOR_SOURCE_HOST, group="collector",
            enrolled_at=now, secret_hash=_UNMATCHABLE_DIGEST, revoked_at=now,
            revoked_reason=_COLLECTOR_SOURCE_REASON, max_seq=0,
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )
    return COLLECTOR_SOURCE_ID



@dataclass(frozen=True)
class AgentIdentity:
    """Who an authenticated request comes from."""

    id: str
    hostname: str
    revoked: bool
    group: str = "default"
    #: The agent that re-enrolled on this host and took this one's place (then also revoked).
    superseded_by: str | None = None


def enroll(
    db: Database, request: EnrollRequest, now: datetime, policy_key: str | None = None,
    *, supersede: bool = True, client: str | None = None,
) -> EnrollResponse:
    """Spend the token and make the agent in one transaction; raise RefusedError if refused.

    With a host fingerprint, the host's earlier agent of the same group is superseded in the
    same transaction when ``supersede`` allows (``collector.store.host_identity``).
    """
    from collector.store.host_identity import supersede_host

    secret = credentials.new_agent_secret()
    agent_id = uuid.uuid4()
    superseded: str | None = None
    with db.write() as conn:
        token_id, group = spend_token(conn, request.token, now)
        conn.execute(
            insert(agents).values(
                id=str(agent_id), hostname=request.hostname, group=group, os=request.os,
                enrolled_at=now, enrollment_token_id=token_id,
                secret_hash=credentials.digest(secret), agent_version=request.agent_version,
                max_seq=0, host_fingerprint=request.host_fingerprint,
            )
        )
        if request.host_fingerprint is not None:
            superseded = supersede_host(
                conn, db.dialect, new_agent_id=str(agent_id), hostname=request.hostname,
                group=group, fingerprint=request.host_fingerprint, allowed=supersede,
                client=client, now=now,
            )
    return EnrollResponse(
        agent_id=agent_id, secret=secret, group=group, policy_key=policy_key,
        superseded_agent_id=uuid.UUID(superseded) if superseded else None,
    )


def authenticate(db: Database, agent_id: str, secret: str) -> AgentIdentity | None:
    """The agent whose id and secret these are (revoked or not), or None."""
    with db.read() as conn:
        row = conn.execute(
            select(agents.c.id, agents.c.hostname, agents.c.secret_hash, agents.c.revoked_at,
                   agents.c.group, agents.c.superseded_by)
            .where(agents.c.id == agent_id)
        ).first()
    if row is None or not credentials.matches(secret, row.secret_hash):
        return None
    return AgentIdentity(row.id, row.hostname, row.revoked_at is not None, row.group,
                         row.superseded_by)


def revoke(db: Database, agent_id: str, reason: str, now: datetime) -> bool:
    """Revoke the agent; False when it already was. Raise NotFoundError for an unknown id."""
    with db.write() as conn:
        result = conn.execute(
            update(agents)
            .where(agents.c.id == agent_id, agents.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
        )
        if result.rowcount == 1:
            return True
        if conn.execute(select(agents.c.id).where(agents.c.id == agent_id)).first() is None:
            raise NotFoundError(_("no agent with id {id}; see `agent list`").format(id=agent_id))
        return False


def list_agents(db: Database) -> list[dict[str, Any]]:
    """Every agent row with its open-gap count, ordered by hostname."""
    open_gaps = (
        select(sequence_gaps.c.agent_id, func.count().label("open_gaps"))
        .where(sequence_gaps.c.filled_at.is_(None))
        .group_by(sequence_gaps.c.agent_id)
        .subquery()
    )
    query = (
        select(
            agents.c.id, agents.c.hostname, agents.c.group, agents.c.os, agents.c.enrolled_at,
            agents.c.revoked_at, agents.c.revoked_reason, agents.c.last_seen_at,
            agents.c.silent_since, agents.c.agent_version, agents.c.policy_version,
            agents.c.heartbeat_interval_s, agents.c.last_heartbeat, agents.c.max_seq,
            agents.c.superseded_by, agents.c.superseded_at,
            func.coalesce(open_gaps.c.open_gaps, 0).label("open_gaps"),
        )
        .select_from(agents.outerjoin(open_gaps, open_gaps.c.agent_id == agents.c.id))
        .where(agents.c.id != COLLECTOR_SOURCE_ID)
        .order_by(agents.c.hostname, agents.c.id)
    )
    with db.read() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def health_rows(db: Database) -> list[dict[str, Any]]:
    """What /metrics aggregates per agent: liveness, versions, the last heartbeat; no gaps."""
    c = agents.c
    query = select(
        c.id, c.hostname, c.revoked_at, c.last_seen_at, c.silent_since, c.heartbeat_interval_s,
        c.agent_version, c.policy_version, c.last_heartbeat,
    ).where(c.id != COLLECTOR_SOURCE_ID)
    with db.read() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]
