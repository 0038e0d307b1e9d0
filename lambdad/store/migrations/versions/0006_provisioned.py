"""Provisioned concurrency configs.

Revision ID: 0006_provisioned
Revises: 0005_layers
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_provisioned"
down_revision = "0005_layers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "provisioned_concurrency_configs",
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("function_name", sa.String(64), nullable=False),
        sa.Column("qualifier", sa.String(128), nullable=False),
        sa.Column("requested", sa.Integer(), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["region", "function_name"],
            ["functions.region", "functions.name"],
            name="fk_provisioned_concurrency_configs_region_functions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "region", "function_name", "qualifier", name="pk_provisioned_concurrency_configs"
        ),
    )


def downgrade() -> None:
    op.drop_table("provisioned_concurrency_configs")
