"""Published versions (a per-function counter, a sortable version number) and aliases.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("functions") as batch:
        batch.add_column(sa.Column("last_version", sa.Integer(), nullable=False, server_default=sa.text("0")))
    with op.batch_alter_table("function_versions") as batch:
        batch.add_column(
            sa.Column("version_number", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    op.create_table(
        "aliases",
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("function_name", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("function_version", sa.String(32), nullable=False),
        sa.Column("description", sa.String(256), nullable=False),
        sa.Column("routing", sa.JSON(), nullable=False),
        sa.Column("revision_id", sa.String(36), nullable=False),
        sa.ForeignKeyConstraint(
            ["region", "function_name"],
            ["functions.region", "functions.name"],
            name="fk_aliases_region_functions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("region", "function_name", "name", name="pk_aliases"),
    )


def downgrade() -> None:
    op.drop_table("aliases")
    with op.batch_alter_table("function_versions") as batch:
        batch.drop_column("version_number")
    with op.batch_alter_table("functions") as batch:
        batch.drop_column("last_version")
