"""Every table the collector keeps, as SQLAlchemy Core, in one ``MetaData``.

The Alembic migrations in ``collector/migrations`` create exactly this schema;
``tests/collector/test_migrations.py`` compares the two.

Timestamps are stored in UTC: ``UTCDateTime`` makes SQLite (which has no time
zones) hand back aware datetimes like PostgreSQL's ``timestamptz`` does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime in, an aware UTC datetime out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite stores the wall time as text; drop the zone so text order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: Evidence and heartbeats: JSONB on PostgreSQL (indexable later), JSON text on SQLite.
JSONDoc: Any = JSON().with_variant(JSONB(), "postgresql")
#: Surrogate row ids: BIGINT on PostgreSQL; SQLite needs INTEGER for its rowid alias.
RowId: Any = BigInteger().with_variant(Integer(), "sqlite")

enrollment_tokens = Table(
    "enrollment_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("group", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("uses_left", Integer, nullable=True),  # NULL: no limit on uses
    Column("uses", Integer, nullable=False, server_default="0"),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("note", String(500), nullable=False, server_default=""),
)

agents = Table(
    "agents",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("hostname", String(253), nullable=False),
    Column("group", String(64), nullable=False),
    Column("os", String(200), nullable=False, server_default=""),
    Column("enrolled_at", UTCDateTime, nullable=False),
    Column("enrollment_token_id", String(36), ForeignKey("enrollment_tokens.id"), nullable=True),
    Column("secret_hash", String(64), nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("revoked_reason", String(500), nullable=True),
    Column("last_seen_at", UTCDateTime, nullable=True),
    Column("heartbeat_interval_s", Float, nullable=True),
    Column("agent_version", String(64), nullable=False, server_default=""),
    Column("policy_version", String(64), nullable=True),
    Column("last_heartbeat", JSONDoc, nullable=True),
    Column("last_heartbeat_seq", BigInteger, nullable=True),
    Column("max_seq", BigInteger, nullable=False, server_default="0"),
    Column("silent_since", UTCDateTime, nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

events = Table(
    "events",
    metadata,
    Column("pk", RowId, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("agent_id", String(36), ForeignKey("agents.id"), nullable=False),
    Column("seq", BigInteger, nullable=True),
    Column("time", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("host", String(253), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("severity", SmallInteger, nullable=False),  # Severity.rank
    Column("rule_id", String(128), nullable=True),
    Column("policy_version", String(64), nullable=True),
    Column("summary", String(500), nullable=False),
    Column("evidence", JSONDoc, nullable=False),
    # Keyset pagination walks (time desc, id desc), alone or after one equality filter.
    Index("ix_events_time_id", "time", "id"),
    Index("ix_events_agent_id_time_id", "agent_id", "time", "id"),
    Index("ix_events_kind_time_id", "kind", "time", "id"),
    Index("ix_events_host_time_id", "host", "time", "id"),
)

sequence_gaps = Table(
    "sequence_gaps",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("agent_id", String(36), ForeignKey("agents.id"), nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("detected_at", UTCDateTime, nullable=False),
    Column("filled_at", UTCDateTime, nullable=True),
    Index("ix_sequence_gaps_agent_id_first_seq", "agent_id", "first_seq"),
)
