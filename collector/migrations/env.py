"""Alembic environment: runs on the connection ``collector.store.migrate`` hands it."""

from __future__ import annotations

from alembic import context

from collector.store.fulltext import is_declared
from collector.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `courtguard-collector migrate`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
    include_object=lambda _obj, name, type_, _reflected, _compare_to: is_declared(name, type_),
)
with context.begin_transaction():
    context.run_migrations()
