"""Clerks' document checks in the console: their history and their decisions on findings.

``doc_check_history`` keeps, per check, who checked which document (its hash
and its pseudonymised file name), the verdict and the counts of findings;
``doc_check_decisions`` keeps every decision a clerk made on one finding of one
document (the newest per finding holds). Neither holds a document's text:
excerpts are masked as in events.

Revision ID: 0012_clerk_document_checks
Revises: 0011_document_patrol
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from collector.store.tables import JSONDoc, RowId, UTCDateTime

revision = "0012_clerk_document_checks"
down_revision = "0011_document_patrol"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "doc_check_decisions",
        sa.Column("id", RowId, nullable=False, autoincrement=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("finding_key", sa.String(200), nullable=False),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("excerpt", sa.String(200), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("decided_by", sa.String(100), nullable=False),
        sa.Column("decided_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_doc_check_decisions"),
    )
    op.create_index("ix_doc_check_decisions_sha256_finding_key_id", "doc_check_decisions",
                    ["sha256", "finding_key", "id"])
    op.create_table(
        "doc_check_history",
        sa.Column("id", RowId, nullable=False, autoincrement=True),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("checked_at", UTCDateTime, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("verdict", sa.String(24), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("findings", sa.Integer, nullable=False),
        sa.Column("counts", JSONDoc, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_doc_check_history"),
    )
    op.create_index("ix_doc_check_history_username_id", "doc_check_history", ["username", "id"])
    op.create_index("ix_doc_check_history_sha256_id", "doc_check_history", ["sha256", "id"])


def downgrade() -> None:
    op.drop_index("ix_doc_check_history_sha256_id", table_name="doc_check_history")
    op.drop_index("ix_doc_check_history_username_id", table_name="doc_check_history")
    op.drop_table("doc_check_history")
    op.drop_index("ix_doc_check_decisions_sha256_finding_key_id",
                  table_name="doc_check_decisions")
    op.drop_table("doc_check_decisions")
