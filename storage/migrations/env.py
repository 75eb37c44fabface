"""Alembic's environment for the catalog: migrations run on the connection the catalog hands in
(``config.attributes["connection"]``), inside the transaction it holds; there is no alembic.ini."""

from __future__ import annotations

from alembic import context

from takeover.storage.migrations import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table=VERSION_TABLE, transaction_per_migration=False)
context.run_migrations()
