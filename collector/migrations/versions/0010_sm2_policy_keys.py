"""Policy keys may be SM2: the public-key columns hold up to 128 characters.

An Ed25519 key is 44 characters of base64; an SM2 key's policy-key text
(``sm2:`` and base64 of the 65-byte point, ``agent.signing.PublicKey``) is 92.
Existing rows keep their Ed25519 keys unchanged.

Revision ID: 0010_sm2_policy_keys
Revises: 0009_overview
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_sm2_policy_keys"
down_revision = "0009_overview"
branch_labels = None
depends_on = None

_TABLES = ("policy_keys", "policy_bundles")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("public_key", type_=sa.String(128),
                               existing_type=sa.String(64), existing_nullable=False)


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("public_key", type_=sa.String(64),
                               existing_type=sa.String(128), existing_nullable=False)
