"""What a FunctionName and Qualifier name, and whether the function may change now.

A FunctionName is a name, a partial ARN or a full ARN, maybe qualified; a qualifier is ``$LATEST``, a
published version ("1", "2", ...) or an alias, which reaches one version or, when weighted, two.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from lambdad.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lambdad.models import (
    LATEST,
    Alias,
    FunctionState,
    FunctionVersion,
    Scope,
    UpdateStatus,
    is_version_number,
    parse_function_ref,
)
from lambdad.store import aliases as alias_records
from lambdad.store import functions as records

REVISION_MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to "
    "retrieve the latest Revision Id"
)


def resolve(scope: Scope, function_name: str, qualifier: str | None = None) -> tuple[str, str | None]:
    """The function name and qualifier a FunctionName (name, partial or full ARN) plus Qualifier mean."""
    ref = parse_function_ref(function_name)
    if ref is None:
        raise ResourceNotFoundException(f"Function not found: {scope.function_arn(function_name)}")
    if ref.qualifier and qualifier and ref.qualifier != qualifier:
        raise InvalidParameterValueException(
            "The derived qualifier from the function name does not match the specified qualifier."
        )
    resolved_qualifier = ref.qualifier or qualifier
    if ref.region and ref.region != scope.region:
        raise ResourceNotFoundException(
            f"Functions from '{ref.region}' are not reachable in this region ('{scope.region}')"
        )
    if ref.account and ref.account != scope.account:
        # Another account's function: lambdad serves one account.
        arn = (
            f"arn:aws:lambda:{ref.region or scope.region}:{ref.account or scope.account}:function:{ref.name}"
        )
        raise ResourceNotFoundException(f"Function not found: {arn}")
    return ref.name, resolved_qualifier


def unqualified(scope: Scope, function_name: str) -> str:
    """The name of a function an update acts on: only ``$LATEST`` can change."""
    name, qualifier = resolve(scope, function_name)
    if qualifier not in (None, LATEST):
        raise InvalidParameterValueException("Updating a published version or an alias is not possible.")
    return name


@dataclass(frozen=True)
class Target:
    """The version(s) a qualifier reaches: ``version``, and through a weighted alias ``additional``
    with its weight (the share of invocations it receives)."""

    version: FunctionVersion
    alias: Alias | None = None
    additional: FunctionVersion | None = None
    weight: float = 0.0


def read_target(connection: Connection, scope: Scope, name: str, qualifier: str | None) -> Target | None:
    """What ``qualifier`` (None meaning ``$LATEST``) of function ``name`` reaches, or None if nothing."""
    qualifier = qualifier or LATEST
    if qualifier == LATEST or is_version_number(qualifier):
        version = records.get_version(connection, scope, name, qualifier)
        return Target(version) if version else None
    alias = alias_records.get_alias(connection, scope, name, qualifier)
    if alias is None:
        return None
    version = records.get_version(connection, scope, name, alias.function_version)
    if version is None:  # the store never lets an alias outlive its version; be safe regardless
        return None
    for other, weight in alias.additional_weights.items():
        additional = records.get_version(connection, scope, name, other)
        if additional is not None:
            return Target(version, alias, additional, weight)
    return Target(version, alias)


def latest_for_update(
    connection: Connection, scope: Scope, name: str, revision_id: str | None
) -> FunctionVersion:
    """``$LATEST``, locked, after checking the RevisionId precondition and that no change is pending."""
    current = records.get_version(connection, scope, name, for_update=True)
    if current is None:
        raise ResourceNotFoundException(f"Function not found: {scope.function_arn(name)}")
    if revision_id is not None and revision_id != current.revision_id:
        raise PreconditionFailedException(REVISION_MISMATCH)
    if current.state is FunctionState.PENDING:
        raise ResourceConflictException(
            "The operation cannot be performed at this time. The function is currently in the "
            "following state: Pending"
        )
    if current.last_update_status is UpdateStatus.IN_PROGRESS:
        raise ResourceConflictException(
            "The operation cannot be performed at this time. An update is in progress for resource: "
            f"{scope.function_arn(name)}"
        )
    return current
