"""Evidence captures: artifact metadata and the pcap bytes, chunk by chunk.

Revision ID: 0015_evidence_artifacts
Revises: 0014_console_triage
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from collector.store.tables import JSONDoc, RowId, UTCDateTime

revision = "0015_evidence_artifacts"
down_revision = "0014_console_triage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence_artifacts",
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("agent_id", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("capture_order", JSONDoc, nullable=True),
        sa.Column("requested_by", sa.String(length=100), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("packets", sa.Integer(), nullable=True),
        sa.Column("received", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("completed_at", UTCDateTime, nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"],
                                name=op.f("fk_evidence_artifacts_agent_id_agents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_artifacts")),
        sa.UniqueConstraint("agent_id", "event_id",
                            name=op.f("uq_evidence_artifacts_agent_id_event_id")),
    )
    op.create_index("ix_evidence_artifacts_agent_id_state", "evidence_artifacts",
                    ["agent_id", "state"])
    op.create_index("ix_evidence_artifacts_event_id", "evidence_artifacts", ["event_id"])
    op.create_index("ix_evidence_artifacts_created_at", "evidence_artifacts", ["created_at"])
    op.create_table(
        "evidence_chunks",
        sa.Column("artifact_id", RowId, nullable=False),
        sa.Column("offset", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["artifact_id"], ["evidence_artifacts.id"],
                                name=op.f("fk_evidence_chunks_artifact_id_evidence_artifacts")),
        sa.PrimaryKeyConstraint("artifact_id", "offset", name=op.f("pk_evidence_chunks")),
    )


def downgrade() -> None:
    op.drop_table("evidence_chunks")
    op.drop_index("ix_evidence_artifacts_created_at", table_name="evidence_artifacts")
    op.drop_index("ix_evidence_artifacts_event_id", table_name="evidence_artifacts")
    op.drop_index("ix_evidence_artifacts_agent_id_state", table_name="evidence_artifacts")
    op.drop_table("evidence_artifacts")
