"""Conversions between domain objects and table rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lambdad.models import (
    LATEST,
    Alias,
    CodePackage,
    FunctionLayer,
    FunctionState,
    FunctionVersion,
    Scope,
    UpdateStatus,
)
from lambdad.store.keyring import KeyRing
from lambdad.store.scoping import scoped
from lambdad.store.sealing import open_environment, seal_environment

# FunctionVersion fields kept in the JSON ``config`` column (the rest have columns of their own).
_CONFIG_FIELDS = (
    "runtime",
    "handler",
    "role",
    "memory_size",
    "timeout",
    "description",
    "environment",
    "ephemeral_storage",
    "architectures",
    "package_type",
    "state",
    "state_reason",
    "state_reason_code",
    "last_update_status",
    "last_update_status_reason",
    "last_update_status_reason_code",
    "extra",
    "config_revision",
    "layers",
)


def version_to_row(scope: Scope, version: FunctionVersion, ring: KeyRing | None = None) -> dict[str, Any]:
    """The function_versions row for one version; its environment variables sealed with ``ring``."""
    config = {name: getattr(version, name) for name in _CONFIG_FIELDS}
    config["environment"] = seal_environment(ring, scope.region, version.name, version.environment)
    config["architectures"] = list(version.architectures)
    config["layers"] = [layer_to_json(layer) for layer in version.layers]
    return {
        **scoped(scope),
        "function_name": version.name,
        "version": version.version,
        "version_number": version_number(version.version),
        "revision_id": version.revision_id,
        "code_sha256": version.code.sha256_hex,
        "code_size": version.code.size,
        "unzipped_size": version.code.unzipped_size,
        "disk_size": version.code.disk_size,
        "last_modified": version.last_modified,
        "config": config,
    }


def version_from_row(row: Any, ring: KeyRing | None = None) -> FunctionVersion:
    """A FunctionVersion from a function_versions row; its environment variables opened with ``ring``."""
    config = dict(row.config)
    config["environment"] = open_environment(ring, row.region, row.function_name, config["environment"])
    status = config.pop("last_update_status")
    return FunctionVersion(
        name=row.function_name,
        version=row.version,
        code=CodePackage(row.code_sha256, int(row.code_size), int(row.unzipped_size), int(row.disk_size)),
        revision_id=row.revision_id,
        last_modified=as_utc(row.last_modified),
        state=FunctionState(config.pop("state")),
        last_update_status=UpdateStatus(status) if status else None,
        architectures=tuple(config.pop("architectures")),
        layers=tuple(layer_from_json(layer) for layer in config.pop("layers", [])),
        **config,
    )


def layer_to_json(layer: FunctionLayer) -> dict[str, Any]:
    """A function's layer as kept in its ``config`` column."""
    code = layer.code
    return {
        "arn": layer.arn,
        "sha256": code.sha256_hex,
        "size": code.size,
        "unzipped": code.unzipped_size,
        "disk": code.disk_size,
    }


def layer_from_json(value: dict[str, Any]) -> FunctionLayer:
    """A function's layer from its ``config`` column."""
    code = CodePackage(value["sha256"], int(value["size"]), int(value["unzipped"]), int(value.get("disk", 0)))
    return FunctionLayer(value["arn"], code)


def version_number(version: str) -> int:
    """The number a version sorts by: 0 for ``$LATEST``, N for version "N"."""
    return 0 if version == LATEST else int(version)


def alias_to_row(scope: Scope, alias: Alias) -> dict[str, Any]:
    """The aliases row for one alias."""
    return {
        **scoped(scope),
        "function_name": alias.function_name,
        "name": alias.name,
        "function_version": alias.function_version,
        "description": alias.description,
        "routing": dict(alias.additional_weights),
        "revision_id": alias.revision_id,
    }


def alias_from_row(row: Any) -> Alias:
    """An Alias from an aliases row."""
    return Alias(
        function_name=row.function_name,
        name=row.name,
        function_version=row.function_version,
        revision_id=row.revision_id,
        description=row.description,
        additional_weights={str(k): float(v) for k, v in dict(row.routing).items()},
    )


def as_utc(moment: datetime) -> datetime:
    """A timestamp column's value in UTC (SQLite hands back naive datetimes; PostgreSQL aware ones)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
