"""The tables. Alembic migrations (``store/migrations``) create them; a test keeps both in step."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
    Table,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# A function exists per region, as on AWS; its versions hang off it.
functions = Table(
    "functions",
    metadata,
    Column("region", String(32), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # PutFunctionConcurrency's ReservedConcurrentExecutions; NULL = the function shares the account pool.
    Column("reserved_concurrency", Integer, nullable=True),
    # The number of the last version published: AWS never reuses a number, even after a delete.
    Column("last_version", Integer, nullable=False, server_default=text("0")),
)

function_versions = Table(
    "function_versions",
    metadata,
    Column("region", String(32), primary_key=True),
    Column("function_name", String(64), primary_key=True),
    Column("version", String(32), primary_key=True),
    # The version as a number (0 for $LATEST), so that "10" sorts after "9".
    Column("version_number", Integer, nullable=False, server_default=text("0")),
    Column("revision_id", String(36), nullable=False),
    Column("code_sha256", String(64), nullable=False),
    Column("code_size", BigInteger, nullable=False),
    Column("unzipped_size", BigInteger, nullable=False),
    Column("last_modified", DateTime(timezone=True), nullable=False),
    # The rest of the configuration, as FunctionVersion fields (see store.records).
    Column("config", JSON, nullable=False),
    ForeignKeyConstraint(
        ["region", "function_name"], ["functions.region", "functions.name"], ondelete="CASCADE"
    ),
)

# Aliases of a function: each points at a version and may route a share of invocations to another.
aliases = Table(
    "aliases",
    metadata,
    Column("region", String(32), primary_key=True),
    Column("function_name", String(64), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("function_version", String(32), nullable=False),
    Column("description", String(256), nullable=False),
    # AdditionalVersionWeights, {version: weight}; {} when the alias has no routing configuration.
    Column("routing", JSON, nullable=False),
    Column("revision_id", String(36), nullable=False),
    ForeignKeyConstraint(
        ["region", "function_name"], ["functions.region", "functions.name"], ondelete="CASCADE"
    ),
)

# Tags belong to any taggable resource (functions today; event source mappings later), keyed by ARN.
tags = Table(
    "tags",
    metadata,
    Column("resource_arn", String(256), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
)
