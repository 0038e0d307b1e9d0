"""What each code package takes on disk (zip and unpacked tree), which the code-storage limit counts.

Revision ID: 0008_code_disk_size
Revises: 0006_provisioned
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_code_disk_size"
down_revision = "0006_provisioned"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 0 for packages stored before: their zipped plus unzipped sizes stand in (CodePackage.stored_size).
    for table in ("function_versions", "layer_versions"):
        op.add_column(
            table, sa.Column("disk_size", sa.BigInteger(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    for table in ("function_versions", "layer_versions"):
        op.drop_column(table, "disk_size")
