"""Console users signed in through the directory: where each user comes from, and its DN.

``source`` is ``local`` (a password kept here, argon2) or ``ldap`` (a shadow
row made at the user's first directory sign-in, for the audit trail and the
name shown; its password hash never verifies). ``directory_dn`` is the
entry the user last signed in as.

Revision ID: 0008_directory_users
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_directory_users"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("source", sa.String(16), nullable=False, server_default="local")
        )
        batch.add_column(sa.Column("directory_dn", sa.String(500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("directory_dn")
        batch.drop_column("source")
