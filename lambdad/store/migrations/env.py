"""Alembic environment: runs on the connection lambdad hands over (``Database.migrate``)."""

from alembic import context

from lambdad.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
context.run_migrations()
