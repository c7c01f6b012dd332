"""One identity per host: the host fingerprint an agent enrolls with, and who superseded whom.

``host_fingerprint`` is the SHA-256 an agent sends at enrollment (DMI product
UUID or permanent MACs, plus the hostname; see ``agent.host_identity``).
When a host enrolls again with the same fingerprint in the same group, the old
row gets ``superseded_by`` (the new agent's id) and ``superseded_at``, and is
revoked in the same transaction, so its credentials stop working and the
silent check leaves it alone.

Revision ID: 0020_host_identity
Revises: 0019_alert_groups
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from collector.store.tables import UTCDateTime

revision = "0020_host_identity"
down_revision = "0019_alert_groups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both dialects: a batch rebuild of ``agents`` would have to copy the
    # table every event row points at.
    op.add_column("agents", sa.Column("host_fingerprint", sa.String(64), nullable=True))
    op.add_column("agents", sa.Column("superseded_by", sa.String(36), nullable=True))
    op.add_column("agents", sa.Column("superseded_at", UTCDateTime, nullable=True))
    op.create_index("ix_agents_host_fingerprint", "agents", ["host_fingerprint"])
    op.create_index("ix_agents_superseded_by", "agents", ["superseded_by"])


def downgrade() -> None:
    op.drop_index("ix_agents_superseded_by", table_name="agents")
    op.drop_index("ix_agents_host_fingerprint", table_name="agents")
    # Plain DROP COLUMN (SQLite 3.35+) for the same reason: a batch rebuild would drop the
    # table the events' foreign keys point at.
    op.drop_column("agents", "superseded_at")
    op.drop_column("agents", "superseded_by")
    op.drop_column("agents", "host_fingerprint")
