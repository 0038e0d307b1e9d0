"""Provisioned concurrency (Put/Get/Delete/ListProvisionedConcurrencyConfigs), per published version or
alias, never ``$LATEST``.

The configs are stored; their status (IN_PROGRESS, READY, FAILED) is the server's own, reported by
whoever starts the environments (``invocation.provisioning``), which hears of every change through
``FunctionChanges`` (``PROVISIONED``). An alias's config provisions the version(s) it reaches (a weighted
alias splits the count by weight).

Accounting, kept simple: a function's provisioned executions (all its configs together) must fit in its
reserved concurrency when it has one; otherwise they come out of the account's unreserved concurrency,
which must keep its minimum (as PutFunctionConcurrency checks). Invocations served by provisioned
environments take concurrency leases like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection

from lambdad.errors import (
    InvalidParameterValueException,
    ProvisionedConcurrencyConfigNotFoundException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lambdad.models import LATEST, Scope, is_version_number, utcnow
from lambdad.services.changes import PROVISIONED, FunctionChanges
from lambdad.services.concurrency import minimum_unreserved
from lambdad.services.resolution import read_target, resolve
from lambdad.store import Database
from lambdad.store import aliases as alias_records
from lambdad.store import functions as records
from lambdad.store import provisioned as provisioned_records
from lambdad.store.provisioned import ProvisionedConfig

IN_PROGRESS, READY, FAILED = "IN_PROGRESS", "READY", "FAILED"
NOT_PUBLISHED = "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
NOT_QUALIFIED = "The function resource provided must be an alias or a published version."
NO_CONFIG = "No Provisioned Concurrency Config found for this function"
LIST_PAGE_MAX = 50


@dataclass(frozen=True)
class ProvisionedStatus:
    """Where provisioning a config stands."""

    status: str = IN_PROGRESS
    allocated: int = 0
    reason: str | None = None


@dataclass(frozen=True)
class Provisioning:
    """What one config asks of the environment pool: ``shares`` environments per version."""

    qualifier: str
    requested: int
    shares: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ProvisionedPage:
    """One page of ListProvisionedConcurrencyConfigs."""

    configs: list[tuple[ProvisionedConfig, ProvisionedStatus]]
    next_marker: str | None


class ProvisionedConcurrencyService:
    """Provisioned concurrency configs and their status."""

    def __init__(self, database: Database, changes: FunctionChanges, account_limit: int) -> None:
        self._database = database
        self._changes = changes
        self.account_limit = account_limit

    def put(
        self, scope: Scope, function_name: str, qualifier: str | None, requested: int
    ) -> tuple[ProvisionedConfig, ProvisionedStatus]:
        """PutProvisionedConcurrencyConfig: stored now, provisioned in the background (IN_PROGRESS)."""
        name, qualifier = resolve(scope, function_name, qualifier)
        if qualifier is None or qualifier == LATEST:
            raise InvalidParameterValueException(NOT_PUBLISHED)
        with self._database.write() as connection:
            self._check_target(connection, scope, name, qualifier)
            self._check_conflicts(connection, scope, name, qualifier)
            self._check_limits(connection, scope, name, qualifier, requested)
            config = ProvisionedConfig(name, qualifier, requested, utcnow())
            provisioned_records.save_config(connection, scope, config)
        self._changes.notify(scope, name, PROVISIONED)
        return config, ProvisionedStatus()

    def get(
        self, scope: Scope, function_name: str, qualifier: str | None
    ) -> tuple[ProvisionedConfig, ProvisionedStatus]:
        """GetProvisionedConcurrencyConfig."""
        name, qualifier = self._qualified(scope, function_name, qualifier)
        with self._database.read() as connection:
            self._check_target(connection, scope, name, qualifier)
            config = provisioned_records.get_config(connection, scope, name, qualifier)
            status = _status(connection, scope, name, qualifier)
        if config is None:
            raise ProvisionedConcurrencyConfigNotFoundException(NO_CONFIG)
        return config, status

    def delete(self, scope: Scope, function_name: str, qualifier: str | None) -> None:
        """DeleteProvisionedConcurrencyConfig: its environments stop (no config is not an error)."""
        name, qualifier = self._qualified(scope, function_name, qualifier)
        with self._database.write() as connection:
            self._check_target(connection, scope, name, qualifier)
            deleted = provisioned_records.delete_config(connection, scope, name, qualifier)
        if deleted:
            self._changes.notify(scope, name, PROVISIONED)

    def list_configs(
        self, scope: Scope, function_name: str, *, marker: str | None = None, max_items: int | None = None
    ) -> tuple[str, ProvisionedPage]:
        """ListProvisionedConcurrencyConfigs: versions by number, then aliases by name."""
        name, _ = resolve(scope, function_name)
        limit = max_items or LIST_PAGE_MAX
        with self._database.read() as connection:
            if not records.function_exists(connection, scope, name):
                raise ResourceNotFoundException(f"Function not found: {scope.function_arn(name)}")
            found = sorted(
                provisioned_records.list_configs(connection, scope, name),
                key=lambda config: _sort_key(config.qualifier),
            )
            if marker is not None:
                found = [config for config in found if _sort_key(config.qualifier) > _sort_key(marker)]
            page = [(config, _status(connection, scope, name, config.qualifier)) for config in found[:limit]]
        return name, ProvisionedPage(page, found[limit - 1].qualifier if len(found) > limit else None)

    # --- for the provisioner ------------------------------------------------------------------------

    def status(self, scope: Scope, name: str, qualifier: str) -> ProvisionedStatus:
        """The config's status as last reported (IN_PROGRESS until then)."""
        with self._database.read() as connection:
            return _status(connection, scope, name, qualifier)

    def report(self, scope: Scope, name: str, qualifier: str, status: ProvisionedStatus) -> None:
        """Record how provisioning a config went, in the store (every node of a cluster answers it)."""
        with self._database.write() as connection:
            provisioned_records.save_status(
                connection, scope, name, qualifier, status.status, status.allocated, status.reason
            )

    def plans(self, scope: Scope, name: str) -> list[Provisioning]:
        """What every config of the function asks for, by version (blocking: a worker thread's call)."""
        plans = []
        with self._database.read() as connection:
            for config in provisioned_records.list_configs(connection, scope, name):
                target = read_target(connection, scope, name, config.qualifier)
                if target is None:
                    continue
                shares: dict[str, int] = {}
                extra = round(config.requested * target.weight) if target.additional is not None else 0
                if target.additional is not None and extra:
                    shares[target.additional.version] = extra
                if config.requested - extra:
                    shares[target.version.version] = config.requested - extra
                plans.append(Provisioning(config.qualifier, config.requested, shares))
        return plans

    def provisioned_functions(self) -> list[tuple[Scope, str]]:
        """(scope, name) of every function with a config (to provision at server start)."""
        with self._database.read() as connection:
            found = {
                (scope, config.function_name)
                for scope in provisioned_records.all_scopes(connection)
                for config in provisioned_records.list_configs(connection, scope)
            }
        return sorted(found)

    # --- checks -------------------------------------------------------------------------------------

    def _qualified(self, scope: Scope, function_name: str, qualifier: str | None) -> tuple[str, str]:
        name, qualifier = resolve(scope, function_name, qualifier)
        if qualifier is None or qualifier == LATEST:
            raise InvalidParameterValueException(NOT_QUALIFIED)
        return name, qualifier

    def _check_target(self, connection: Connection, scope: Scope, name: str, qualifier: str) -> None:
        if is_version_number(qualifier):
            if records.get_version(connection, scope, name, qualifier) is None:
                raise ResourceNotFoundException(f"Function not found: {scope.function_arn(name, qualifier)}")
        elif alias_records.get_alias(connection, scope, name, qualifier) is None:
            raise ResourceNotFoundException(f"Cannot find alias arn: {scope.function_arn(name, qualifier)}")

    def _check_conflicts(self, connection: Connection, scope: Scope, name: str, qualifier: str) -> None:
        configured = {c.qualifier for c in provisioned_records.list_configs(connection, scope, name)}
        aliases = alias_records.list_aliases(connection, scope, name)
        if is_version_number(qualifier):
            for alias in aliases:
                reaches = alias.function_version == qualifier or qualifier in alias.additional_weights
                if alias.name in configured and reaches:
                    raise ResourceConflictException("Version is pointed by a Provisioned Concurrency alias")
            return
        alias = next(alias for alias in aliases if alias.name == qualifier)
        if {alias.function_version, *alias.additional_weights} & configured:
            raise ResourceConflictException(
                "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned "
                "version"
            )

    def _check_limits(
        self, connection: Connection, scope: Scope, name: str, qualifier: str, requested: int
    ) -> None:
        configs = provisioned_records.list_configs(connection, scope)
        own = requested + sum(
            c.requested for c in configs if c.function_name == name and c.qualifier != qualifier
        )
        reserved = records.get_reserved_concurrency(connection, scope, name)
        if reserved is not None:
            if own > reserved:
                raise InvalidParameterValueException(
                    "Specified ConcurrentExecutions for function is greater than function's reserved "
                    f"concurrency [{reserved}]."
                )
            return
        unreserved = self.account_limit - records.total_reserved_concurrency(connection, scope)
        if own > unreserved:
            raise InvalidParameterValueException(
                "Specified ConcurrentExecutions for function is greater than account's unreserved "
                f"concurrency [{unreserved}]."
            )
        others = sum(
            c.requested
            for c in configs
            if c.function_name != name
            and records.get_reserved_concurrency(connection, scope, c.function_name) is None
        )
        minimum = minimum_unreserved(self.account_limit)
        if unreserved - others - own < minimum:
            raise InvalidParameterValueException(
                "Specified ConcurrentExecutions for function decreases account's "
                f"UnreservedConcurrentExecution below its minimum value of [{minimum}]."
            )


def _sort_key(qualifier: str) -> tuple[int, int, str]:
    if is_version_number(qualifier):
        return (0, int(qualifier), "")
    return (1, 0, qualifier)


def _status(connection: Connection, scope: Scope, name: str, qualifier: str) -> ProvisionedStatus:
    status, allocated, reason = provisioned_records.get_status(connection, scope, name, qualifier)
    return ProvisionedStatus() if status is None else ProvisionedStatus(status, allocated, reason)
