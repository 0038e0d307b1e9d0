"""Durable Event (asynchronous) invocations.

Revision ID: 0007_async_events
Revises: 0006_provisioned
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_async_events"
down_revision = "0006_provisioned"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "async_events",
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("account", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("function_name", sa.String(256), nullable=False),
        sa.Column("qualifier", sa.String(128), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("client_context", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("due_at", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("requeues", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("lease_until", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("deliveries", sa.JSON(), nullable=True),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("request_id", name="pk_async_events"),
    )
    op.create_index("ix_async_events_due_at", "async_events", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_async_events_due_at", table_name="async_events")
    op.drop_table("async_events")
