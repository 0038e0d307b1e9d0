"""Capacity providers (Lambda Managed Instances) and function scaling configs.

Revision ID: 0009_capacity_providers
Revises: 0008_code_disk_size
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_capacity_providers"
down_revision = "0008_code_disk_size"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "capacity_providers",
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("name", sa.String(140), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("region", "name", name="pk_capacity_providers"),
    )
    op.create_table(
        "function_scaling_configs",
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("function_name", sa.String(64), nullable=False),
        sa.Column("qualifier", sa.String(128), nullable=False),
        sa.Column("min_environments", sa.Integer(), nullable=True),
        sa.Column("max_environments", sa.Integer(), nullable=True),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["region", "function_name"],
            ["functions.region", "functions.name"],
            name="fk_function_scaling_configs_region_functions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("region", "function_name", "qualifier", name="pk_function_scaling_configs"),
    )


def downgrade() -> None:
    op.drop_table("function_scaling_configs")
    op.drop_table("capacity_providers")
