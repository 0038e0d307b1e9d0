"""Function URLs (CreateFunctionUrlConfig, GetFunctionUrlConfig, UpdateFunctionUrlConfig,
DeleteFunctionUrlConfig, ListFunctionUrlConfigs), worded as AWS words them, and the cached lookup the
URL server reads on every request.

A URL belongs to a function (no qualifier) or to one of its aliases; ``$LATEST`` and published versions
cannot have one (the service model's qualifier pattern refuses them). Each URL has a stable 32-character
id that names its host, ``<url-id>.lambda-url.<region>.localhost:<port>``. Deleting the function removes
its URLs (the table's foreign key cascades); an alias's URL outlives the alias, as on AWS.
"""

from __future__ import annotations

import base64
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from lambdad.errors import (
    ResourceConflictException,
    ResourceNotFoundException,
    ValidationException,
)
from lambdad.models import LATEST, Scope, is_version_number, utcnow
from lambdad.services import limits
from lambdad.services.changes import DELETED, EVERYTHING, URLS, FunctionChanges
from lambdad.services.resolution import resolve
from lambdad.store import Database
from lambdad.store import aliases as alias_records
from lambdad.store import functions as records
from lambdad.store import urls as url_records
from lambdad.store.urls import FunctionUrl

FUNCTION_MISSING = "Function does not exist"
RESOURCE_MISSING = "The resource you requested does not exist."
QUALIFIER_PATTERN = "((?!^\\d+$)^[0-9a-zA-Z-_]+$)"
DEFAULT_INVOKE_MODE = "BUFFERED"
URL_HOST_SUFFIX = ".lambda-url.{region}.localhost"


@dataclass(frozen=True)
class UrlPage:
    """One page of ListFunctionUrlConfigs."""

    urls: list[FunctionUrl]
    next_marker: str | None


def new_url_id() -> str:
    """32 lowercase letters and digits, as AWS's url-ids are (160 random bits)."""
    return base64.b32encode(secrets.token_bytes(20)).decode().lower()


class UrlService:
    """Function URL configurations; ``port`` is the one lambdad serves them on (it is in every URL)."""

    def __init__(self, database: Database, changes: FunctionChanges, port: int) -> None:
        self._database = database
        self._changes = changes
        self.port = port
        self._lock = threading.Lock()
        self._by_id: dict[str, FunctionUrl] = {}
        self._generation = 0
        changes.subscribe(self._changed)

    def url_of(self, url: FunctionUrl) -> str:
        """The URL clients call: ``http://<url-id>.lambda-url.<region>.localhost:<port>/``."""
        return f"http://{self.host_of(url)}:{self.port}/"

    @staticmethod
    def host_of(url: FunctionUrl) -> str:
        """The URL's host name, without the port."""
        return url.url_id + URL_HOST_SUFFIX.format(region=url.region)

    def create(
        self,
        scope: Scope,
        function_name: str,
        qualifier: str | None,
        auth_type: str,
        cors: dict[str, Any] | None = None,
        invoke_mode: str | None = None,
    ) -> FunctionUrl:
        """CreateFunctionUrlConfig."""
        name, qualifier = _target(scope, function_name, qualifier)
        now = utcnow()
        url = FunctionUrl(scope, name, qualifier, new_url_id(), auth_type, invoke_mode, cors, now, now)
        with self._database.write() as connection:
            if not records.function_exists(connection, scope, name):
                raise ResourceNotFoundException(FUNCTION_MISSING)
            if qualifier and alias_records.get_alias(connection, scope, name, qualifier) is None:
                raise ResourceNotFoundException(FUNCTION_MISSING)
            if url_records.get_url(connection, scope, name, qualifier) is not None:
                raise ResourceConflictException(
                    f"Failed to create function url config for [functionArn = "
                    f"{scope.function_arn(name, qualifier)}]. Error message:  FunctionUrlConfig exists for "
                    f"this Lambda function"
                )
            url_records.insert_url(connection, url)
        self._changes.notify(scope, name, URLS)
        return url

    def get(self, scope: Scope, function_name: str, qualifier: str | None) -> FunctionUrl:
        """GetFunctionUrlConfig."""
        name, qualifier = _target(scope, function_name, qualifier)
        with self._database.read() as connection:
            url = url_records.get_url(connection, scope, name, qualifier)
        if url is None:
            raise ResourceNotFoundException(RESOURCE_MISSING)
        return url

    def update(
        self,
        scope: Scope,
        function_name: str,
        qualifier: str | None,
        *,
        auth_type: str | None = None,
        cors: dict[str, Any] | None = None,
        invoke_mode: str | None = None,
    ) -> FunctionUrl:
        """UpdateFunctionUrlConfig: members left out keep their values."""
        name, qualifier = _target(scope, function_name, qualifier)
        with self._database.write() as connection:
            if not records.function_exists(connection, scope, name):
                raise ResourceNotFoundException(FUNCTION_MISSING)
            if qualifier and alias_records.get_alias(connection, scope, name, qualifier) is None:
                raise ResourceNotFoundException(FUNCTION_MISSING)
            current = url_records.get_url(connection, scope, name, qualifier)
            if current is None:
                raise ResourceNotFoundException(RESOURCE_MISSING)
            changes: dict[str, Any] = {"last_modified": utcnow()}
            if auth_type is not None:
                changes["auth_type"] = auth_type
            if cors is not None:
                changes["cors"] = cors
            if invoke_mode is not None:
                changes["invoke_mode"] = invoke_mode
            updated = current.evolve(**changes)
            url_records.save_url(connection, updated)
        self._changes.notify(scope, name, URLS)
        return updated

    def delete(self, scope: Scope, function_name: str, qualifier: str | None) -> None:
        """DeleteFunctionUrlConfig."""
        name, qualifier = _target(scope, function_name, qualifier)
        with self._database.write() as connection:
            deleted = url_records.delete_url(connection, scope, name, qualifier)
        if not deleted:
            raise ResourceNotFoundException(RESOURCE_MISSING)
        self._changes.notify(scope, name, URLS)

    def list(
        self, scope: Scope, function_name: str, *, marker: str | None = None, max_items: int | None = None
    ) -> UrlPage:
        """ListFunctionUrlConfigs: the function's own URL first, then its aliases' by name."""
        name, _ = resolve(scope, function_name)
        limit = max_items or limits.LIST_PAGE_DEFAULT
        with self._database.read() as connection:
            if not records.function_exists(connection, scope, name):
                raise ResourceNotFoundException(FUNCTION_MISSING)
            # The marker is the qualifier of the last URL listed ("$", which sorts before every alias name,
            # for the function's own, stored as "").
            found = url_records.list_urls(connection, scope, name, after=marker)
        if len(found) <= limit:
            return UrlPage(found, None)
        return UrlPage(found[:limit], found[limit - 1].qualifier or "$")

    def cached(self, url_id: str) -> FunctionUrl | None:
        """The URL an incoming request names if it is in memory (the URL server's fast path)."""
        with self._lock:
            return self._by_id.get(url_id)

    def find(self, url_id: str) -> FunctionUrl | None:
        """The URL an incoming request names, from memory unless a URL or function changed since."""
        with self._lock:
            cached = self._by_id.get(url_id)
            generation = self._generation
        if cached is not None:
            return cached
        with self._database.read() as connection:
            url = url_records.get_url_by_id(connection, url_id)
        if url is not None:
            with self._lock:
                # A change committed while this read ran may have made ``url`` stale: keep it only if not.
                if generation == self._generation:
                    self._by_id[url_id] = url
        return url

    def _forget(self) -> None:
        with self._lock:
            self._by_id.clear()
            self._generation += 1

    def _changed(self, scope: Scope, name: str, what: str) -> None:
        if what == EVERYTHING:
            self._forget()
        elif what in (URLS, DELETED):  # that function's URLs only: the others keep serving from memory
            with self._lock:
                self._generation += 1
                for url_id in [
                    i for i, url in self._by_id.items() if (url.scope, url.function_name) == (scope, name)
                ]:
                    del self._by_id[url_id]


def _target(scope: Scope, function_name: str, qualifier: str | None) -> tuple[str, str | None]:
    """The function and alias a URL call names. ``$LATEST`` and versions cannot have URLs; the model's
    pattern refuses them as ``Qualifier`` and this check when they come inside a FunctionName ARN."""
    name, resolved = resolve(scope, function_name, qualifier)
    if resolved is not None and (resolved == LATEST or is_version_number(resolved)):
        raise ValidationException.from_messages(
            [
                f"Value '{resolved}' at 'qualifier' failed to satisfy constraint: Member must satisfy "
                f"regular expression pattern: {QUALIFIER_PATTERN}"
            ]
        )
    return name, resolved
