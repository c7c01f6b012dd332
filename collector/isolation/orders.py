"""Host isolation (一键隔离) on the collector: request, approve, lift; each change a signed order.

One ``host_isolations`` row per request, and one signed ``isolation_orders`` row
per order sent to the agent:

1. ``request`` (admin): with ``isolation_requires_approval`` off, the row is
   ``active`` at once and an ``isolate`` order is signed, expiring ``minutes``
   from now; with it on, the row waits ``pending``, unsigned;
2. ``approve`` (another admin; the requester cannot approve their own): the
   row becomes ``active`` and the ``isolate`` order is signed, expiring
   ``minutes`` from the approval;
3. ``lift`` (admin): an ``active`` row becomes ``lifted`` and a ``lift`` order is
   signed; a ``pending`` one is ``cancelled`` (nothing was sent);
4. an ``active`` row past ``expires_at`` reads as ``expired``: the agent ends
   it by itself at that time, no order needed.

An order is signed with the policy signing key (``collector.policy.signing``,
the key agents pinned) over its canonical bytes (``agent.isolation.order``),
in the transaction that changes the row, with the audit entry
(``isolation.request``, ``.approve``, ``.lift``, ``.cancel``; object
``host_isolation`` / the row id). An ``isolate`` order carries what the host may
still reach: the ``networks`` policy's ``isolation.allow`` networks and its
``resolvers``, as in force at signing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, func, insert, select, update

from agent.detectors.outreach.policy import NetworksPolicy
from agent.isolation.order import MAX_MINUTES, build_order_bytes
from agent.signing import Signer
from collector.store.audit import Actor, record
from collector.store.database import Database
from collector.store.tables import agents, host_isolations, isolation_orders

OBJECT_TYPE: Final = "host_isolation"
MAX_REASON: Final = 500
#: Rows listed per host, newest first.
HISTORY: Final = 20


class IsolationRefused(Exception):
    """A request the isolation rules refuse; ``status`` and ``code`` for the API, ``message``
    in Chinese for the console and the CLI."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Reach:
    """What an isolated host may still reach, from the networks policy in force."""

    allow: tuple[str, ...] = ()
    resolvers: tuple[str, ...] = ()

    @classmethod
    def from_policy(cls, document: object) -> Reach:
        if not isinstance(document, NetworksPolicy):
            return cls()
        return cls(tuple(str(n) for n in document.isolation_allow),
                   tuple(sorted(str(a) for a in document.resolver_set)))


def check_request(minutes: object, reason: object) -> tuple[int, str]:
    """Bounded minutes and a non-empty reason, or IsolationRefused(422) saying which."""
    try:
        value = int(str(minutes).strip())
    except ValueError:
        raise IsolationRefused(422, "invalid_request", "隔离时长须为整数分钟") from None
    if not 1 <= value <= MAX_MINUTES:
        raise IsolationRefused(422, "invalid_request",
                               f"隔离时长须在 1 到 {MAX_MINUTES} 分钟（7 天）之间")
    text = str(reason or "").strip()
    if not text:
        raise IsolationRefused(422, "invalid_request", "请填写隔离原因")
    if len(text) > MAX_REASON or "\x00" in text:
        raise IsolationRefused(422, "invalid_request", f"隔离原因不能超过 {MAX_REASON} 个字符")
    return value, text


def _row(conn: Connection, isolation_id: int) -> Any:
    found = conn.execute(
        select(host_isolations).where(host_isolations.c.id == isolation_id)
    ).first()
    if found is None:
        raise IsolationRefused(404, "not_found", f"没有编号为 {isolation_id} 的隔离记录")
    return found


def _open_row(conn: Connection, agent_id: str, now: datetime) -> Any:
    """The agent's pending or unexpired active isolation, if any."""
    c = host_isolations.c
    for row in conn.execute(select(host_isolations).where(
            c.agent_id == agent_id, c.state.in_(("pending", "active"))).order_by(c.id.desc())):
        if row.state == "pending" or row.expires_at is None or row.expires_at > now:
            return row
    return None


def _sign_order(
    conn: Connection, row: Any, action: str, signer: Signer, now: datetime, reach: Reach,
    reason: str, approved_by: str | None,
) -> int:
    """Insert the order row (its sequence), then sign its bytes into it; return the sequence."""
    order_id = uuid.uuid4()
    placeholder = {"order_id": str(order_id), "isolation_id": row.id, "agent_id": row.agent_id,
                   "action": action, "body": "", "signature": "", "created_at": now}
    sequence = int(conn.execute(
        insert(isolation_orders).values(**placeholder).returning(isolation_orders.c.sequence)
    ).scalar_one())
    body = build_order_bytes(
        order_id=order_id, sequence=sequence, agent_id=uuid.UUID(row.agent_id),
        isolation_id=row.id, action=action, issued_at=now,
        expires_at=now + timedelta(minutes=row.minutes) if action == "isolate" else None,
        reason=reason, requested_by=row.requested_by, approved_by=approved_by,
        allow=list(reach.allow) if action == "isolate" else [],
        resolvers=list(reach.resolvers) if action == "isolate" else [],
    )
    conn.execute(update(isolation_orders).where(isolation_orders.c.sequence == sequence)
                 .values(body=body.decode(), signature=signer.sign(body)))
    return sequence


def request(
    db: Database, signer: Callable[[], Signer], agent_id: str, minutes: object, reason: object,
    actor: Actor, now: datetime, *, requires_approval: bool, reach: Reach,
) -> dict[str, Any]:
    """Step 1 of the module docstring; the new row as ``describe`` gives it."""
    value, text = check_request(minutes, reason)
    try:
        agent_id = str(uuid.UUID(str(agent_id)))
    except ValueError:
        raise IsolationRefused(404, "not_found", "没有该终端") from None
    with db.write() as conn:
        agent = conn.execute(select(agents.c.id, agents.c.revoked_at)
                             .where(agents.c.id == agent_id)).first()
        if agent is None:
            raise IsolationRefused(404, "not_found", "没有该终端")
        if agent.revoked_at is not None:
            raise IsolationRefused(409, "agent_revoked", "该终端已被吊销，无法下发隔离指令")
        existing = _open_row(conn, agent_id, now)
        if existing is not None:
            raise IsolationRefused(
                409, "already_isolated",
                f"该终端已有{'待批准' if existing.state == 'pending' else '生效中'}的隔离"
                f"（编号 {existing.id}），请先解除或等待其结束")
        state = "pending" if requires_approval else "active"
        isolation_id = int(conn.execute(insert(host_isolations).values(
            agent_id=agent_id, state=state, minutes=value, reason=text,
            requested_by=actor.name[:100], requested_at=now,
            expires_at=None if requires_approval else now + timedelta(minutes=value),
        ).returning(host_isolations.c.id)).scalar_one())
        row = _row(conn, isolation_id)
        if not requires_approval:  # a missing key rolls the whole request back
            _sign_order(conn, row, "isolate", signer(), now, reach, text, None)
        record(conn, actor, "isolation.request", OBJECT_TYPE, str(isolation_id), now,
               to_value=f"{state} {value} min agent={agent_id}", reason=text)
        return describe(_row(conn, isolation_id), now)


def approve(
    db: Database, signer: Callable[[], Signer], isolation_id: int, actor: Actor, now: datetime,
    reach: Reach,
) -> dict[str, Any]:
    """Step 2: a second admin approves a pending isolation; the isolate order is signed."""
    with db.write() as conn:
        row = _row(conn, isolation_id)
        if row.state != "pending":
            raise IsolationRefused(409, "not_pending", f"隔离 {isolation_id} 不在待批准状态")
        if row.requested_by == actor.name:
            raise IsolationRefused(403, "own_request",
                                   "不能批准自己提出的隔离，须由另一名管理员批准")
        expires = now + timedelta(minutes=row.minutes)
        conn.execute(update(host_isolations).where(host_isolations.c.id == isolation_id)
                     .values(state="active", approved_by=actor.name[:100], approved_at=now,
                             expires_at=expires))
        row = _row(conn, isolation_id)
        _sign_order(conn, row, "isolate", signer(), now, reach, row.reason, actor.name[:100])
        record(conn, actor, "isolation.approve", OBJECT_TYPE, str(isolation_id), now,
               from_value="pending", to_value="active", reason=row.reason)
        return describe(_row(conn, isolation_id), now)


def lift(
    db: Database, signer: Callable[[], Signer], isolation_id: int, actor: Actor, now: datetime,
    reason: object = "",
) -> dict[str, Any]:
    """Step 3: lift an active isolation (a lift order) or cancel a pending one."""
    text = str(reason or "").strip()[:MAX_REASON] or "管理员解除隔离"
    with db.write() as conn:
        row = _row(conn, isolation_id)
        state = describe(row, now)["state"]
        if state not in ("pending", "active"):
            raise IsolationRefused(409, "not_open",
                                   f"隔离 {isolation_id} 已结束（{STATE_ZH[state]}）")
        ended = "cancelled" if row.state == "pending" else "lifted"
        conn.execute(update(host_isolations).where(host_isolations.c.id == isolation_id)
                     .values(state=ended, ended_by=actor.name[:100], ended_at=now,
                             end_reason=text))
        if ended == "lifted":
            _sign_order(conn, row, "lift", signer(), now, Reach(), text, row.approved_by)
        record(conn, actor, "isolation.lift" if ended == "lifted" else "isolation.cancel",
               OBJECT_TYPE, str(isolation_id), now, from_value=row.state, to_value=ended,
               reason=text)
        return describe(_row(conn, isolation_id), now)


STATE_ZH: Final = {"pending": "待批准", "active": "隔离中", "expired": "已到期",
                   "lifted": "已解除", "cancelled": "已取消"}


def describe(row: Any, now: datetime) -> dict[str, Any]:
    state = row.state
    if state == "active" and row.expires_at is not None and row.expires_at <= now:
        state = "expired"
    return {
        "id": row.id, "agent_id": row.agent_id, "state": state, "state_zh": STATE_ZH[state],
        "minutes": row.minutes, "reason": row.reason, "requested_by": row.requested_by,
        "requested_at": row.requested_at.isoformat(),
        "approved_by": row.approved_by,
        "approved_at": row.approved_at.isoformat() if row.approved_at else None,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "ended_by": row.ended_by, "ended_at": row.ended_at.isoformat() if row.ended_at else None,
        "end_reason": row.end_reason,
    }


def list_isolations(
    db: Database, now: datetime, agent_id: str | None = None, open_only: bool = False,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Newest first; ``open_only``: pending and active (not yet expired) only."""
    c = host_isolations.c
    query = select(host_isolations, agents.c.hostname).join(
        agents, agents.c.id == c.agent_id).order_by(c.id.desc())
    if agent_id is not None:
        query = query.where(c.agent_id == agent_id)
    if open_only:
        query = query.where(c.state.in_(("pending", "active")))
    with db.read() as conn:
        rows = conn.execute(query.limit(limit)).all()
    found = [{**describe(row, now), "hostname": row.hostname} for row in rows]
    if open_only:
        found = [f for f in found if f["state"] in ("pending", "active")]
    return found


def newest_order(db: Database, agent_id: str) -> tuple[bytes, str] | None:
    """The agent's newest signed order (body, signature), what ``GET /api/v1/isolation`` serves."""
    o = isolation_orders.c
    with db.read() as conn:
        row = conn.execute(select(o.body, o.signature).where(o.agent_id == agent_id)
                           .order_by(o.sequence.desc()).limit(1)).first()
    if row is None or not row.signature:
        return None
    return row.body.encode(), row.signature


def newest_sequences(db: Database) -> tuple[int | None, dict[str, int]]:
    """The store's highest order sequence and each agent's newest (for the ingest hint)."""
    o = isolation_orders.c
    with db.read() as conn:
        top = conn.execute(select(func.max(o.sequence))).scalar_one_or_none()
        rows = conn.execute(select(o.agent_id, func.max(o.sequence)).group_by(o.agent_id)).all()
    return top, {agent_id: int(sequence) for agent_id, sequence in rows}


def highest_sequence(db: Database) -> int | None:
    with db.read() as conn:
        value = conn.execute(select(func.max(isolation_orders.c.sequence))).scalar_one_or_none()
    return None if value is None else int(value)
