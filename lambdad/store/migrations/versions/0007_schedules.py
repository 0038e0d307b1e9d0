"""EventBridge Scheduler: schedule groups and schedules.

Revision ID: 0007_schedules
Revises: 0006_provisioned
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_schedules"
down_revision = "0006_provisioned"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedule_groups",
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("region", "name", name="pk_schedule_groups"),
    )
    op.create_table(
        "schedules",
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("group_name", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_token", sa.String(64), nullable=True),
        sa.Column("last_slot", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_result", sa.String(512), nullable=True),
        sa.ForeignKeyConstraint(
            ["region", "group_name"],
            ["schedule_groups.region", "schedule_groups.name"],
            name="fk_schedules_region_schedule_groups",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("region", "group_name", "name", name="pk_schedules"),
    )


def downgrade() -> None:
    op.drop_table("schedules")
    op.drop_table("schedule_groups")
