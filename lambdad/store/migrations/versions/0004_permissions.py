"""Resource-based policies, event invoke configs, recursion and runtime management configs.

Revision ID: 0004_permissions
Revises: 0003
Create Date: 2026-11-27
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004_permissions"
down_revision = "0003"
branch_labels = None
depends_on = None


def _function_key(table: str) -> list[Any]:
    return [
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("function_name", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["region", "function_name"],
            ["functions.region", "functions.name"],
            name=f"fk_{table}_region_functions",
            ondelete="CASCADE",
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "function_policies",
        *_function_key("function_policies"),
        sa.Column("qualifier", sa.String(128), nullable=False),
        sa.Column("statements", sa.JSON(), nullable=False),
        sa.Column("revision_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("region", "function_name", "qualifier", name="pk_function_policies"),
    )
    op.create_table(
        "event_invoke_configs",
        *_function_key("event_invoke_configs"),
        sa.Column("qualifier", sa.String(128), nullable=False),
        sa.Column("maximum_retry_attempts", sa.Integer(), nullable=True),
        sa.Column("maximum_event_age", sa.Integer(), nullable=True),
        sa.Column("destination_config", sa.JSON(), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("region", "function_name", "qualifier", name="pk_event_invoke_configs"),
    )
    op.create_table(
        "recursion_configs",
        *_function_key("recursion_configs"),
        sa.Column("recursive_loop", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("region", "function_name", name="pk_recursion_configs"),
    )
    op.create_table(
        "runtime_management_configs",
        *_function_key("runtime_management_configs"),
        sa.Column("qualifier", sa.String(128), nullable=False),
        sa.Column("update_runtime_on", sa.String(16), nullable=False),
        sa.Column("runtime_version_arn", sa.String(2048), nullable=True),
        sa.PrimaryKeyConstraint("region", "function_name", "qualifier", name="pk_runtime_management_configs"),
    )


def downgrade() -> None:
    op.drop_table("runtime_management_configs")
    op.drop_table("recursion_configs")
    op.drop_table("event_invoke_configs")
    op.drop_table("function_policies")
