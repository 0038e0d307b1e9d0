"""Asynchronous invocation settings (Put/Get/Update/Delete/ListFunctionEventInvokeConfigs): stored and
validated as AWS does, per ``$LATEST``, published version or alias. The Event queue
(``lambdad.events.asynchronous``) reads the config of the qualifier each event was invoked with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from lambdad.errors import InvalidParameterValueException, ResourceNotFoundException
from lambdad.models import LATEST, Scope, is_version_number, parse_function_ref, utcnow
from lambdad.policy.roles import RolePermissions, function_source
from lambdad.services.resolution import resolve
from lambdad.store import Database
from lambdad.store import aliases as alias_records
from lambdad.store import function_configs as config_records
from lambdad.store import functions as records
from lambdad.store.function_configs import EventInvokeConfig

NOTHING_TO_SET = "You must specify at least one of error handling or destination setting."
NO_FUNCTION = "The function doesn't exist."
LIST_PAGE_MAX = 50
# Services an asynchronous invocation's record can be sent to (S3 buckets only on failure).
# The ARN services of lambdad's own event sources (README "Event sources"), which AWS has no destination
# for: a RabbitMQ queue (``mq``: the broker ARN + ``/QUEUE``), a NATS, Redis or PostgreSQL stream or table,
# an MQTT topic. (services cannot ask events.sources, a layer above, which services it serves.)
EVENT_SOURCE_SERVICES = frozenset({"mq", "nats", "redis", "mqtt", "postgresql"})
# What delivering to a destination takes of the function's execution role, per ARN service (AWS checks it
# when the config is put; lambdad's own broker kinds have no IAM action and are not checked).
_DELIVERY_ACTIONS = {
    "sqs": "SendMessage",
    "sns": "Publish",
    "lambda": "InvokeFunction",
    "events": "PutEvents",
    "s3": "PutObject",
}
_SERVICE_LABELS = {"sqs": "SQS", "sns": "SNS", "lambda": "Lambda", "events": "EventBridge", "s3": "S3"}
_DESTINATION_SERVICES = {
    "OnSuccess": {"sqs", "sns", "events", "lambda"} | EVENT_SOURCE_SERVICES,
    "OnFailure": {"sqs", "sns", "events", "lambda", "s3"} | EVENT_SOURCE_SERVICES,
}


@dataclass(frozen=True)
class EventInvokeSettings:
    """What a Put or Update call sets; None for members left out."""

    maximum_retry_attempts: int | None = None
    maximum_event_age: int | None = None
    destination_config: dict[str, Any] | None = None

    @property
    def empty(self) -> bool:
        """Whether nothing at all is set."""
        return (
            self.maximum_retry_attempts is None
            and self.maximum_event_age is None
            and self.destination_config is None
        )


@dataclass(frozen=True)
class EventInvokeConfigPage:
    """One page of ListFunctionEventInvokeConfigs."""

    configs: list[EventInvokeConfig]
    next_marker: str | None


class EventInvokeConfigService:
    """Event invoke configs of functions, versions and aliases."""

    def __init__(self, database: Database) -> None:
        self._database = database
        # What execution roles may do, set by the composition root with authentication on (None: roles
        # are not checked, as before identities).
        self.roles: RolePermissions | None = None

    def put(
        self, scope: Scope, function_name: str, settings: EventInvokeSettings, qualifier: str | None = None
    ) -> tuple[str, EventInvokeConfig]:
        """PutFunctionEventInvokeConfig: replaces the whole configuration. Returns (name, config)."""
        name, qualifier = _target(scope, function_name, qualifier)
        with self._database.write() as connection:
            if not _exists(connection, scope, name, qualifier):
                raise ResourceNotFoundException(NO_FUNCTION)
            if settings.empty:
                raise InvalidParameterValueException(NOTHING_TO_SET)
            destinations = _destinations(connection, scope, name, settings.destination_config)
            self._check_role(connection, scope, name, qualifier, destinations)
            config = EventInvokeConfig(
                qualifier,
                utcnow(),
                settings.maximum_retry_attempts,
                settings.maximum_event_age,
                destinations,
            )
            config_records.save_event_invoke_config(connection, scope, name, config)
        return name, config

    def update(
        self, scope: Scope, function_name: str, settings: EventInvokeSettings, qualifier: str | None = None
    ) -> tuple[str, EventInvokeConfig]:
        """UpdateFunctionEventInvokeConfig: members left out keep their values."""
        name, qualifier = _target(scope, function_name, qualifier)
        with self._database.write() as connection:
            if not records.function_exists(connection, scope, name):
                raise ResourceNotFoundException(NO_FUNCTION)
            current = config_records.get_event_invoke_config(connection, scope, name, qualifier)
            if current is None:
                raise ResourceNotFoundException(_no_config(scope, name, qualifier))
            if settings.empty:
                raise InvalidParameterValueException(NOTHING_TO_SET)
            if settings.destination_config is not None:
                self._check_role(
                    connection,
                    scope,
                    name,
                    qualifier,
                    _destinations(connection, scope, name, settings.destination_config),
                )
            config = EventInvokeConfig(
                qualifier,
                utcnow(),
                _either(settings.maximum_retry_attempts, current.maximum_retry_attempts),
                _either(settings.maximum_event_age, current.maximum_event_age),
                current.destinations
                if settings.destination_config is None
                else _destinations(connection, scope, name, settings.destination_config),
            )
            config_records.save_event_invoke_config(connection, scope, name, config)
        return name, config

    def _check_role(
        self, connection: Connection, scope: Scope, name: str, qualifier: str, destinations: dict[str, Any]
    ) -> None:
        """AWS's check when destinations are configured: the execution role of the version the config
        is for must be allowed to deliver to each (SQS SendMessage, SNS Publish, Lambda InvokeFunction,
        EventBridge PutEvents, S3 PutObject). A role the identity store does not know is not checked."""
        if self.roles is None:
            return
        if qualifier != LATEST and not is_version_number(qualifier):
            alias = alias_records.get_alias(connection, scope, name, qualifier)
            qualifier = alias.function_version if alias is not None else LATEST
        version = records.get_version(connection, scope, name, qualifier)
        if version is None or not version.role:
            return
        for kind in ("OnSuccess", "OnFailure"):
            destination = destinations.get(kind, {}).get("Destination")
            service = destination.split(":")[2] if destination else ""
            action = _DELIVERY_ACTIONS.get(service)
            if destination is None or action is None:
                continue
            denial = self.roles.denial(
                version.role,
                f"{service}:{action}",
                destination,
                service="lambda.amazonaws.com",
                session=name,
                context=function_source(scope.function_arn(name)),
            )
            if denial is not None:
                raise InvalidParameterValueException(
                    f"The provided execution role does not have permissions to call {action} on "
                    f"{_SERVICE_LABELS[service]}"
                )

    def get(
        self, scope: Scope, function_name: str, qualifier: str | None = None
    ) -> tuple[str, EventInvokeConfig]:
        """GetFunctionEventInvokeConfig."""
        name, qualifier = _target(scope, function_name, qualifier)
        with self._database.read() as connection:
            config = config_records.get_event_invoke_config(connection, scope, name, qualifier)
        if config is None:
            raise ResourceNotFoundException(_no_config(scope, name, qualifier))
        return name, config

    def delete(self, scope: Scope, function_name: str, qualifier: str | None = None) -> None:
        """DeleteFunctionEventInvokeConfig."""
        name, qualifier = _target(scope, function_name, qualifier)
        with self._database.write() as connection:
            if not config_records.delete_event_invoke_config(connection, scope, name, qualifier):
                raise ResourceNotFoundException(_no_config(scope, name, qualifier))

    def list(
        self, scope: Scope, function_name: str, *, marker: str | None = None, max_items: int | None = None
    ) -> tuple[str, EventInvokeConfigPage]:
        """ListFunctionEventInvokeConfigs: ``$LATEST``, then versions by number, then aliases by name."""
        name, _ = resolve(scope, function_name)
        limit = max_items or LIST_PAGE_MAX
        with self._database.read() as connection:
            if not records.function_exists(connection, scope, name):
                raise ResourceNotFoundException(NO_FUNCTION)
            found = sorted(
                config_records.list_event_invoke_configs(connection, scope, name),
                key=lambda config: _sort_key(config.qualifier),
            )
        if marker is not None:
            found = [config for config in found if _sort_key(config.qualifier) > _sort_key(marker)]
        if len(found) <= limit:
            return name, EventInvokeConfigPage(found, None)
        return name, EventInvokeConfigPage(found[:limit], found[limit - 1].qualifier)


def _target(scope: Scope, function_name: str, qualifier: str | None) -> tuple[str, str]:
    name, qualifier = resolve(scope, function_name, qualifier)
    return name, qualifier or LATEST


def _exists(connection: Connection, scope: Scope, name: str, qualifier: str) -> bool:
    if qualifier == LATEST or is_version_number(qualifier):
        return records.get_version(connection, scope, name, qualifier) is not None
    return alias_records.get_alias(connection, scope, name, qualifier) is not None


def _no_config(scope: Scope, name: str, qualifier: str) -> str:
    return f"The function {scope.function_arn(name, qualifier)} doesn't have an EventInvokeConfig"


def _either(new: int | None, old: int | None) -> int | None:
    return old if new is None else new


def _sort_key(qualifier: str) -> tuple[int, int, str]:
    if qualifier == LATEST:
        return (0, 0, "")
    if is_version_number(qualifier):
        return (1, int(qualifier), "")
    return (2, 0, qualifier)


def _destinations(
    connection: Connection, scope: Scope, name: str, config: dict[str, Any] | None
) -> dict[str, Any]:
    """DestinationConfig as AWS answers it, after AWS's checks of each destination."""
    answer: dict[str, Any] = {"OnSuccess": {}, "OnFailure": {}}
    config = config or {}
    invalid = False
    for kind in ("OnSuccess", "OnFailure"):
        destination = (config.get(kind) or {}).get("Destination")
        if not destination:
            continue
        service = destination.split(":")[2] if destination.count(":") >= 5 else ""
        if service not in _DESTINATION_SERVICES[kind]:
            invalid = True
            continue
        if service == "lambda":
            _check_function_destination(connection, scope, name, destination)
        answer[kind] = {"Destination": destination}
    if invalid:
        parts = []
        for kind, field in (("OnSuccess", "onSuccess"), ("OnFailure", "onFailure")):
            destination = (config.get(kind) or {}).get("Destination")
            parts.append(f"{field}={kind}(destination={destination})" if destination else f"{field}=null")
        raise InvalidParameterValueException(
            f"The provided destination config DestinationConfig({', '.join(parts)}) is invalid."
        )
    return answer


def _check_function_destination(connection: Connection, scope: Scope, name: str, arn: str) -> None:
    ref = parse_function_ref(arn)
    reachable = (
        ref is not None
        and ref.is_arn
        and ref.account == scope.account
        and records.function_exists(connection, Scope(scope.account, ref.region or scope.region), ref.name)
    )
    if not reachable:
        raise InvalidParameterValueException(f"The destination ARN {arn} is invalid.")
    if ref is not None and ref.name == name and ref.region == scope.region:
        raise InvalidParameterValueException("You can't specify the function as a destination for itself.")
