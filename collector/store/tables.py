"""Every table the collector keeps, as SQLAlchemy Core, in one ``MetaData``.

The Alembic migrations in ``collector/migrations`` create exactly this schema;
``tests/collector/store/test_migrations.py`` compares the two.

Timestamps are stored in UTC: ``UTCDateTime`` makes SQLite (which has no time
zones) hand back aware datetimes like PostgreSQL's ``timestamptz`` does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import JSONB

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)


def sqlite_utc_text(value: datetime) -> str:
    """A UTC datetime as the fixed-width text SQLite columns hold."""
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d} {value.hour:02d}:"
        f"{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}"
    )


class _SQLiteUTCText(sqlite.DATETIME):
    """SQLite's DATETIME without its own (slow, per-value) processors: UTCDateTime formats."""

    def bind_processor(self, dialect: Dialect) -> None:
        return None

    def result_processor(self, dialect: Dialect, coltype: object) -> None:
        return None


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime in, an aware UTC datetime out, on every backend.

    On SQLite the value is fixed-width UTC text (``YYYY-MM-DD HH:MM:SS.ffffff``,
    the format SQLAlchemy itself uses), so text order is time order and the
    keyset indexes work; it is formatted here because ingest writes two per event.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            # SQLAlchemy leaves the SQLite DATETIME constructor unannotated.
            return dialect.type_descriptor(_SQLiteUTCText())  # type: ignore[no-untyped-call]  # unannotated in SQLAlchemy
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value if dialect.name != "sqlite" else sqlite_utc_text(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        parsed: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


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
    #: SHA-256 of what identifies the machine across re-images (``agent.host_identity``).
    Column("host_fingerprint", String(64), nullable=True),
    #: The agent that re-enrolled on this host and took its place; this row is revoked.
    Column("superseded_by", String(36), nullable=True),
    Column("superseded_at", UTCDateTime, nullable=True),
    Index("ix_agents_host_fingerprint", "host_fingerprint"),
    Index("ix_agents_superseded_by", "superseded_by"),
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
    Column("id", String(36), nullable=False),
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
    #: The evidence's ``account`` field, copied at ingest so the console can filter on it.
    Column("account", String(256), nullable=True),
    # Keyset pagination walks (time desc, id desc), alone or after one equality filter.
    Index("ix_events_time_id", "time", "id"),
    Index("ix_events_agent_id_time_id", "agent_id", "time", "id"),
    Index("ix_events_kind_time_id", "kind", "time", "id"),
    Index("ix_events_host_time_id", "host", "time", "id"),
    Index("ix_events_severity_time_id", "severity", "time", "id"),
    Index("ix_events_account_time_id", "account", "time", "id"),
    # The console's rule filter, and its sort orders by rule and by summary.
    Index("ix_events_rule_id_time_id", "rule_id", "time", "id"),
    Index("ix_events_summary_time_id", "summary", "time", "id"),
    # The capped per-severity counts under a single filter: an index-only range each.
    Index("ix_events_host_severity_time", "host", "severity", "time"),
    Index("ix_events_account_severity_time", "account", "severity", "time"),
    Index("ix_events_kind_severity_time", "kind", "severity", "time"),
    Index("ix_events_rule_id_severity_time", "rule_id", "severity", "time"),
    # An event is one agent's: ingest is idempotent on (agent, id), and an agent numbers
    # each event once. Collector-made events have no seq; NULLs never collide.
    UniqueConstraint("agent_id", "id"),
    UniqueConstraint("agent_id", "seq"),
    Index("ix_events_id", "id"),
)

#: The seqs migration 0007 took off events stored before one row per (agent, seq) was
#: enforced: every such event but the first kept its row with seq NULL, its seq is here.
event_seqs_cleared = Table(
    "event_seqs_cleared",
    metadata,
    Column("event_pk", BigInteger, primary_key=True, autoincrement=False),
    Column("agent_id", String(36), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("seq", BigInteger, nullable=False),
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

#: One row (id 1): the last policy version handed out. ``UPDATE ... RETURNING`` on it
#: takes a row lock, so collector processes publishing at once get distinct versions.
policy_counter = Table(
    "policy_counter",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("value", BigInteger, nullable=False),
)

#: The public half of the collector's policy signing key: every process must sign with it.
#: Policy-key text (``agent.signing.PublicKey``): base64 Ed25519, or ``sm2:`` and base64 SM2.
policy_keys = Table(
    "policy_keys",
    metadata,
    Column("public_key", String(128), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
)

#: Signed policy bundles: ``body`` is exactly the bytes the signature covers.
policy_bundles = Table(
    "policy_bundles",
    metadata,
    Column("version", BigInteger, primary_key=True, autoincrement=False),
    Column("group", String(64), nullable=True),  # NULL: every group
    Column("action", String(16), nullable=False),  # publish, promote, rollback
    Column("source_version", BigInteger, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("author", String(100), nullable=False),
    Column("note", String(500), nullable=False, server_default=""),
    Column("sha256", String(64), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("signature", String(128), nullable=False),
    Column("public_key", String(128), nullable=False),
    # What agents are served: the same bundle without collector-only kinds, signed on its
    # own. NULL for bundles stored before migration 0006 (served whole until re-published).
    Column("agent_sha256", String(64), nullable=True),
    Column("agent_body", LargeBinary, nullable=True),
    Column("agent_signature", String(128), nullable=True),
    Index("ix_policy_bundles_group_version", "group", "version"),
)

# -- alerts, the audit trail and console users (docs/alerts.md, docs/console.md) ------------

#: An alert's status; ``closed`` alerts leave the open-fingerprint index.
ALERT_STATUSES = ("new", "acknowledged", "in_progress", "closed")
_ALERT_OPEN = "status <> 'closed'"

alerts = Table(
    "alerts",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), nullable=False),
    Column("rule_id", String(128), nullable=True),
    Column("kind", String(64), nullable=False),
    Column("severity", SmallInteger, nullable=False),  # Severity.rank, the highest seen
    Column("host", String(253), nullable=False),
    Column("agent_id", String(36), nullable=False),
    Column("account", String(256), nullable=True),
    Column("title", String(500), nullable=False),  # the first event's (Chinese) summary
    Column("status", String(16), nullable=False),
    Column("assignee", String(100), nullable=True),
    Column("resolution", String(32), nullable=True),
    Column("resolution_comment", String(2000), nullable=True),
    Column("count", BigInteger, nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("last_event_id", String(36), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("acknowledged_at", UTCDateTime, nullable=True),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("reopened_count", Integer, nullable=False, server_default="0"),
    # One open alert per fingerprint: ingest upserts against this partial unique index.
    Index("uq_alerts_fingerprint_open", "fingerprint", unique=True,
          sqlite_where=text(_ALERT_OPEN), postgresql_where=text(_ALERT_OPEN)),
    Index("ix_alerts_fingerprint", "fingerprint"),
    # The alert list walks (last_seen desc, id desc), alone or after a status filter.
    Index("ix_alerts_last_seen_id", "last_seen", "id"),
    Index("ix_alerts_status_last_seen_id", "status", "last_seen", "id"),
    # Host, account and rule carry severity and status too: grouping by them and the counts
    # under their filter read the index alone.
    Index("ix_alerts_host_last_seen_id_severity_status",
          "host", "last_seen", "id", "severity", "status"),
    Index("ix_alerts_account_last_seen_id_severity_status",
          "account", "last_seen", "id", "severity", "status"),
    # The overview counts the alerts opened and closed in a window.
    Index("ix_alerts_created_at", "created_at"),
    Index("ix_alerts_closed_at", "closed_at"),
    # The default order (severity, then last seen) and the rule and assignee orders.
    Index("ix_alerts_severity_last_seen_id", "severity", "last_seen", "id"),
    # The counts by status and severity read this index alone.
    Index("ix_alerts_status_severity_last_seen_id", "status", "severity", "last_seen", "id"),
    Index("ix_alerts_rule_id_last_seen_id_severity_status",
          "rule_id", "last_seen", "id", "severity", "status"),
    # The kind filter in the default order, its counts from the index alone.
    Index("ix_alerts_kind_severity_last_seen_id_status",
          "kind", "severity", "last_seen", "id", "status"),
    Index("ix_alerts_assignee_last_seen_id", "assignee", "last_seen", "id"),
    # Sorting by count; every ingest into an alert rewrites its last_seen entries anyway.
    Index("ix_alerts_count_last_seen_id", "count", "last_seen", "id"),
)

#: How many alerts each host, account and rule has per kind, status and severity, kept by
#: triggers on ``alerts`` (migration 0019) so every writer keeps it: the grouped alert list
#: reads these few rows instead of one index entry per alert. ``value`` is NULL for the
#: alerts without an account or rule; a bucket whose count falls to 0 is deleted.
alert_groups = Table(
    "alert_groups",
    metadata,
    Column("dimension", String(8), nullable=False),  # host, account, rule
    Column("value", String(256), nullable=True),
    Column("kind", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("severity", SmallInteger, nullable=False),
    Column("alerts", BigInteger, nullable=False),
    Index("ix_alert_groups_dimension_value_kind_status_severity",
          "dimension", "value", "kind", "status", "severity"),
)

alert_events = Table(
    "alert_events",
    metadata,
    # No foreign key to events: retention may prune an event; its alert stays as the record.
    # Event ids are unique per agent only: two agents' events may share one.
    Column("event_id", String(36), primary_key=True),
    Column("alert_id", RowId, ForeignKey("alerts.id"), primary_key=True),
    Index("ix_alert_events_alert_id", "alert_id"),
)

#: The durable change feed a router reads from a cursor (``alerts.service.changes_since``).
alert_changes = Table(
    "alert_changes",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("alert_id", RowId, ForeignKey("alerts.id"), nullable=False),
    Column("change", String(32), nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

#: Append-only: the code has no UPDATE or DELETE of it; on PostgreSQL a trigger refuses both.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("via", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("object_type", String(32), nullable=False),
    Column("object_id", String(64), nullable=False),
    Column("from_value", String(200), nullable=True),
    Column("to_value", String(200), nullable=True),
    Column("reason", String(2000), nullable=True),
    Column("client_address", String(64), nullable=True),
    Index("ix_audit_log_object_type_object_id_id", "object_type", "object_id", "id"),
    Index("ix_audit_log_at", "at"),
)

#: Host isolations (一键隔离): one row per request, from pending (awaiting a second admin)
#: or active to lifted or cancelled; "expired" is an active row past ``expires_at``.
host_isolations = Table(
    "host_isolations",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("agent_id", String(36), ForeignKey("agents.id"), nullable=False),
    Column("state", String(16), nullable=False),  # pending, active, lifted, cancelled
    Column("minutes", Integer, nullable=False),
    Column("reason", String(500), nullable=False),
    Column("requested_by", String(100), nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("approved_by", String(100), nullable=True),
    Column("approved_at", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("ended_by", String(100), nullable=True),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("end_reason", String(500), nullable=True),
    Index("ix_host_isolations_agent_id_id", "agent_id", "id"),
    Index("ix_host_isolations_state", "state"),
)

#: Signed isolation orders: ``body`` is exactly the bytes ``signature`` covers. ``sequence``
#: only grows: an agent refuses an order not above the last it accepted.
isolation_orders = Table(
    "isolation_orders",
    metadata,
    Column("sequence", RowId, primary_key=True, autoincrement=True),
    Column("order_id", String(36), nullable=False, unique=True),
    Column("isolation_id", BigInteger, ForeignKey("host_isolations.id"), nullable=False),
    Column("agent_id", String(36), nullable=False),
    Column("action", String(8), nullable=False),  # isolate, lift
    Column("body", Text, nullable=False),
    Column("signature", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_isolation_orders_agent_id_sequence", "agent_id", "sequence"),
)

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(100), nullable=False, server_default=""),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime, nullable=True),
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("locked_until", UTCDateTime, nullable=True),
    Column("last_login_at", UTCDateTime, nullable=True),
    Column("password_changed_at", UTCDateTime, nullable=True),
    #: ``local`` (password kept here) or ``ldap`` (signs in through the directory only).
    Column("source", String(16), nullable=False, server_default="local"),
    Column("directory_dn", String(500), nullable=True),
)

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_active_at", UTCDateTime, nullable=False),
    Column("client_address", String(64), nullable=True),
    Index("ix_console_sessions_user_id", "user_id"),
)

saved_filters = Table(
    "saved_filters",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("name", String(100), nullable=False),
    Column("query", String(2000), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("user_id", "scope", "name"),
)


# -- alert routing, duty and notification delivery (docs/alerting.md) -----------------------

#: Duty-office roster rows imported from CSV (``duty import``); they win over the policy.
duty_assignments = Table(
    "duty_assignments",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("shift_date", Date, nullable=False),
    Column("shift", String(64), nullable=False),
    Column("position", String(16), nullable=False),
    Column("person", String(64), nullable=False),
    Column("source", String(500), nullable=False),
    Column("imported_at", UTCDateTime, nullable=False),
    Column("imported_by", String(100), nullable=False),
    UniqueConstraint("shift_date", "shift", "position"),
)

#: Silences: matchers, a mandatory end and comment; never deleted, expired early instead.
silences = Table(
    "silences",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("matchers", JSONDoc, nullable=False),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("comment", String(2000), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expired_at", UTCDateTime, nullable=True),
    Column("expired_by", String(100), nullable=True),
    Index("ix_silences_ends_at", "ends_at"),
)

#: The change cursor the alert router has consumed (its lease is the ``router`` row of ``leases``).
router_state = Table(
    "router_state",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("cursor", BigInteger, nullable=False, server_default="0"),
)

#: Which collector process runs each singleton (alert router, exports, periodic passes), and
#: until when: ``collector.store.leases``.
leases = Table(
    "leases",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("owner", String(100), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("taken_at", UTCDateTime, nullable=True),
)

#: A notification group: alerts of one route with the same ``group_by`` labels.
notify_groups = Table(
    "notify_groups",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("route", String(64), nullable=False),
    Column("receiver", String(64), nullable=False),
    Column("labels", JSONDoc, nullable=False),
    Column("flush_at", UTCDateTime, nullable=True),  # NULL: nothing new to send
    Column("last_flush_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_notify_groups_flush_at", "flush_at"),
)

notify_group_alerts = Table(
    "notify_group_alerts",
    metadata,
    Column("group_key", String(64), ForeignKey("notify_groups.key"), primary_key=True),
    Column("alert_id", BigInteger, primary_key=True),
    Column("pending", Boolean, nullable=False),  # not yet in a sent notification
    Column("added_at", UTCDateTime, nullable=False),
    Index("ix_notify_group_alerts_alert_id", "alert_id"),
)

#: Where each routed alert's escalation chain stands.
escalations = Table(
    "escalations",
    metadata,
    Column("alert_id", BigInteger, primary_key=True),
    Column("route", String(64), primary_key=True),
    Column("chain", String(64), nullable=False),
    Column("receiver", String(64), nullable=False),
    Column("step", Integer, nullable=False),
    Column("loop", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # waiting, acknowledged, stopped
    Column("next_at", UTCDateTime, nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_escalations_next_at", "next_at"),
)

#: The outbox: every message the router decided to send, until it was sent or gave up.
notifications = Table(
    "notifications",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("receiver", String(64), nullable=False),
    Column("channel_index", Integer, nullable=False, server_default="0"),
    Column("reason", String(16), nullable=False),  # group, repeat, escalation, digest
    Column("group_key", String(64), nullable=True),
    Column("alert_ids", JSONDoc, nullable=False),
    Column("persons", JSONDoc, nullable=False),
    Column("message", JSONDoc, nullable=False),
    Column("status", String(16), nullable=False),  # pending, sending, sent, failed, digested
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("digest_id", BigInteger, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("sent_channel", String(64), nullable=True),
    Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),
)

#: Every delivery attempt with what the receiver answered.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("notification_id", BigInteger, ForeignKey("notifications.id"), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("response", String(500), nullable=True),
    Column("error", String(500), nullable=True),
    Column("duration_ms", Float, nullable=False),
    Index("ix_deliveries_notification_id", "notification_id"),
    # The overview counts the last day's failed attempts.
    Index("ix_deliveries_at", "at"),
)

#: Which alerts each notification carried (``notifications.alert_ids`` as rows), so an alert's
#: page finds its notifications through an index.
notification_alerts = Table(
    "notification_alerts",
    metadata,
    Column("notification_id", BigInteger, ForeignKey("notifications.id"), primary_key=True),
    Column("alert_id", BigInteger, primary_key=True),
    Index("ix_notification_alerts_alert_id", "alert_id"),
)

#: The patrol of published documents (collector/patrol/): what it last saw of each document,
#: so an unchanged one is never downloaded again and an alert is never raised twice.
patrol_documents = Table(
    "patrol_documents",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("key_sha256", String(64), primary_key=True),  # of ``key``: a URL may be long
    Column("key", Text, nullable=False),  # the URL or the path under the source's directory
    Column("etag", String(512), nullable=True),
    Column("last_modified", String(64), nullable=True),
    Column("size", BigInteger, nullable=True),
    Column("mtime_ns", BigInteger, nullable=True),
    Column("sha256", String(64), nullable=True),
    Column("verdict", String(32), nullable=True),
    Column("error", Text, nullable=True),
    #: The collector.document_published event raised for this content, while it is a problem.
    Column("event_id", String(36), nullable=True),
    Column("checked_at", UTCDateTime, nullable=False),
)

#: A clerk's decision on one finding of one document (the newest row per finding holds).
doc_check_decisions = Table(
    "doc_check_decisions",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("sha256", String(64), nullable=False),
    Column("finding_key", String(200), nullable=False),
    Column("rule_id", String(64), nullable=False),
    Column("excerpt", String(200), nullable=False),  # masked, as in events
    Column("decision", String(16), nullable=False),  # not_applicable, applicable
    Column("reason", String(500), nullable=False),
    Column("decided_by", String(100), nullable=False),
    Column("decided_at", UTCDateTime, nullable=False),
    Index("ix_doc_check_decisions_sha256_finding_key_id", "sha256", "finding_key", "id"),
)

#: Every document a clerk checked in the console: hash, masked name, verdict and counts only.
doc_check_history = Table(
    "doc_check_history",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("username", String(100), nullable=False),
    Column("via", String(16), nullable=False),
    Column("checked_at", UTCDateTime, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("file_name", String(255), nullable=False),  # pseudonymised like the document
    Column("size", BigInteger, nullable=False),
    Column("verdict", String(24), nullable=True),  # None: the file could not be checked
    Column("error", String(500), nullable=True),
    Column("findings", Integer, nullable=False),
    Column("counts", JSONDoc, nullable=False),  # findings per action
    Column("duration_ms", Float, nullable=False),
    Index("ix_doc_check_history_username_id", "username", "id"),
    Index("ix_doc_check_history_sha256_id", "sha256", "id"),  # the document page
)

# -- SIEM export (docs/export.md) -----------------------------------------------------------

#: One row per configured output: where it has got to in ``events`` (by ``pk``) and in
#: ``alert_changes`` (by ``id``), its counters and last error, and since when it lags past
#: its threshold. One process at a time sends to an output: the ``export:<name>`` lease.
export_cursors = Table(
    "export_cursors",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("event_cursor", BigInteger, nullable=False, server_default="0"),
    Column("alert_cursor", BigInteger, nullable=False, server_default="0"),
    Column("sent", BigInteger, nullable=False, server_default="0"),
    Column("failed", BigInteger, nullable=False, server_default="0"),
    Column("last_sent_at", UTCDateTime, nullable=True),
    Column("last_error", String(500), nullable=True),
    Column("last_error_at", UTCDateTime, nullable=True),
    Column("lagging_since", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)

# -- Evidence captures (取证抓包, docs/outreach.md "Evidence") --------------------------------

#: One pcap an agent captured for one of its events, or an admin's order for one. ``state``:
#: ``requested`` (an admin's order waiting for the agent), ``uploading``, ``complete`` (every
#: byte held and the SHA-256 verified). ``received`` is the acknowledged upload offset.
evidence_artifacts = Table(
    "evidence_artifacts",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("agent_id", String(36), ForeignKey("agents.id"), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("state", String(16), nullable=False),
    Column("capture_order", JSONDoc, nullable=True),  # an admin's order, as sent to the agent
    Column("requested_by", String(100), nullable=True),
    Column("size", BigInteger, nullable=True),
    Column("sha256", String(64), nullable=True),
    Column("packets", Integer, nullable=True),
    Column("received", BigInteger, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime, nullable=True),
    UniqueConstraint("agent_id", "event_id"),
    Index("ix_evidence_artifacts_agent_id_state", "agent_id", "state"),
    Index("ix_evidence_artifacts_event_id", "event_id"),
    Index("ix_evidence_artifacts_created_at", "created_at"),
)

#: The pcap's bytes, one row per acknowledged upload chunk, at its offset in the file.
evidence_chunks = Table(
    "evidence_chunks",
    metadata,
    Column("artifact_id", RowId, ForeignKey("evidence_artifacts.id"), primary_key=True),
    Column("offset", BigInteger, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
)

#: Agent packages (.deb) by digest: promote and rollback point at the same bytes again.
release_packages = Table(
    "release_packages",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("package", String(100), nullable=False),
    Column("version", String(64), nullable=False),
    Column("architecture", String(32), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("body", LargeBinary, nullable=False),
    # Over exactly ``body``, with the policy signing key (collector.policy.signing).
    Column("signature", String(128), nullable=False),
    Column("public_key", String(128), nullable=False),
)

#: One row per publish, promote or rollback; a group's (and architecture's) target is its
#: newest row naming it or all groups (``group`` NULL).
agent_releases = Table(
    "agent_releases",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("sha256", String(64), ForeignKey("release_packages.sha256"), nullable=False),
    Column("version", String(64), nullable=False),
    Column("architecture", String(32), nullable=False),
    Column("group", String(64), nullable=True),
    Column("action", String(16), nullable=False),
    Column("source_id", BigInteger, nullable=True),
    Column("author", String(100), nullable=False),
    Column("note", String(500), nullable=False, server_default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_agent_releases_architecture_id", "architecture", "id"),
)

#: What each agent did with a release version: downloaded, installed, failed or refused.
agent_upgrades = Table(
    "agent_upgrades",
    metadata,
    Column("agent_id", String(36), ForeignKey("agents.id"), primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("architecture", String(32), nullable=False, server_default=""),
    Column("state", String(16), nullable=False),
    Column("reason_code", String(32), nullable=True),
    Column("reason", String(500), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_agent_upgrades_version_state", "version", "state"),
)
