"""Aliases (CreateAlias, GetAlias, ListAliases, UpdateAlias, DeleteAlias), with AWS's rules for
RoutingConfig: at most one additional version, never ``$LATEST``, and every version must exist."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from lambdad.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lambdad.models import LATEST, Alias, Scope
from lambdad.services import limits
from lambdad.services.changes import ALIASES, FunctionChanges
from lambdad.services.resolution import REVISION_MISMATCH, resolve
from lambdad.store import Database
from lambdad.store import aliases as alias_records
from lambdad.store import functions as records
from lambdad.store import provisioned as provisioned_records


@dataclass(frozen=True)
class AliasPage:
    """One page of ListAliases."""

    aliases: list[Alias]
    next_marker: str | None


class AliasService:
    """Named pointers to versions; the invoke path reads them through ``FunctionLookup``."""

    def __init__(self, database: Database, changes: FunctionChanges) -> None:
        self._database = database
        self._changes = changes

    def create(
        self,
        scope: Scope,
        function_name: str,
        name: str,
        function_version: str,
        description: str = "",
        routing: dict[str, Any] | None = None,
    ) -> Alias:
        """CreateAlias."""
        function = _function(scope, function_name)
        weights = _weights(routing)
        alias = Alias(function, name, function_version, str(uuid.uuid4()), description, weights)
        with self._database.write() as connection:
            self._check_targets(connection, scope, alias)
            if alias_records.get_alias(connection, scope, function, name) is not None:
                raise ResourceConflictException(f"Alias already exists: {scope.function_arn(function, name)}")
            alias_records.insert_alias(connection, scope, alias)
        self._changes.notify(scope, function, ALIASES)
        return alias

    def get(self, scope: Scope, function_name: str, name: str) -> Alias:
        """GetAlias."""
        function = _function(scope, function_name)
        with self._database.read() as connection:
            _check_function(connection, scope, function)
            alias = alias_records.get_alias(connection, scope, function, name)
        if alias is None:
            raise ResourceNotFoundException(f"Cannot find alias arn: {scope.function_arn(function, name)}")
        return alias

    def list(
        self,
        scope: Scope,
        function_name: str,
        *,
        function_version: str | None = None,
        marker: str | None = None,
        max_items: int | None = None,
    ) -> AliasPage:
        """ListAliases in name order, optionally only those pointing at ``function_version``."""
        function = _function(scope, function_name)
        limit = max_items or limits.LIST_PAGE_DEFAULT
        with self._database.read() as connection:
            _check_function(connection, scope, function)
            found = alias_records.list_aliases(connection, scope, function, after=marker)
        if function_version is not None:
            found = [alias for alias in found if alias.function_version == function_version]
        if len(found) <= limit:
            return AliasPage(found, None)
        return AliasPage(found[:limit], found[limit - 1].name)

    def update(
        self,
        scope: Scope,
        function_name: str,
        name: str,
        *,
        function_version: str | None = None,
        description: str | None = None,
        routing: dict[str, Any] | None = None,
        revision_id: str | None = None,
    ) -> Alias:
        """UpdateAlias: members left out keep their values; every update gets a new RevisionId."""
        function = _function(scope, function_name)
        with self._database.write() as connection:
            _check_function(connection, scope, function)
            current = alias_records.get_alias(connection, scope, function, name, for_update=True)
            if current is None:
                raise ResourceNotFoundException(f"Alias not found: {scope.function_arn(function, name)}")
            if revision_id is not None and revision_id != current.revision_id:
                raise PreconditionFailedException(REVISION_MISMATCH)
            changes: dict[str, Any] = {"revision_id": str(uuid.uuid4())}
            if function_version is not None:
                changes["function_version"] = function_version
            if description is not None:
                changes["description"] = description
            if routing is not None:
                changes["additional_weights"] = _weights(routing)
            updated = current.evolve(**changes)
            self._check_targets(connection, scope, updated)
            alias_records.save_alias(connection, scope, updated)
        self._changes.notify(scope, function, ALIASES)
        return updated

    def delete(self, scope: Scope, function_name: str, name: str) -> None:
        """DeleteAlias (an alias that is not there is not an error, as on AWS)."""
        function = _function(scope, function_name)
        with self._database.write() as connection:
            _check_function(connection, scope, function)
            deleted = alias_records.delete_alias(connection, scope, function, name)
            provisioned_records.delete_config(connection, scope, function, name)
        if deleted:
            self._changes.notify(scope, function, ALIASES)

    def _check_targets(self, connection: Connection, scope: Scope, alias: Alias) -> None:
        # AWS's order of checks, as its recorded answers show.
        weights = alias.additional_weights
        if weights and alias.function_version == LATEST:
            raise InvalidParameterValueException(
                "$LATEST is not supported for an alias pointing to more than 1 version"
            )
        if alias.function_version in weights:
            raise InvalidParameterValueException(
                f"Invalid function version {alias.function_version}. Function version "
                f"{alias.function_version} is already included in routing configuration."
            )
        for version in (alias.function_version, *weights):
            if records.get_version(connection, scope, alias.function_name, version) is None:
                raise ResourceNotFoundException(
                    f"Function not found: {scope.function_arn(alias.function_name, version)}"
                )


def _function(scope: Scope, function_name: str) -> str:
    # Aliases belong to the function; a qualifier in its name does not change which one.
    name, _ = resolve(scope, function_name)
    return name


def _check_function(connection: Connection, scope: Scope, name: str) -> None:
    if not records.function_exists(connection, scope, name):
        raise ResourceNotFoundException(f"Function not found: {scope.function_arn(name)}")


def _weights(routing: dict[str, Any] | None) -> dict[str, float]:
    weights = dict((routing or {}).get("AdditionalVersionWeights") or {})
    if len(weights) > 1:
        raise InvalidParameterValueException(
            "Number of items in AdditionalVersionWeights cannot be greater than 1"
        )
    return {str(version): float(weight) for version, weight in weights.items()}
