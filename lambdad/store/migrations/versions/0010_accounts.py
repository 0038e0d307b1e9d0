"""Every Lambda and Scheduler resource kept per account: ``account`` leads the keys of the tables that
were keyed by region; rows that exist go to the server's configured account.

Revision ID: 0010_accounts
Revises: every head before it (the tables it re-keys come from all of them)
Create Date: 2026-12-06

The account of existing rows comes from ``Database.migrate(account)`` through the config's attributes
(``default_account``), never a constant: a server configured with ``--account-id`` keeps its resources.

SQLite alters a key only by copying the table (batch mode), and with foreign keys on, dropping a parent
table deletes its children's rows (ON DELETE CASCADE). So: children lose their foreign keys first,
then every table gets its new key, then the children get their foreign keys back (on the new keys).
PostgreSQL takes the same steps as plain ALTERs.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from lambdad.settings import DEFAULT_ACCOUNT_ID

revision = "0010_accounts"
down_revision = (
    "0007_event_source_mappings",
    "0007_schedules",
    "0009_work_leases",
    "0010_code_signing",
    "0010_identity",
    "0010_key_ring",
    "0010_networks",
)
branch_labels = None
depends_on = None

# table -> its key after "account" (the key before was "region" plus these).
_KEYS: dict[str, tuple[str, ...]] = {
    "functions": ("region", "name"),
    "function_versions": ("region", "function_name", "version"),
    "aliases": ("region", "function_name", "name"),
    "function_urls": ("region", "function_name", "qualifier"),
    "function_policies": ("region", "function_name", "qualifier"),
    "event_invoke_configs": ("region", "function_name", "qualifier"),
    "recursion_configs": ("region", "function_name"),
    "runtime_management_configs": ("region", "function_name", "qualifier"),
    "provisioned_concurrency_configs": ("region", "function_name", "qualifier"),
    "function_scaling_configs": ("region", "function_name", "qualifier"),
    "function_code_signing": ("region", "function_name"),
    "layers": ("region", "name"),
    "layer_versions": ("region", "layer_name", "version"),
    "capacity_providers": ("region", "name"),
    "schedule_groups": ("region", "name"),
    "schedules": ("region", "group_name", "name"),
    "vpcs": ("region", "vpc_id"),
    "subnets": ("region", "subnet_id"),
    "security_groups": ("region", "group_id"),
    "security_group_rules": ("region", "rule_id"),
}
# child -> (its columns naming the parent, the parent, the parent's columns), without "account".
_PARENTS: dict[str, tuple[tuple[str, ...], str, tuple[str, ...]]] = {
    **{
        child: (("region", "function_name"), "functions", ("region", "name"))
        for child in (
            "function_versions",
            "aliases",
            "function_urls",
            "function_policies",
            "event_invoke_configs",
            "recursion_configs",
            "runtime_management_configs",
            "provisioned_concurrency_configs",
            "function_scaling_configs",
            "function_code_signing",
        )
    },
    "layer_versions": (("region", "layer_name"), "layers", ("region", "name")),
    "schedules": (("region", "group_name"), "schedule_groups", ("region", "name")),
    "subnets": (("region", "vpc_id"), "vpcs", ("region", "vpc_id")),
    "security_groups": (("region", "vpc_id"), "vpcs", ("region", "vpc_id")),
    "security_group_rules": (("region", "group_id"), "security_groups", ("region", "group_id")),
}
# Unique constraints that hold within an account: (name, columns without "account").
_UNIQUE = {"security_groups": ("uq_security_groups_name", ("region", "vpc_id", "group_name"))}
# Tables whose key stays (a uuid, an ARN) that get an account column all the same, for listing.
_ALSO = ("event_source_mappings", "code_signing_configs")


def _account() -> str:
    return str(context.config.attributes.get("default_account") or DEFAULT_ACCOUNT_ID)


def upgrade() -> None:
    account = _account()
    # Deepest children first (a rule before its security group): SQLite copies a table by dropping it,
    # which would cascade to children still holding their foreign keys.
    for child, (columns, parent, _) in reversed(_PARENTS.items()):
        with op.batch_alter_table(child) as batch:
            batch.drop_constraint(f"fk_{child}_{columns[0]}_{parent}", type_="foreignkey")
    for table, key in _KEYS.items():
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("account", sa.String(12), nullable=False, server_default=account))
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", ["account", *key])
            if table in _UNIQUE:
                unique, unique_columns = _UNIQUE[table]
                batch.drop_constraint(unique, type_="unique")
                batch.create_unique_constraint(unique, ["account", *unique_columns])
    for table in _ALSO:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("account", sa.String(12), nullable=False, server_default=account))
    # The default served only the rows that were there: new rows always say their account.
    for table in (*_KEYS, *_ALSO):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("account", existing_type=sa.String(12), server_default=None)
    # Parents first (a security group before its rules), for the same reason.
    for child, (columns, parent, parent_columns) in _PARENTS.items():
        with op.batch_alter_table(child) as batch:
            batch.create_foreign_key(
                f"fk_{child}_account_{parent}",
                parent,
                ["account", *columns],
                ["account", *parent_columns],
                ondelete="CASCADE",
            )


def downgrade() -> None:
    for child, (_, parent, _) in reversed(_PARENTS.items()):
        with op.batch_alter_table(child) as batch:
            batch.drop_constraint(f"fk_{child}_account_{parent}", type_="foreignkey")
    for table in _ALSO:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("account")
    for table, key in _KEYS.items():
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", list(key))
            if table in _UNIQUE:
                unique, unique_columns = _UNIQUE[table]
                batch.drop_constraint(unique, type_="unique")
                batch.create_unique_constraint(unique, list(unique_columns))
            batch.drop_column("account")
    for child, (columns, parent, parent_columns) in _PARENTS.items():
        with op.batch_alter_table(child) as batch:
            batch.create_foreign_key(
                f"fk_{child}_{columns[0]}_{parent}",
                parent,
                list(columns),
                list(parent_columns),
                ondelete="CASCADE",
            )
