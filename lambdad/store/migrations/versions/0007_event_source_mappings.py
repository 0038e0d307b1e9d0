"""Event source mappings.

Revision ID: 0007_event_source_mappings
Revises: 0006_provisioned
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_event_source_mappings"
down_revision = "0006_provisioned"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_source_mappings",
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("function_arn", sa.String(256), nullable=False),
        sa.Column("event_source_arn", sa.String(1024), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_transition_reason", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Integer(), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_processing_result", sa.String(64), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("uuid", name="pk_event_source_mappings"),
    )
    op.create_index("ix_event_source_mappings_region", "event_source_mappings", ["region"])


def downgrade() -> None:
    op.drop_index("ix_event_source_mappings_region", "event_source_mappings")
    op.drop_table("event_source_mappings")
