"""Function URLs: one per function or alias, each with a stable id that names its host.

Revision ID: 0004_urls
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_urls"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "function_urls",
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("function_name", sa.String(64), nullable=False),
        sa.Column("qualifier", sa.String(128), nullable=False),
        sa.Column("url_id", sa.String(32), nullable=False),
        sa.Column("auth_type", sa.String(16), nullable=False),
        sa.Column("invoke_mode", sa.String(32), nullable=True),
        sa.Column("cors", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["region", "function_name"],
            ["functions.region", "functions.name"],
            name="fk_function_urls_region_functions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("region", "function_name", "qualifier", name="pk_function_urls"),
        sa.UniqueConstraint("url_id", name="uq_function_urls_url_id"),
    )


def downgrade() -> None:
    op.drop_table("function_urls")
