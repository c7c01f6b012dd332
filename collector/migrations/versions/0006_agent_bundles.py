"""Policy bundles carry a second signed body for agents, without collector-only kinds.

The full body stays what the collector acts on; ``agent_body`` (same version,
group and metadata, only the kinds agents read) is what ``GET /api/v1/policy``
serves. A migration cannot sign, so bundles stored before it keep NULL here
and are served whole until the next publish, promote or rollback.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("policy_bundles", sa.Column("agent_sha256", sa.String(64), nullable=True))
    op.add_column("policy_bundles", sa.Column("agent_body", sa.LargeBinary, nullable=True))
    op.add_column("policy_bundles", sa.Column("agent_signature", sa.String(128), nullable=True))


def downgrade() -> None:
    op.drop_column("policy_bundles", "agent_signature")
    op.drop_column("policy_bundles", "agent_body")
    op.drop_column("policy_bundles", "agent_sha256")
