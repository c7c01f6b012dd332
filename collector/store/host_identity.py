"""One identity per host: a re-enrolled host supersedes its earlier agent, and says so.

An agent enrolls with a host fingerprint (``agent.host_identity``). Inside the
enrollment's transaction:

1. find the host's current agents: same fingerprint, neither revoked nor superseded;
2. when the new agent's group is theirs and the collector allows superseding, mark each
   ``superseded_by`` the new agent and revoke it, so its credentials answer 401
   ``agent_superseded`` and the silent check leaves it alone; record ``agent.superseded``;
3. otherwise enroll beside them and record ``agent.host_conflict`` (high), so the security
   team sees a second identity claiming a host it did not replace.

The threat: a group token is shared by every machine of the group, so whoever holds it can
claim any fingerprint of that group. Superseding therefore never crosses groups, and every
supersession is an event with the new agent's address, on the host's page and in the alerts;
a court that wants no automatic supersession sets ``supersede_same_host = false``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, select, update

from agent.events import Event, Severity
from collector.store.events import insert_event
from collector.store.tables import agents

SUPERSEDED_KIND: Final = "agent.superseded"
CONFLICT_KIND: Final = "agent.host_conflict"
#: Event ids derive from the new agent's id, so a retried transaction stores each once.
_EVENT_NAMESPACE: Final = uuid.UUID("6f1d8f8e-4b7e-5c43-9a52-2f9c3c1d0e13")


def supersede_host(
    conn: Connection,
    dialect: str,
    *,
    new_agent_id: str,
    hostname: str,
    group: str,
    fingerprint: str,
    allowed: bool,
    client: str | None,
    now: datetime,
) -> str | None:
    """Apply the module docstring's steps for a just-inserted agent; the superseded id or None."""
    # 1. the host's current identities
    current = conn.execute(
        select(agents.c.id, agents.c.hostname, agents.c.group)
        .where(agents.c.host_fingerprint == fingerprint, agents.c.id != new_agent_id,
               agents.c.revoked_at.is_(None), agents.c.superseded_by.is_(None))
        .order_by(agents.c.enrolled_at)
    ).all()
    if not current:
        return None
    superseded: str | None = None
    for row in current:
        if allowed and row.group == group:
            # 2. the conditions repeat the select's, so two racing enrollments take it once
            taken = conn.execute(
                update(agents)
                .where(agents.c.id == row.id, agents.c.revoked_at.is_(None),
                       agents.c.superseded_by.is_(None))
                .values(superseded_by=new_agent_id, superseded_at=now, revoked_at=now,
                        revoked_reason=f"已被同一主机重新注册的代理 {new_agent_id} 取代")
            ).rowcount
            if taken:
                superseded = row.id
                _record(conn, dialect, SUPERSEDED_KIND, Severity.MEDIUM, new_agent_id, hostname,
                        now,
                        f"主机 {hostname} 重新注册：代理 {row.id} 已被新代理 {new_agent_id} 取代，"
                        "旧身份的凭据随即失效；如该主机并未重装，请核查注册令牌是否泄露",
                        {"previous_agent_id": row.id, "previous_hostname": row.hostname,
                         "group": group, "client": client})
            continue
        # 3. a second identity for a host it may not replace
        why = "不同分组之间不取代" if row.group != group else "收集端设置不允许自动取代"
        _record(conn, dialect, CONFLICT_KIND, Severity.HIGH, new_agent_id, hostname, now,
                f"主机指纹冲突：新代理 {new_agent_id}（分组 {group}）与现有代理 {row.id}"
                f"（主机 {row.hostname}，分组 {row.group}）指纹相同，{why}，两者并存；"
                "请核实是否为克隆机器或冒用",
                {"existing_agent_id": row.id, "existing_hostname": row.hostname,
                 "existing_group": row.group, "group": group, "client": client})
    return superseded


def _record(conn: Connection, dialect: str, kind: str, severity: Severity, agent_id: str,
            hostname: str, now: datetime, summary: str, evidence: dict[str, Any]) -> None:
    other_id = evidence.get("previous_agent_id") or evidence.get("existing_agent_id")
    event = Event(
        id=uuid.uuid5(_EVENT_NAMESPACE, f"{kind}/{agent_id}/{other_id}"),
        seq=None, time=now, agent_id=uuid.UUID(agent_id), host=hostname, kind=kind,
        severity=severity, rule_id=None, policy_version=None, summary=summary[:500],
        evidence={k: v for k, v in evidence.items() if v is not None},
    )
    insert_event(conn, dialect, event, now)


def identity_chain(conn: Connection, agent_id: str) -> dict[str, list[dict[str, Any]]]:
    """``{predecessors, successors}`` of an agent, nearest first, each an id with its dates."""
    columns = (agents.c.id, agents.c.hostname, agents.c.enrolled_at, agents.c.superseded_at,
               agents.c.superseded_by)
    predecessors: list[dict[str, Any]] = []
    seen = {agent_id}
    frontier = [agent_id]
    # Breadth-first over superseded_by: a host re-imaged n times has a chain of n rows.
    while frontier:
        rows = conn.execute(select(*columns).where(agents.c.superseded_by.in_(frontier))
                            .order_by(agents.c.enrolled_at.desc())).all()
        frontier = []
        for row in rows:
            if row.id not in seen:
                seen.add(row.id)
                predecessors.append(dict(row._mapping))
                frontier.append(row.id)
    successors: list[dict[str, Any]] = []
    following = conn.execute(select(agents.c.superseded_by)
                             .where(agents.c.id == agent_id)).scalar()
    while following is not None and following not in seen:
        seen.add(following)
        later = conn.execute(select(*columns).where(agents.c.id == following)).first()
        if later is None:
            break
        successors.append(dict(later._mapping))
        following = later.superseded_by
    return {"predecessors": predecessors, "successors": successors}
