"""Queries on layers and their versions. Each takes the transaction's connection."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from lambdad.models import CodePackage, Scope
from lambdad.store.records import as_utc
from lambdad.store.schema import layer_versions, layers
from lambdad.store.scoping import in_scope, scoped


@dataclass(frozen=True)
class LayerVersion:
    """One published version of a layer, with its resource-based policy (``statements`` in the order
    added; empty when it has none)."""

    name: str
    version: int
    code: CodePackage
    created: datetime
    description: str = ""
    license_info: str | None = None
    # None when the publisher did not say (AWS then leaves the member out).
    compatible_runtimes: tuple[str, ...] | None = None
    compatible_architectures: tuple[str, ...] | None = None
    statements: list[dict[str, Any]] = field(default_factory=list)
    policy_revision_id: str | None = None


def next_version_number(connection: Connection, scope: Scope, name: str) -> int:
    """Take the layer's next version number (creating the layer if new; numbers are never reused)."""
    key = (in_scope(layers, scope), layers.c.name == name)
    bumped = connection.execute(update(layers).where(*key).values(last_version=layers.c.last_version + 1))
    if not bumped.rowcount:
        connection.execute(insert(layers).values(**scoped(scope), name=name, last_version=1))
    return int(connection.execute(select(layers.c.last_version).where(*key)).scalar_one())


def insert_version(connection: Connection, scope: Scope, layer: LayerVersion) -> None:
    """Store a newly published layer version."""
    connection.execute(
        insert(layer_versions).values(
            **scoped(scope),
            layer_name=layer.name,
            version=layer.version,
            description=layer.description,
            license_info=layer.license_info,
            compatible_runtimes=_listed(layer.compatible_runtimes),
            compatible_architectures=_listed(layer.compatible_architectures),
            code_sha256=layer.code.sha256_hex,
            code_size=layer.code.size,
            unzipped_size=layer.code.unzipped_size,
            disk_size=layer.code.disk_size,
            created_at=layer.created,
            policy=list(layer.statements),
            policy_revision_id=layer.policy_revision_id,
        )
    )


def get_version(
    connection: Connection, scope: Scope, name: str, version: int, *, for_update: bool = False
) -> LayerVersion | None:
    """One layer version, or None."""
    query = select(layer_versions).where(
        in_scope(layer_versions, scope),
        layer_versions.c.layer_name == name,
        layer_versions.c.version == version,
    )
    if for_update:
        query = query.with_for_update()
    row = connection.execute(query).first()
    return _from_row(row) if row else None


def list_versions(connection: Connection, scope: Scope, name: str | None = None) -> list[LayerVersion]:
    """The versions of one layer (or of every layer in the region), by layer name, newest first."""
    query = select(layer_versions).where(in_scope(layer_versions, scope))
    if name is not None:
        query = query.where(layer_versions.c.layer_name == name)
    query = query.order_by(layer_versions.c.layer_name, layer_versions.c.version.desc())
    return [_from_row(row) for row in connection.execute(query)]


def delete_version(connection: Connection, scope: Scope, name: str, version: int) -> None:
    """Remove one layer version (nothing if there is none)."""
    connection.execute(
        delete(layer_versions).where(
            in_scope(layer_versions, scope),
            layer_versions.c.layer_name == name,
            layer_versions.c.version == version,
        )
    )


def save_policy(
    connection: Connection,
    scope: Scope,
    name: str,
    version: int,
    statements: list[dict[str, Any]],
    revision_id: str,
) -> None:
    """Replace a layer version's policy."""
    connection.execute(
        update(layer_versions)
        .where(
            in_scope(layer_versions, scope),
            layer_versions.c.layer_name == name,
            layer_versions.c.version == version,
        )
        .values(policy=statements, policy_revision_id=revision_id)
    )


def stored_packages(connection: Connection) -> dict[str, int]:
    """Every layer version's package digest, with the bytes it takes on disk (``stored_size``)."""
    return {
        layer.code.sha256_hex: layer.code.stored_size
        for layer in map(_from_row, connection.execute(select(layer_versions)))
    }


def _from_row(row: Any) -> LayerVersion:
    return LayerVersion(
        name=row.layer_name,
        version=int(row.version),
        code=CodePackage(row.code_sha256, int(row.code_size), int(row.unzipped_size), int(row.disk_size)),
        created=as_utc(row.created_at),
        description=row.description,
        license_info=row.license_info,
        compatible_runtimes=_tupled(row.compatible_runtimes),
        compatible_architectures=_tupled(row.compatible_architectures),
        statements=list(row.policy),
        policy_revision_id=row.policy_revision_id,
    )


def _listed(values: tuple[str, ...] | None) -> list[str] | None:
    return None if values is None else list(values)


def _tupled(values: list[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)
