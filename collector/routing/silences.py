"""Silences: matchers over alert labels, a mandatory end and comment, every change audited.

A matcher is ``{label, value}``; ``value`` may use shell wildcards (``ws-it-*``).
A silence mutes the alerts all its matchers cover from ``starts_at`` to
``ends_at``; it is never deleted, only expired early (``expire``), and both
creating and expiring write the audit log in the same transaction.
"""

from __future__ import annotations

import fnmatch
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from collector.errors import CollectorError
from collector.messages import _
from collector.routing.policy import Label
from collector.store import audit
from collector.store.audit import Actor
from collector.store.database import Database
from collector.store.tables import silences

#: No silence may last longer: an open-ended silence is how alerts get lost.
MAX_DURATION: Final = timedelta(days=30)


class SilenceError(CollectorError):
    """A refused silence; the message says what to change."""


class Matcher(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: Label
    value: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class SilenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    matchers: list[Matcher] = Field(min_length=1, max_length=20)
    ends_at: datetime
    starts_at: datetime | None = None
    comment: Annotated[str, StringConstraints(strip_whitespace=True, min_length=4,
                                              max_length=2000)]


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: list[dict[str, str]]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime
    expired_at: datetime | None
    expired_by: str | None

    def active(self, now: datetime) -> bool:
        end = min(self.ends_at, self.expired_at) if self.expired_at else self.ends_at
        return self.starts_at <= now < end

    def public(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id, "matchers": self.matchers, "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(), "created_by": self.created_by,
            "comment": self.comment, "created_at": self.created_at.isoformat(),
            "expired_at": self.expired_at.isoformat() if self.expired_at else None,
            "expired_by": self.expired_by, "active": self.active(now),
        }


def covers(silence: Silence, labels: Mapping[str, str]) -> bool:
    return all(fnmatch.fnmatchcase(labels.get(m["label"], ""), m["value"])
               for m in silence.matchers)


def _from_row(row: Any) -> Silence:
    return Silence(row.id, list(row.matchers), row.starts_at, row.ends_at, row.created_by,
                   row.comment, row.created_at, row.expired_at, row.expired_by)


def parse_request(data: Any) -> SilenceRequest:
    try:
        return SilenceRequest.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}"
            for e in exc.errors(include_url=False))
        raise SilenceError(f"invalid silence: {problems}") from exc


def create(db: Database, request: SilenceRequest, actor: Actor, now: datetime) -> Silence:
    starts = request.starts_at or now
    for value in (starts, request.ends_at):
        if value.utcoffset() is None:
            raise SilenceError("times need a UTC offset, e.g. 2026-10-02T08:00:00+08:00")
    if request.ends_at <= max(starts, now):
        raise SilenceError("ends_at must be in the future and after starts_at")
    if request.ends_at - starts > MAX_DURATION:
        raise SilenceError(f"a silence may last at most {MAX_DURATION.days} days; "
                           "make a policy exception for anything longer")
    silence = Silence(str(uuid.uuid4()), [m.model_dump() for m in request.matchers], starts,
                      request.ends_at, actor.name, request.comment, now, None, None)
    with db.write() as conn:
        conn.execute(silences.insert().values(
            id=silence.id, matchers=silence.matchers, starts_at=starts, ends_at=request.ends_at,
            created_by=actor.name[:100], comment=request.comment, created_at=now))
        audit.record(conn, actor, "silence.create", "silence", silence.id, now,
                     to_value=_describe(silence)[:200], reason=request.comment)
    return silence


def expire(db: Database, silence_id: str, actor: Actor, now: datetime, reason: str) -> Silence:
    with db.write() as conn:
        row = conn.execute(silences.select().where(silences.c.id == silence_id)).first()
        if row is None:
            raise SilenceError(_("no silence {id}; see `silence list`").format(id=silence_id))
        silence = _from_row(row)
        if not silence.active(now) and silence.starts_at <= now:
            raise SilenceError(f"silence {silence_id} has already ended")
        conn.execute(silences.update().where(silences.c.id == silence_id)
                     .values(expired_at=now, expired_by=actor.name[:100]))
        audit.record(conn, actor, "silence.expire", "silence", silence_id, now,
                     from_value=_describe(silence)[:200], reason=reason or None)
    return replace(silence, expired_at=now, expired_by=actor.name)


def active_in(conn: Any, now: datetime) -> list[Silence]:
    c = silences.c
    rows = conn.execute(silences.select().where(c.starts_at <= now, c.ends_at > now,
                                                c.expired_at.is_(None)))
    return [_from_row(row) for row in rows]


def list_silences(db: Database, now: datetime, include_ended: bool = False) -> list[Silence]:
    c = silences.c
    query = silences.select().order_by(c.created_at.desc())
    if not include_ended:
        query = query.where(c.ends_at > now, c.expired_at.is_(None))
    with db.read() as conn:
        return [_from_row(row) for row in conn.execute(query.limit(1000))]


def _describe(silence: Silence) -> str:
    terms = ",".join(f"{m['label']}={m['value']}" for m in silence.matchers)
    return f"{terms} until {silence.ends_at.isoformat()}"
