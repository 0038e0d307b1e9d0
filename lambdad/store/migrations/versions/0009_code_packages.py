"""Code packages in the database, for clusters: every node reads them, each caches them on its disk; and
the secrets every node shares.

Revision ID: 0009_code_packages
Revises: 0008_code_disk_size
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_code_packages"
down_revision = "0008_code_disk_size"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "code_packages",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_code_packages"),
    )
    op.create_table(
        "cluster_secrets",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_cluster_secrets"),
    )
    op.create_table(
        "code_package_chunks",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sha256"],
            ["code_packages.sha256"],
            name="fk_code_package_chunks_sha256_code_packages",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sha256", "seq", name="pk_code_package_chunks"),
    )


def downgrade() -> None:
    op.drop_table("code_package_chunks")
    op.drop_table("code_packages")
    op.drop_table("cluster_secrets")
