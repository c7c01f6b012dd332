"""Events are keyed per agent: (agent, id) and (agent, seq) are unique, not the id alone.

Ingest was idempotent on the event id across all agents, so an agent whose
event id another agent had stored was told "duplicate" and deleted an event
never stored; and nothing stopped two rows with one agent's seq.

Stores may already hold several rows for one (agent, seq). Nothing is lost:
the first stored row (lowest ``pk``) keeps its seq, every later one keeps its
row with seq NULL, and its seq is recorded in ``event_seqs_cleared``
(``event_pk`` names the row). Gap accounting only ever needed the first.

``alert_events`` is keyed on (event id, alert) for the same reason.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 1. set aside the seqs of later rows that repeat an (agent, seq)
    op.create_table(
        "event_seqs_cleared",
        sa.Column("event_pk", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("agent_id", sa.String(36), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("event_pk", name="pk_event_seqs_cleared"),
    )
    op.execute(
        "INSERT INTO event_seqs_cleared (event_pk, agent_id, event_id, seq) "
        "SELECT e.pk, e.agent_id, e.id, e.seq FROM events e JOIN ("
        " SELECT agent_id, seq, MIN(pk) AS kept FROM events WHERE seq IS NOT NULL"
        " GROUP BY agent_id, seq HAVING COUNT(*) > 1"
        ") d ON e.agent_id = d.agent_id AND e.seq = d.seq AND e.pk <> d.kept"
    )
    op.execute("UPDATE events SET seq = NULL WHERE pk IN (SELECT event_pk FROM event_seqs_cleared)")
    # 2. per-agent keys (SQLite rebuilds the table; PostgreSQL alters it in place)
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint("uq_events_id", type_="unique")
        batch.create_unique_constraint("uq_events_agent_id_id", ["agent_id", "id"])
        batch.create_unique_constraint("uq_events_agent_id_seq", ["agent_id", "seq"])
        batch.create_index("ix_events_id", ["id"])
    with op.batch_alter_table("alert_events") as batch:
        batch.drop_constraint("pk_alert_events", type_="primary")
        batch.create_primary_key("pk_alert_events", ["event_id", "alert_id"])


def downgrade() -> None:
    with op.batch_alter_table("alert_events") as batch:
        batch.drop_constraint("pk_alert_events", type_="primary")
        batch.create_primary_key("pk_alert_events", ["event_id"])
    with op.batch_alter_table("events") as batch:
        batch.drop_index("ix_events_id")
        batch.drop_constraint("uq_events_agent_id_seq", type_="unique")
        batch.drop_constraint("uq_events_agent_id_id", type_="unique")
        batch.create_unique_constraint("uq_events_id", ["id"])
    op.execute(
        "UPDATE events SET seq = (SELECT c.seq FROM event_seqs_cleared c WHERE c.event_pk = "
        "events.pk) WHERE pk IN (SELECT event_pk FROM event_seqs_cleared)"
    )
    op.drop_table("event_seqs_cleared")
