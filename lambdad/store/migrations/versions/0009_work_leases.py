"""Work with exactly one owner in a cluster: the ``work_leases`` table, the Event queue's partitions, and
provisioned concurrency statuses in the store (the owner reports them, every node answers them).

Revision ID: 0009_work_leases
Revises: 0007_async_events
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_work_leases"
down_revision = "0007_async_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "work_leases",
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("incarnation", sa.String(128), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "key", name="pk_work_leases"),
    )
    # Events queued before partitions existed belong to partition 0: they run once its owner claims them.
    op.add_column(
        "async_events", sa.Column("partition", sa.SmallInteger(), nullable=False, server_default=sa.text("0"))
    )

    op.add_column("provisioned_concurrency_configs", sa.Column("status", sa.String(16), nullable=True))
    op.add_column(
        "provisioned_concurrency_configs",
        sa.Column("allocated", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.add_column("provisioned_concurrency_configs", sa.Column("status_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    for column in ("status_reason", "allocated", "status"):
        op.drop_column("provisioned_concurrency_configs", column)
    op.drop_column("async_events", "partition")
    op.drop_table("work_leases")
