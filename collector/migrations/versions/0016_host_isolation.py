"""Host isolation (一键隔离): isolation requests and their signed orders.

Revision ID: 0016_host_isolation
Revises: 0015_evidence_artifacts
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from collector.store.tables import RowId, UTCDateTime

revision = "0016_host_isolation"
down_revision = "0015_evidence_artifacts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "host_isolations",
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("agent_id", sa.String(length=36), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("requested_at", UTCDateTime, nullable=False),
        sa.Column("approved_by", sa.String(length=100), nullable=True),
        sa.Column("approved_at", UTCDateTime, nullable=True),
        sa.Column("expires_at", UTCDateTime, nullable=True),
        sa.Column("ended_by", sa.String(length=100), nullable=True),
        sa.Column("ended_at", UTCDateTime, nullable=True),
        sa.Column("end_reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"],
                                name=op.f("fk_host_isolations_agent_id_agents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_host_isolations")),
    )
    op.create_index("ix_host_isolations_agent_id_id", "host_isolations", ["agent_id", "id"])
    op.create_index("ix_host_isolations_state", "host_isolations", ["state"])
    op.create_table(
        "isolation_orders",
        sa.Column("sequence", RowId, autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("isolation_id", sa.BigInteger(), nullable=False),
        sa.Column("agent_id", sa.String(length=36), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("signature", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(["isolation_id"], ["host_isolations.id"],
                                name=op.f("fk_isolation_orders_isolation_id_host_isolations")),
        sa.PrimaryKeyConstraint("sequence", name=op.f("pk_isolation_orders")),
        sa.UniqueConstraint("order_id", name=op.f("uq_isolation_orders_order_id")),
    )
    op.create_index("ix_isolation_orders_agent_id_sequence", "isolation_orders",
                    ["agent_id", "sequence"])


def downgrade() -> None:
    op.drop_table("isolation_orders")
    op.drop_table("host_isolations")
