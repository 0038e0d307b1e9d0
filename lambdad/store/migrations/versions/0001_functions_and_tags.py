"""Functions, their versions, and tags.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "functions",
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("region", "name", name="pk_functions"),
    )
    op.create_table(
        "function_versions",
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("function_name", sa.String(64), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("revision_id", sa.String(36), nullable=False),
        sa.Column("code_sha256", sa.String(64), nullable=False),
        sa.Column("code_size", sa.BigInteger(), nullable=False),
        sa.Column("unzipped_size", sa.BigInteger(), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["region", "function_name"],
            ["functions.region", "functions.name"],
            name="fk_function_versions_region_functions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("region", "function_name", "version", name="pk_function_versions"),
    )
    op.create_table(
        "tags",
        sa.Column("resource_arn", sa.String(256), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("resource_arn", "key", name="pk_tags"),
    )


def downgrade() -> None:
    op.drop_table("tags")
    op.drop_table("function_versions")
    op.drop_table("functions")
