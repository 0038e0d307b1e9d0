"""Reserved concurrency per function.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("functions") as batch:
        batch.add_column(sa.Column("reserved_concurrency", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("functions") as batch:
        batch.drop_column("reserved_concurrency")
