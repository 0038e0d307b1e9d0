"""The key ring's check (which ring sealed this data), and no more secrets in plain text: the cluster's
shared secrets (code links, forwarding) are derived from the key ring every node reads instead.

Environment variables already stored in plain text are sealed at the next start (``store/sealing.py``):
a migration cannot reach the key ring, which lives outside the database on purpose.

Revision ID: 0010_key_ring
Revises: 0009_code_packages
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_key_ring"
down_revision = "0009_code_packages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_ring",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("proof", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_key_ring"),
    )
    op.drop_table("cluster_secrets")


def downgrade() -> None:
    op.create_table(
        "cluster_secrets",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_cluster_secrets"),
    )
    op.drop_table("key_ring")
