"""EC2 networks: VPCs, subnets, security groups and their rules.

Revision ID: 0010_networks
Revises: 0009_capacity_providers
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_networks"
down_revision = "0009_capacity_providers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vpcs",
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("vpc_id", sa.String(32), nullable=False),
        sa.Column("cidr_block", sa.String(43), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("region", "vpc_id", name="pk_vpcs"),
    )
    op.create_table(
        "subnets",
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("subnet_id", sa.String(32), nullable=False),
        sa.Column("vpc_id", sa.String(32), nullable=False),
        sa.Column("cidr_block", sa.String(43), nullable=False),
        sa.Column("availability_zone", sa.String(40), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["region", "vpc_id"],
            ["vpcs.region", "vpcs.vpc_id"],
            name="fk_subnets_region_vpcs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("region", "subnet_id", name="pk_subnets"),
    )
    op.create_table(
        "security_groups",
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("group_id", sa.String(32), nullable=False),
        sa.Column("vpc_id", sa.String(32), nullable=False),
        sa.Column("group_name", sa.String(255), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["region", "vpc_id"],
            ["vpcs.region", "vpcs.vpc_id"],
            name="fk_security_groups_region_vpcs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("region", "group_id", name="pk_security_groups"),
        sa.UniqueConstraint("region", "vpc_id", "group_name", name="uq_security_groups_name"),
    )
    op.create_table(
        "security_group_rules",
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("rule_id", sa.String(32), nullable=False),
        sa.Column("group_id", sa.String(32), nullable=False),
        sa.Column("is_egress", sa.Boolean(), nullable=False),
        sa.Column("ip_protocol", sa.String(16), nullable=False),
        sa.Column("from_port", sa.Integer(), nullable=False),
        sa.Column("to_port", sa.Integer(), nullable=False),
        sa.Column("cidr_ipv4", sa.String(43), nullable=True),
        sa.Column("referenced_group_id", sa.String(32), nullable=True),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["region", "group_id"],
            ["security_groups.region", "security_groups.group_id"],
            name="fk_security_group_rules_region_security_groups",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("region", "rule_id", name="pk_security_group_rules"),
    )


def downgrade() -> None:
    op.drop_table("security_group_rules")
    op.drop_table("security_groups")
    op.drop_table("subnets")
    op.drop_table("vpcs")
