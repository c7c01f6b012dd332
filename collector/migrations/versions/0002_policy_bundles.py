"""Central policy: signed bundles, the version counter, the signing key's public half.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from collector.store.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    counter = op.create_table(
        "policy_counter",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_policy_counter"),
    )
    op.bulk_insert(counter, [{"id": 1, "value": 0}])
    op.create_table(
        "policy_keys",
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("public_key", name="pk_policy_keys"),
    )
    op.create_table(
        "policy_bundles",
        sa.Column("version", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("group", sa.String(64), nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("source_version", sa.BigInteger, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("author", sa.String(100), nullable=False),
        sa.Column("note", sa.String(500), nullable=False, server_default=""),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_policy_bundles"),
    )
    op.create_index("ix_policy_bundles_group_version", "policy_bundles", ["group", "version"])


def downgrade() -> None:
    op.drop_index("ix_policy_bundles_group_version", table_name="policy_bundles")
    op.drop_table("policy_bundles")
    op.drop_table("policy_keys")
    op.drop_table("policy_counter")
