"""The spine: agents, enrollment tokens, API keys, events, sequence gaps.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from collector.store.tables import JSONDoc, RowId, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrollment_tokens",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("group", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=True),
        sa.Column("uses_left", sa.Integer, nullable=True),
        sa.Column("uses", sa.Integer, nullable=False, server_default="0"),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
        sa.Column("note", sa.String(500), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name="pk_enrollment_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_enrollment_tokens_token_hash"),
    )
    op.create_table(
        "agents",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("hostname", sa.String(253), nullable=False),
        sa.Column("group", sa.String(64), nullable=False),
        sa.Column("os", sa.String(200), nullable=False, server_default=""),
        sa.Column("enrolled_at", UTCDateTime, nullable=False),
        sa.Column("enrollment_token_id", sa.String(36), nullable=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
        sa.Column("revoked_reason", sa.String(500), nullable=True),
        sa.Column("last_seen_at", UTCDateTime, nullable=True),
        sa.Column("heartbeat_interval_s", sa.Float, nullable=True),
        sa.Column("agent_version", sa.String(64), nullable=False, server_default=""),
        sa.Column("policy_version", sa.String(64), nullable=True),
        sa.Column("last_heartbeat", JSONDoc, nullable=True),
        sa.Column("last_heartbeat_seq", sa.BigInteger, nullable=True),
        sa.Column("max_seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("silent_since", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
        sa.ForeignKeyConstraint(
            ["enrollment_token_id"], ["enrollment_tokens.id"],
            name="fk_agents_enrollment_token_id_enrollment_tokens",
        ),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_table(
        "events",
        sa.Column("pk", RowId, nullable=False, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("agent_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=True),
        sa.Column("time", UTCDateTime, nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("host", sa.String(253), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("severity", sa.SmallInteger, nullable=False),
        sa.Column("rule_id", sa.String(128), nullable=True),
        sa.Column("policy_version", sa.String(64), nullable=True),
        sa.Column("summary", sa.String(500), nullable=False),
        sa.Column("evidence", JSONDoc, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_events"),
        sa.UniqueConstraint("id", name="uq_events_id"),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name="fk_events_agent_id_agents"),
    )
    op.create_index("ix_events_time_id", "events", ["time", "id"])
    op.create_index("ix_events_agent_id_time_id", "events", ["agent_id", "time", "id"])
    op.create_index("ix_events_kind_time_id", "events", ["kind", "time", "id"])
    op.create_index("ix_events_host_time_id", "events", ["host", "time", "id"])
    op.create_table(
        "sequence_gaps",
        sa.Column("id", RowId, nullable=False, autoincrement=True),
        sa.Column("agent_id", sa.String(36), nullable=False),
        sa.Column("first_seq", sa.BigInteger, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("detected_at", UTCDateTime, nullable=False),
        sa.Column("filled_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sequence_gaps"),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name="fk_sequence_gaps_agent_id_agents"
        ),
    )
    op.create_index(
        "ix_sequence_gaps_agent_id_first_seq", "sequence_gaps", ["agent_id", "first_seq"]
    )


def downgrade() -> None:
    op.drop_table("sequence_gaps")
    op.drop_table("events")
    op.drop_table("api_keys")
    op.drop_table("agents")
    op.drop_table("enrollment_tokens")
