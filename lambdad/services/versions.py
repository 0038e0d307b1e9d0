"""Published versions: PublishVersion (also behind ``Publish=True``), ListVersionsByFunction, and
deleting one version.

A published version is an immutable snapshot of ``$LATEST``'s code and configuration, numbered 1, 2, ...
(numbers are never reused). Publishing when ``$LATEST`` has not changed since the newest version
answers that version instead of making another, as AWS does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Connection

from lambdad.errors import (
    InvalidParameterValueException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lambdad.models import LATEST, FunctionState, FunctionVersion, Scope, UpdateStatus, utcnow
from lambdad.services import limits
from lambdad.services.activation import Activator
from lambdad.services.changes import DELETED, VERSIONS, FunctionChanges
from lambdad.services.resolution import latest_for_update, resolve, unqualified
from lambdad.store import Database
from lambdad.store import aliases as alias_records
from lambdad.store import functions as records
from lambdad.store import provisioned as provisioned_records

_CREATING = "The function is being created."


@dataclass(frozen=True)
class VersionPage:
    """One page of ListVersionsByFunction."""

    versions: list[FunctionVersion]
    next_marker: str | None


def publish_in(
    connection: Connection, scope: Scope, latest: FunctionVersion, description: str | None = None
) -> tuple[FunctionVersion, bool]:
    """Publish ``latest`` inside the caller's transaction: (the version, whether it is new).

    A version published from a ``$LATEST`` that is still being prepared starts Pending (the caller
    submits it to the activator); otherwise it is Active at once. Publishing changes ``$LATEST``'s
    RevisionId, as on AWS.
    """
    newest = records.newest_published(connection, scope, latest.name)
    if newest is not None and newest.config_revision == latest.config_revision:
        return newest, False
    number = records.next_version_number(connection, scope, latest.name)
    if latest.is_settled:
        state = {
            "state": latest.state,
            "state_reason": latest.state_reason,
            "state_reason_code": latest.state_reason_code,
            "last_update_status": UpdateStatus.SUCCESSFUL,
        }
    else:
        state = {
            "state": FunctionState.PENDING,
            "state_reason": _CREATING,
            "state_reason_code": "Creating",
            "last_update_status": None,
        }
    version = latest.evolve(
        version=str(number),
        revision_id=str(uuid.uuid4()),
        last_modified=utcnow(),
        description=latest.description if description is None else description,
        last_update_status_reason=None,
        last_update_status_reason_code=None,
        **state,
    )
    records.insert_version(connection, scope, version)
    records.save_version(connection, scope, latest.evolve(revision_id=str(uuid.uuid4())))
    return version, True


class VersionService:
    """PublishVersion, ListVersionsByFunction and DeleteFunction of one version."""

    def __init__(self, database: Database, activator: Activator, changes: FunctionChanges) -> None:
        self._database = database
        self._activator = activator
        self._changes = changes

    def publish(
        self,
        scope: Scope,
        function_name: str,
        *,
        code_sha256: str | None = None,
        revision_id: str | None = None,
        description: str | None = None,
    ) -> FunctionVersion:
        """PublishVersion, with its CodeSha256 and RevisionId preconditions."""
        name = unqualified(scope, function_name)
        with self._database.write() as connection:
            latest = records.get_version(connection, scope, name)
            if latest is None:
                raise ResourceNotFoundException(f"Function not found: {scope.function_arn(name)}")
            if code_sha256 is not None and code_sha256 != latest.code.code_sha256:
                raise InvalidParameterValueException(
                    f"CodeSHA256 ({code_sha256}) is different from current CodeSHA256 in $LATEST "
                    f"({latest.code.code_sha256}). Please try again with the CodeSHA256 in $LATEST."
                )
            latest = latest_for_update(connection, scope, name, revision_id)
            version, created = publish_in(connection, scope, latest, description)
        if created:
            self._changes.notify(scope, name, VERSIONS)
            if version.state is FunctionState.PENDING:
                self._activator.submit(scope, name, version.version)
        return version

    def list(
        self, scope: Scope, function_name: str, *, marker: str | None, max_items: int | None
    ) -> VersionPage:
        """A page of the function's versions: ``$LATEST`` first, then by number."""
        name, _ = resolve(scope, function_name)
        limit = max_items or limits.LIST_PAGE_DEFAULT
        if marker is not None and marker != LATEST and not marker.isdigit():
            raise InvalidParameterValueException("Invalid Marker value.")
        with self._database.read() as connection:
            if not records.function_exists(connection, scope, name):
                raise ResourceNotFoundException(f"Function not found: {scope.function_arn(name)}")
            versions = records.function_versions_page(connection, scope, name, after=marker, limit=limit + 1)
        if len(versions) <= limit:
            return VersionPage(versions, None)
        return VersionPage(versions[:limit], versions[limit - 1].version)

    def delete(self, scope: Scope, name: str, version: str) -> None:
        """Delete one published version: a version no longer there is fine (AWS answers 204 too), one an
        alias still reaches is not."""
        with self._database.write() as connection:
            if not records.function_exists(connection, scope, name):
                raise ResourceNotFoundException(f"Function not found: {scope.function_arn(name)}")
            referencing = [
                alias.name
                for alias in alias_records.list_aliases(connection, scope, name)
                if alias.function_version == version or version in alias.additional_weights
            ]
            if referencing:
                raise ResourceConflictException(
                    "Unable to delete version because the following aliases reference it: "
                    f"[{', '.join(referencing)}]"
                )
            deleted = records.delete_version(connection, scope, name, version)
            provisioned_records.delete_config(connection, scope, name, version)
        if deleted:
            self._changes.notify(scope, name, DELETED)
