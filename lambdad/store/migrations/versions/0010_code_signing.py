"""Code signing: AWS Signer's signing profiles and signing jobs, Lambda's code signing configs and which
function uses which.

Revision ID: 0010_code_signing
Revises: 0009_capacity_providers
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_code_signing"
down_revision = "0009_capacity_providers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signing_profiles",
        sa.Column("account", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.String(10), nullable=False),
        sa.Column("version_arn", sa.String(2048), nullable=False),
        sa.Column("platform_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("validity_value", sa.Integer(), nullable=False),
        sa.Column("validity_type", sa.String(8), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(2048), nullable=True),
        sa.Column("revocation_reason", sa.String(500), nullable=True),
        sa.Column("revocation_effective", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("account", "region", "name", name="pk_signing_profiles"),
        sa.UniqueConstraint("version_arn", name="uq_signing_profiles_version_arn"),
    )
    op.create_table(
        "signing_jobs",
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("account", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("profile_name", sa.String(64), nullable=False),
        sa.Column("profile_version", sa.String(10), nullable=False),
        sa.Column("platform_id", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(96), nullable=False),
        sa.Column("requested_by", sa.String(2048), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(2048), nullable=True),
        sa.Column("revocation_reason", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("job_id", name="pk_signing_jobs"),
    )
    op.create_table(
        "code_signing_configs",
        sa.Column("arn", sa.String(200), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("config_id", sa.String(21), nullable=False),
        sa.Column("description", sa.String(256), nullable=False),
        sa.Column("allowed_publishers", sa.JSON(), nullable=False),
        sa.Column("untrusted_artifact", sa.String(8), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("arn", name="pk_code_signing_configs"),
    )
    op.create_table(
        "function_code_signing",
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("function_name", sa.String(64), nullable=False),
        sa.Column("config_arn", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(
            ["region", "function_name"],
            ["functions.region", "functions.name"],
            name="fk_function_code_signing_region_functions",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["config_arn"],
            ["code_signing_configs.arn"],
            name="fk_function_code_signing_config_arn_code_signing_configs",
        ),
        sa.PrimaryKeyConstraint("region", "function_name", name="pk_function_code_signing"),
    )
    op.create_index(
        "ix_function_code_signing_config_arn", "function_code_signing", ["config_arn"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_function_code_signing_config_arn", table_name="function_code_signing")
    op.drop_table("function_code_signing")
    op.drop_table("code_signing_configs")
    op.drop_table("signing_jobs")
    op.drop_table("signing_profiles")
