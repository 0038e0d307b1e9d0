"""Layers and their versions (merges the permissions and URLs branches).

Revision ID: 0005_layers
Revises: 0004_permissions, 0004_urls
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_layers"
down_revision = ("0004_permissions", "0004_urls")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "layers",
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("name", sa.String(140), nullable=False),
        sa.Column("last_version", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint("region", "name", name="pk_layers"),
    )
    op.create_table(
        "layer_versions",
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("layer_name", sa.String(140), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(256), nullable=False),
        sa.Column("license_info", sa.String(512), nullable=True),
        sa.Column("compatible_runtimes", sa.JSON(), nullable=True),
        sa.Column("compatible_architectures", sa.JSON(), nullable=True),
        sa.Column("code_sha256", sa.String(64), nullable=False),
        sa.Column("code_size", sa.BigInteger(), nullable=False),
        sa.Column("unzipped_size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("policy_revision_id", sa.String(36), nullable=True),
        sa.ForeignKeyConstraint(
            ["region", "layer_name"],
            ["layers.region", "layers.name"],
            name="fk_layer_versions_region_layers",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("region", "layer_name", "version", name="pk_layer_versions"),
    )


def downgrade() -> None:
    op.drop_table("layer_versions")
    op.drop_table("layers")
