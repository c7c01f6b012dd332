"""Signed agent releases: packages by digest, their targeting rows, each agent's progress.

Revision ID: 0021_releases
Revises: 0020_host_identity
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from collector.store.tables import RowId, UTCDateTime

revision = "0021_releases"
down_revision = "0020_host_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "release_packages",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("package", sa.String(length=100), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("architecture", sa.String(length=32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.Column("public_key", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_release_packages")),
    )
    op.create_table(
        "agent_releases",
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("architecture", sa.String(length=32), nullable=False),
        sa.Column("group", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=True),
        sa.Column("author", sa.String(length=100), nullable=False),
        sa.Column("note", sa.String(length=500), server_default="", nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(["sha256"], ["release_packages.sha256"],
                                name=op.f("fk_agent_releases_sha256_release_packages")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_releases")),
    )
    op.create_index("ix_agent_releases_architecture_id", "agent_releases",
                    ["architecture", "id"])
    op.create_table(
        "agent_upgrades",
        sa.Column("agent_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("architecture", sa.String(length=32), server_default="", nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason_code", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"],
                                name=op.f("fk_agent_upgrades_agent_id_agents")),
        sa.PrimaryKeyConstraint("agent_id", "version", name=op.f("pk_agent_upgrades")),
    )
    op.create_index("ix_agent_upgrades_version_state", "agent_upgrades", ["version", "state"])


def downgrade() -> None:
    op.drop_table("agent_upgrades")
    op.drop_table("agent_releases")
    op.drop_table("release_packages")
