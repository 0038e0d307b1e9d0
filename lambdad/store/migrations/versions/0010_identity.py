"""Identities: accounts, IAM users, access keys, roles, inline and managed policies, attachments, and STS
role sessions.

Revision ID: 0010_identity
Revises: 0009_capacity_providers
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_identity"
down_revision = "0009_capacity_providers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "iam_accounts",
        sa.Column("id", sa.String(12), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_iam_accounts"),
    )
    op.create_table(
        "iam_users",
        sa.Column("account", sa.String(12), nullable=False),
        sa.Column("name_key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", "name_key", name="pk_iam_users"),
        sa.UniqueConstraint("user_id", name="uq_iam_users_user_id"),
    )
    op.create_table(
        "iam_access_keys",
        sa.Column("access_key_id", sa.String(32), nullable=False),
        sa.Column("account", sa.String(12), nullable=False),
        sa.Column("user_name_key", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("access_key_id", name="pk_iam_access_keys"),
    )
    op.create_index("ix_iam_access_keys_owner", "iam_access_keys", ["account", "user_name_key"])
    op.create_table(
        "iam_roles",
        sa.Column("account", sa.String(12), nullable=False),
        sa.Column("name_key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("role_id", sa.String(32), nullable=False),
        sa.Column("trust_policy", sa.Text(), nullable=False),
        sa.Column("max_session_duration", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", "name_key", name="pk_iam_roles"),
        sa.UniqueConstraint("role_id", name="uq_iam_roles_role_id"),
    )
    op.create_table(
        "iam_inline_policies",
        sa.Column("account", sa.String(12), nullable=False),
        sa.Column("owner_kind", sa.String(8), nullable=False),
        sa.Column("owner_key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("account", "owner_kind", "owner_key", "name", name="pk_iam_inline_policies"),
    )
    op.create_table(
        "iam_policies",
        sa.Column("account", sa.String(12), nullable=False),
        sa.Column("name_key", sa.String(128), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("policy_id", sa.String(32), nullable=False),
        sa.Column("default_version", sa.String(16), nullable=False),
        sa.Column("next_version", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", "name_key", name="pk_iam_policies"),
        sa.UniqueConstraint("policy_id", name="uq_iam_policies_policy_id"),
    )
    op.create_table(
        "iam_policy_versions",
        sa.Column("account", sa.String(12), nullable=False),
        sa.Column("policy_key", sa.String(128), nullable=False),
        sa.Column("version_id", sa.String(16), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account", "policy_key"],
            ["iam_policies.account", "iam_policies.name_key"],
            name="fk_iam_policy_versions_account_iam_policies",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account", "policy_key", "version_id", name="pk_iam_policy_versions"),
    )
    op.create_table(
        "iam_attachments",
        sa.Column("account", sa.String(12), nullable=False),
        sa.Column("owner_kind", sa.String(8), nullable=False),
        sa.Column("owner_key", sa.String(64), nullable=False),
        sa.Column("policy_arn", sa.String(2048), nullable=False),
        sa.Column("attached_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "account", "owner_kind", "owner_key", "policy_arn", name="pk_iam_attachments"
        ),
    )
    op.create_index("ix_iam_attachments_policy", "iam_attachments", ["account", "policy_arn"])
    op.create_table(
        "sts_sessions",
        sa.Column("access_key_id", sa.String(32), nullable=False),
        sa.Column("account", sa.String(12), nullable=False),
        sa.Column("role_arn", sa.String(2048), nullable=False),
        sa.Column("role_id", sa.String(32), nullable=False),
        sa.Column("session_name", sa.String(64), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("access_key_id", name="pk_sts_sessions"),
    )
    op.create_index("ix_sts_sessions_expires_at", "sts_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_sts_sessions_expires_at", "sts_sessions")
    op.drop_table("sts_sessions")
    op.drop_index("ix_iam_attachments_policy", "iam_attachments")
    for table in ("iam_attachments", "iam_policy_versions", "iam_policies", "iam_inline_policies"):
        op.drop_table(table)
    op.drop_table("iam_roles")
    op.drop_index("ix_iam_access_keys_owner", "iam_access_keys")
    for table in ("iam_access_keys", "iam_users", "iam_accounts"):
        op.drop_table(table)
